"""A complete training loop on the built-in real corpus: model, optimizer, per-language loss,
re-solving at checkpoints, checkpoint and resume, all written out in plain PyTorch.

    python examples/train_tiny_lm.py --out out/tiny      # prepare the corpus, train, re-solve
    python examples/train_tiny_lm.py --out out/tiny      # run again: resumes from the checkpoint

The library's `climbstream.train.loop.train(cfg)` (used by `demo` and `sweep`) is this loop
with more options.
"""

from __future__ import annotations

import argparse
import os

import torch

from climbstream import ClimbStream, LanguageLossTracker, Reweighter
from climbstream.train.demo import ensure_gettext_corpus
from climbstream.train.sinks import JsonlSink
from climbstream.train.tiny_lm import TinyLM, TinyLMConfig, token_losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/tiny")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--resolve-every", type=int, default=40, help="steps between checkpoints and re-solves")
    parser.add_argument("--global-batch", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    device, checkpoint = torch.device(args.device), os.path.join(args.out, "checkpoint.pt")
    torch.manual_seed(0)

    # Data: the machine's gettext catalogs, 8 languages, mixed by temperature sampling to start.
    corpus = ensure_gettext_corpus(os.path.join(args.out, "corpus"))
    stream = ClimbStream(corpus, {"method": "temperature", "alpha": 0.3, "e_max": 8},
                         global_batch=args.global_batch, seed=0, rank=0, world_size=1)
    seq_len = stream.corpus.seq_len

    # Model and optimizer: a 2-layer byte-level transformer.
    model = TinyLM(TinyLMConfig(vocab_size=257, seq_len=seq_len)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)

    # Per-language loss, accumulated on the device, flushed every 10 steps to a JSONL log.
    tracker = LanguageLossTracker(stream.languages, device=device, flush_every=10, seq_len=seq_len,
                                  sinks=[JsonlSink(os.path.join(args.out, "losses.jsonl"))])
    heldout = {name: stream.heldout(name).limit(16) for name in stream.languages}
    budget = args.steps * args.global_batch * seq_len
    reweighter = Reweighter(stream.languages, stream.corpus.token_counts(), budget, seq_len, e_max=8.0)

    # Resume: every piece of state was saved together, so the run continues where it stopped.
    step = 0
    if os.path.exists(checkpoint):
        state = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        stream.load_state_dict(state["data"])
        tracker.load_state_dict(state["tracker"])
        reweighter.load_state_dict(state["reweighter"])
        step = state["step"]
        print(f"resumed at step {step}, position {stream.position}")

    model.train()
    while step < args.steps:
        # The loader follows its batches, so stream.position is always the end of the last one.
        for batch in stream.dataloader(num_workers=args.num_workers):
            losses = token_losses(model, batch["tokens"].to(device))  # [batch, seq_len - 1]
            losses.mean().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            tracker.update(losses, batch["lang"])
            step += 1
            tracker.step(step, stream.position, stage=len(stream.stages()) - 1,
                         weights=stream.stages()[-1]["weights"])
            new_stage = False
            if step % max(1, args.resolve_every // 2) == 0 or step == args.steps:  # held-out loss, no grad
                model.eval()
                tracker.score_heldout(lambda tokens: token_losses(model, tokens.to(device)), heldout, 16)
                model.train()
            if step % args.resolve_every == 0 or step == args.steps:
                if tracker.pending_steps:
                    tracker.flush(step, stream.position)
                if step < args.steps:  # re-solve from the losses so far: appends a stage, or keeps the mixture
                    decision = reweighter.at_checkpoint(step, stream, tracker)
                    new_stage = decision is not None
                    print(f"step {step}: {reweighter.decisions[-1]['verdict']} "
                          f"{reweighter.decisions[-1].get('detail', '')}")
                reweighter.observe(tracker.history)
                torch.save({"step": step, "model": model.state_dict(), "optimizer": opt.state_dict(),
                            "data": stream.state_dict(), "tracker": tracker.state_dict(),
                            "reweighter": reweighter.state_dict()}, checkpoint + ".tmp")
                os.replace(checkpoint + ".tmp", checkpoint)
            if step >= args.steps or new_stage:
                break  # a new stage takes effect with a new iterator
    tracker.close()
    print(f"done: {step} steps, position {stream.position}, stages {len(stream.stages())}; "
          f"log {os.path.join(args.out, 'losses.jsonl')}, checkpoint {checkpoint}")


if __name__ == "__main__":
    main()
