"""Overhead of LanguageLossTracker per training step, and (on CUDA) proof of no host sync.

Runs a small language-model step (embedding, MLP, per-token cross entropy, AdamW) with and
without `tracker.update(loss, lang)` + `tracker.step(...)`, alternating the two loops over
several rounds and reporting medians; also times the tracker calls alone. With
`--device cuda` every non-flush step's tracker calls run under
`torch.cuda.set_sync_debug_mode("error")`, so any host synchronization raises; CUDA timings
synchronize only at the end of each timed loop. On a loaded machine the step-level
difference is noise; `tracker_calls_ms_per_step` (the calls alone) is the stable number.
Prints one JSON object (`--markdown` adds a table). Needs only torch and this repository:

    python benchmarks/tracker_overhead.py [--device cuda] [--threads 1] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from climbstream.train.losses import LanguageLossTracker  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per loop and round")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds of each loop")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--languages", type=int, default=16)
    p.add_argument("--flush-every", type=int, default=50)
    p.add_argument("--markdown", action="store_true", help="also print a markdown table")
    return p.parse_args(argv)


class TinyLM(torch.nn.Module):
    def __init__(self, vocab: int, hidden: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(hidden, 4 * hidden), torch.nn.GELU(),
                                       torch.nn.Linear(4 * hidden, hidden))
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens)
        return self.head(h + self.mlp(h))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.device = torch.device(args.device)
        torch.manual_seed(0)
        self.model = TinyLM(args.vocab, args.hidden).to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        g = torch.Generator().manual_seed(1)
        n = 8  # a few pre-made batches already on the device, as a pinned DataLoader delivers them
        self.tokens = torch.randint(0, args.vocab, (n, args.batch, args.seq_len + 1), generator=g).to(self.device)
        self.langs = torch.randint(0, args.languages, (n, args.batch), generator=g).to(self.device)
        names = [f"l{i:02d}" for i in range(args.languages)]
        self.tracker = LanguageLossTracker(names, flush_every=args.flush_every)
        self.weights = dict.fromkeys(names, 1)
        self.step_index = 0
        self.sync_checked = 0
        self.flush_seconds: list[float] = []

    def model_step(self, i: int) -> torch.Tensor:
        batch = self.tokens[i % len(self.tokens)]
        logits = self.model(batch[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten(), reduction="none")
        loss = loss.view(batch.shape[0], -1)
        self.optimizer.zero_grad(set_to_none=True)
        loss.mean().backward()
        self.optimizer.step()
        return loss

    def track(self, loss: torch.Tensor, i: int) -> None:
        lang = self.langs[i % len(self.langs)]
        self.step_index += 1
        position = self.step_index * self.args.batch
        if self.tracker.flushes_on_next_step:
            start = time.perf_counter()
            self.tracker.update(loss, lang)
            self.tracker.step(self.step_index, position, stage=0, weights=self.weights)
            self.flush_seconds.append(time.perf_counter() - start)
            return
        if self.device.type == "cuda":
            torch.cuda.set_sync_debug_mode("error")
            try:
                self.tracker.update(loss, lang)
                self.tracker.step(self.step_index, position, stage=0, weights=self.weights)
            finally:
                torch.cuda.set_sync_debug_mode("default")
            self.sync_checked += 1
        else:
            self.tracker.update(loss, lang)
            self.tracker.step(self.step_index, position, stage=0, weights=self.weights)

    def loop(self, steps: int, tracked: bool) -> float:
        """Seconds per step over `steps` steps."""
        synchronize(self.device)
        start = time.perf_counter()
        for i in range(steps):
            loss = self.model_step(i)
            if tracked:
                self.track(loss, i)
        synchronize(self.device)
        return (time.perf_counter() - start) / steps

    def tracker_only(self, steps: int) -> float:
        loss = self.model_step(0).detach()
        synchronize(self.device)
        start = time.perf_counter()
        for i in range(steps):
            self.track(loss, i)
        synchronize(self.device)
        return (time.perf_counter() - start) / steps


def main(argv=None) -> dict:
    """Run the benchmark, print its JSON object and return it."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    bench = Bench(args)
    bench.loop(args.warmup, tracked=False)
    bench.loop(args.warmup, tracked=True)
    base, tracked = [], []
    try:
        for _ in range(args.rounds):
            base.append(bench.loop(args.steps, tracked=False))
            tracked.append(bench.loop(args.steps, tracked=True))
        only = [bench.tracker_only(args.steps) for _ in range(args.rounds)]
    except RuntimeError as err:  # set_sync_debug_mode("error") raises on a host sync
        print(json.dumps({"benchmark": "tracker_overhead", "device": str(bench.device),
                          "sync_check": {"enabled": True, "ok": False, "error": str(err).splitlines()[0],
                                         "non_flush_steps_checked": bench.sync_checked}}))
        raise SystemExit(1) from None
    b, t = statistics.median(base), statistics.median(tracked)
    device = bench.device
    result = {
        "benchmark": "tracker_overhead",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine(),
        "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "config": {k: getattr(args, k) for k in ("steps", "rounds", "batch", "seq_len", "vocab", "hidden",
                                                  "languages", "flush_every")},
        "baseline_ms_per_step": round(b * 1e3, 4),
        "tracked_ms_per_step": round(t * 1e3, 4),
        "overhead_ms_per_step": round((t - b) * 1e3, 4),
        "overhead_pct": round(100 * (t - b) / b, 2),
        # best-of-rounds: less sensitive to other load on a shared machine than the median
        "overhead_ms_per_step_best": round((min(tracked) - min(base)) * 1e3, 4),
        "tracker_calls_ms_per_step": round(statistics.median(only) * 1e3, 4),
        "flush_ms_mean": round(1e3 * statistics.fmean(bench.flush_seconds), 4) if bench.flush_seconds else None,
        "flushes": len(bench.flush_seconds),
        "sync_check": {"enabled": device.type == "cuda", "non_flush_steps_checked": bench.sync_checked,
                       "ok": True if device.type == "cuda" else None},
    }
    print(json.dumps(result))
    if args.markdown:
        print("\n| device | baseline ms/step | tracked ms/step | overhead | tracker calls ms/step | flush ms |")
        print("|---|---|---|---|---|---|")
        print(f"| {result['device_name']} | {result['baseline_ms_per_step']} | {result['tracked_ms_per_step']} | "
              f"{result['overhead_pct']}% | {result['tracker_calls_ms_per_step']} | {result['flush_ms_mean']} |")
    return result


if __name__ == "__main__":
    main()
