"""HF Trainer over a ClimbStream on 2 gloo processes: `hf_script.py CORPUS OUT PHASE [plain]`.

PHASE "run" trains MAX_STEPS steps saving every SAVE_STEPS; "resume" resumes from
OUT/checkpoint-SAVE_STEPS. "plain" uses transformers' own Trainer (the stream refuses it).
"""

import os
import sys

import torch
from transformers import Trainer, TrainingArguments

from climbstream import ClimbStream
from climbstream.integrations.hf import ClimbTrainer
from tests.corpora import WEIGHTS
from tests.integrations.models import TinyLM
from tests.integrations.runner import B, record

corpus, out, phase = sys.argv[1:4]
plain = "plain" in sys.argv[4:]
max_steps, save_steps = int(os.environ.get("MAX_STEPS", 8)), int(os.environ.get("SAVE_STEPS", 4))
ga, workers = int(os.environ.get("GA", 1)), int(os.environ.get("WORKERS", 0))

stream = ClimbStream(corpus, WEIGHTS, global_batch=B, seed=0)  # rank and size resolved when first used
per_device = B // int(os.environ.get("WORLD_SIZE", 1))  # torchrun sets WORLD_SIZE
args = TrainingArguments(output_dir=out, use_cpu=True, ddp_backend="gloo", per_device_train_batch_size=per_device,
                         gradient_accumulation_steps=ga, max_steps=max_steps, save_steps=save_steps,
                         report_to=[], logging_steps=1000, dataloader_num_workers=workers, learning_rate=1e-3,
                         save_only_model=False)
steps = [0]


class Recorder(Trainer if plain else ClimbTrainer):
    def training_step(self, model, inputs, num_items_in_batch=None):
        steps[0] += 1
        record(out, args.process_index, phase, steps[0], inputs["position"], inputs["input_ids"])
        return super().training_step(model, inputs, num_items_in_batch)

    def _load_optimizer_and_scheduler(self, checkpoint):
        # Under DDP transformers 4.57 maps the optimizer state to args.device, which is "cpu:0" on CPU
        # and which torch 2.14's torch.load cannot restore to (a GPU run maps to its cuda device): load on "cpu".
        import torch

        load = torch.load
        torch.load = lambda *a, **k: load(*a, **{**k, "map_location": "cpu"})
        try:
            super()._load_optimizer_and_scheduler(checkpoint)
        finally:
            torch.load = load


trainer = Recorder(model=TinyLM(), args=args, train_dataset=stream)
trainer.train(resume_from_checkpoint=os.path.join(out, f"checkpoint-{save_steps}") if phase == "resume" else None)
if torch.distributed.is_initialized():
    torch.distributed.destroy_process_group()  # gloo's threads would otherwise abort the exit now and then

# Leave without interpreter teardown: under load, gloo's threads now and then abort it ("terminate called
# without an active exception") after everything above has run and been recorded.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
