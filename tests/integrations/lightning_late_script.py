"""Lightning with the stream built in train_dataloader and ClimbCallback added to trainer.callbacks there:
`lightning_late_script.py CORPUS OUT PHASE DEVICES LOADER PLACE`.

LOADER "stream": train_dataloader() returns stream.dataloader(); "plain": a torch DataLoader.
PLACE "append": the callback goes after ModelCheckpoint (as `trainer.callbacks.append` puts it);
"first": before every other callback. PHASE "run" trains 8 steps, checkpointing every 4; "resume"
fits from the step-4 checkpoint.
"""

import glob
import os
import sys

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from climbstream import ClimbStream
from climbstream.integrations.lightning import ClimbCallback
from tests.corpora import WEIGHTS
from tests.integrations.models import TinyLM
from tests.integrations.runner import B, record

corpus, out, phase, devices, loader_kind, place = sys.argv[1:7]
workers = int(os.environ.get("WORKERS", 0))


class Module(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.lm = TinyLM()
        self.step = 4 if phase == "resume" else 0

    def train_dataloader(self):
        stream = ClimbStream(corpus, WEIGHTS, global_batch=B, seed=0)
        callback = ClimbCallback(stream)
        if place == "first":
            self.trainer.callbacks.insert(0, callback)
        else:
            self.trainer.callbacks.append(callback)
        if loader_kind == "stream":
            return stream.dataloader(num_workers=workers)
        return DataLoader(stream, batch_size=stream.local_batch, num_workers=workers)

    def training_step(self, batch, batch_idx):
        self.step += 1
        record(out, self.global_rank, phase, self.step, batch["position"], batch["tokens"])
        return self.lm(input_ids=batch["tokens"])["loss"]

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


module = Module()
checkpoints = os.path.join(out, "checkpoints")
trainer = pl.Trainer(accelerator="cpu", devices=int(devices), strategy="ddp" if int(devices) > 1 else "auto",
                     max_steps=8, logger=False, enable_progress_bar=False, enable_model_summary=False,
                     callbacks=[pl.callbacks.ModelCheckpoint(dirpath=checkpoints, every_n_train_steps=4,
                                                             save_top_k=-1)])
ckpt = sorted(glob.glob(os.path.join(checkpoints, "*step=4*.ckpt")))[0] if phase == "resume" else None
trainer.fit(module, ckpt_path=ckpt)

sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
