"""Lightning over a ClimbStream: `lightning_script.py CORPUS OUT PHASE DEVICES LOADER [nocallback]`.

LOADER "stream": train_dataloader() returns stream.dataloader(); "plain": a torch DataLoader.
The stream is built in LightningModule.__init__, before Lightning starts the process group.
PHASE "run" trains 6 steps, checkpointing every 3; "resume" fits from the step-3 checkpoint.
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

corpus, out, phase, devices, loader_kind = sys.argv[1:6]
callback = "nocallback" not in sys.argv[6:]
workers = int(os.environ.get("WORKERS", 0))


class Module(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.lm = TinyLM()
        self.stream = ClimbStream(corpus, WEIGHTS, global_batch=B, seed=0)  # rank and size resolved later
        self.step = 3 if phase == "resume" else 0

    def train_dataloader(self):
        if loader_kind == "stream":
            return self.stream.dataloader(num_workers=workers)
        return DataLoader(self.stream, batch_size=self.stream.local_batch, num_workers=workers)

    def training_step(self, batch, batch_idx):
        self.step += 1
        record(out, self.global_rank, phase, self.step, batch["position"], batch["tokens"])
        return self.lm(input_ids=batch["tokens"])["loss"]

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


module = Module()
checkpoints = os.path.join(out, "checkpoints")
trainer = pl.Trainer(accelerator="cpu", devices=int(devices), strategy="ddp" if int(devices) > 1 else "auto",
                     max_steps=6, logger=False, enable_progress_bar=False, enable_model_summary=False,
                     callbacks=([ClimbCallback(module.stream)] if callback else []) + [
                         pl.callbacks.ModelCheckpoint(dirpath=checkpoints, every_n_train_steps=3, save_top_k=-1)])
ckpt = sorted(glob.glob(os.path.join(checkpoints, "*step=3*.ckpt")))[0] if phase == "resume" else None
trainer.fit(module, ckpt_path=ckpt)

# Leave without interpreter teardown: under load, gloo's threads now and then abort it ("terminate called
# without an active exception") after everything above has run and been recorded.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
