"""Benchmark: what a resume costs in each trainer, at a late step.

For each framework (HF Trainer through ClimbTrainer, accelerate through prepare_loader,
Lightning with ClimbCallback, torchtitan's dataloader) one CPU process trains a tiny model
for `--steps` steps (global batch `--global-batch`, local MDS corpus from the machine's
gettext catalogs), checkpoints, then resumes from that checkpoint in the same process and
takes one more step. Reported per framework: the samples the stream read from the resume
until the first step trained (`samples_read_to_first_step`: one global batch plus what
the loader prefetches means O(1); a replay reads every batch since step 0), the seconds
from the resume call to that step, and whether that step's batch is the next global batch.

Run:  .venv/bin/python benchmarks/trainer_resume.py [--steps 2000] [--quick]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from climbstream import ClimbStream  # noqa: E402

WEIGHTS = {"method": "temperature", "alpha": 0.3}


class TinyLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(257, 16)
        self.head = torch.nn.Linear(16, 257)

    def forward(self, input_ids=None, labels=None, **_):
        logits = self.head(self.embed(input_ids[:, :-1]))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 257), input_ids[:, 1:].reshape(-1))
        return {"loss": loss}


class FirstStep:
    """Times the resume and records the first trained batch's first position and the samples read by then."""

    def __init__(self, stream):
        self.stream = stream
        self.started = None
        self.result = None

    def start(self):
        self.started = time.perf_counter()

    def step(self, positions):
        if self.result is None and self.started is not None and self.stream is not None:
            self.result = {"seconds_to_first_step": round(time.perf_counter() - self.started, 3),
                           "samples_read_to_first_step": int(self.stream.metrics()["samples"]),
                           "first_position": int(positions.min())}


def new_stream(corpus, batch):
    return ClimbStream(corpus, WEIGHTS, global_batch=batch, seed=0, rank=0, world_size=1)


def bench_hf(corpus, out, steps, batch):
    from transformers import PrinterCallback, TrainingArguments

    from climbstream.integrations.hf import ClimbTrainer

    def trainer(stream, probe, max_steps):
        class Probe(ClimbTrainer):
            def training_step(self, model, inputs, num_items_in_batch=None):
                probe.step(inputs["position"])
                return super().training_step(model, inputs, num_items_in_batch)

        args = TrainingArguments(out, use_cpu=True, per_device_train_batch_size=batch, max_steps=max_steps,
                                 save_steps=steps, report_to=[], logging_steps=10**6, disable_tqdm=True)
        probe_trainer = Probe(model=TinyLM(), args=args, train_dataset=stream)
        probe_trainer.remove_callback(PrinterCallback)  # one JSON object on stdout
        return probe_trainer

    trainer(new_stream(corpus, batch), FirstStep(None), steps).train()
    stream = new_stream(corpus, batch)
    probe = FirstStep(stream)
    resumed = trainer(stream, probe, steps + 1)
    probe.start()
    resumed.train(resume_from_checkpoint=os.path.join(out, f"checkpoint-{steps}"))
    return probe.result


def bench_accelerate(corpus, out, steps, batch):
    from accelerate import Accelerator

    from climbstream.integrations.accelerate import prepare_loader

    def loop(stream, probe, first, last, save):
        accelerator = Accelerator(cpu=True)
        model = TinyLM()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        model, opt = accelerator.prepare(model, opt)
        loader = prepare_loader(accelerator, stream)
        if probe is not None:
            probe.start()
            accelerator.load_state(out)
        for step, b in enumerate(loader, start=first):
            if probe is not None:
                probe.step(b["position"])
            accelerator.backward(model(input_ids=b["tokens"])["loss"])
            opt.step()
            opt.zero_grad()
            if step == last:
                break
        if save:
            accelerator.save_state(out)

    loop(new_stream(corpus, batch), None, 1, steps, save=True)
    stream = new_stream(corpus, batch)
    probe = FirstStep(stream)
    loop(stream, probe, steps + 1, steps + 1, save=False)
    return probe.result


def bench_lightning(corpus, out, steps, batch):
    import pytorch_lightning as pl

    from climbstream.integrations.lightning import ClimbCallback

    class LM(pl.LightningModule):
        def __init__(self, stream, probe):
            super().__init__()
            self.lm, self.stream, self.probe = TinyLM(), stream, probe

        def train_dataloader(self):
            return self.stream.dataloader()

        def training_step(self, b, i):
            self.probe.step(b["position"])
            return self.lm(input_ids=b["tokens"])["loss"]

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    def fit(stream, probe, max_steps, ckpt):
        trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=max_steps, logger=False,
                             enable_progress_bar=False, enable_model_summary=False,
                             callbacks=[ClimbCallback(stream), pl.callbacks.ModelCheckpoint(
                                 dirpath=out, every_n_train_steps=steps, save_top_k=-1)])
        probe.start()
        trainer.fit(LM(stream, probe), ckpt_path=ckpt)

    fit(new_stream(corpus, batch), FirstStep(None), steps, None)
    stream = new_stream(corpus, batch)
    probe = FirstStep(stream)
    fit(stream, probe, steps + 1, sorted(glob.glob(os.path.join(out, f"*step={steps}*.ckpt")))[0])
    return probe.result


def bench_torchtitan(corpus, out, steps, batch):
    from climbstream.integrations.torchtitan import ClimbTitanDataloader

    def collate(samples):
        return torch.tensor([s["position"] for s in samples])

    stream = new_stream(corpus, batch)
    loader = ClimbTitanDataloader(stream, dp_rank=0, dp_world_size=1, collate_fn=collate)
    for step, _ in enumerate(loader, start=1):
        if step == steps:
            break
    state = loader.state_dict()
    stream = new_stream(corpus, batch)
    probe = FirstStep(stream)
    probe.start()
    loader = ClimbTitanDataloader(stream, dp_rank=0, dp_world_size=1, collate_fn=collate)
    loader.load_state_dict(state)
    probe.step(next(iter(loader)))
    return probe.result


BENCHES = {"hf": bench_hf, "accelerate": bench_accelerate, "lightning": bench_lightning, "torchtitan": bench_torchtitan}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="200 steps")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=sorted(BENCHES))
    args = parser.parse_args(argv)
    steps = 200 if args.quick else args.steps
    import subprocess

    with tempfile.TemporaryDirectory() as work:
        subprocess.run([sys.executable, "-m", "climbstream", "prepare", "--from-gettext", "--max-bytes-per-lang",
                        "400000", "--out", os.path.join(work, "corpus")], check=True, capture_output=True)
        results = {}
        for name in args.only:
            result = BENCHES[name](os.path.join(work, "corpus"), os.path.join(work, name), steps, args.global_batch)
            result["next_global_batch"] = result.pop("first_position") == steps * args.global_batch
            results[name] = result
    print(json.dumps({"steps": steps, "global_batch": args.global_batch, "frameworks": results,
                      "machine": {"python": platform.python_version(), "torch": torch.__version__,
                                  "cpus": os.cpu_count()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
