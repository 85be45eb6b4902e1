"""The tiny-LM loop under torchrun: gloo on CPU, nccl on GPU.

    torchrun --nproc_per_node 2 examples/ddp.py --out out/ddp

Every rank reads its slice of each global batch (rank and world size come from
torch.distributed); the tracker all-reduces per-language loss; the model is wrapped in
DistributedDataParallel. Kill it and run the same command again: it resumes exactly.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist

from climbstream.stream.dataset import ClimbStream
from climbstream.train.demo import ensure_gettext_corpus
from climbstream.train.losses import LanguageLossTracker
from climbstream.train.sinks import JsonlSink
from climbstream.train.tiny_lm import TinyLM, TinyLMConfig, token_losses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="out/ddp")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--global-batch", type=int, default=16)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    corpus = os.path.join(args.out, "corpus")
    if rank == 0:
        ensure_gettext_corpus(corpus)
    dist.barrier()
    torch.manual_seed(0)
    stream = ClimbStream(corpus, {"method": "temperature", "alpha": 0.3}, global_batch=args.global_batch)
    model = TinyLM(TinyLMConfig(seq_len=stream.corpus.seq_len)).to(device)
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    opt = torch.optim.AdamW(ddp.parameters(), lr=3e-3)
    tracker = LanguageLossTracker(stream.languages, device=device, flush_every=10,
                                  sinks=[JsonlSink(os.path.join(args.out, "losses.jsonl"))])
    ckpt = os.path.join(args.out, "ddp.pt")
    step = 0
    if os.path.exists(ckpt):
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
        stream.load_state_dict(state["data"]); step = state["step"]
    for batch in stream.dataloader(num_workers=1):
        losses = token_losses(ddp, batch["tokens"].to(device))
        losses.mean().backward()
        opt.step(); opt.zero_grad(set_to_none=True)
        tracker.update(losses, batch["lang"])
        step += 1
        tracker.step(step, stream.position)  # the loader follows its batches
        if step % 20 == 0 and rank == 0:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "data": stream.state_dict(),
                        "step": step}, ckpt)
        if step >= args.steps:
            break
    tracker.close()
    if rank == 0:
        print(f"rank 0 done at step {step}, position {stream.position}; log in {args.out}/losses.jsonl")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
