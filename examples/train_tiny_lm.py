"""Train a small byte-level transformer on the built-in real corpus, with re-solving.

    python examples/train_tiny_lm.py --out out/tiny            # prepare corpus, train, report
    python examples/train_tiny_lm.py --out out/tiny            # run again: resumes from the checkpoint

The loop itself lives in climbstream/train/loop.py (about 100 lines, plain PyTorch): read
it to see how a loop keeps the consumed position (`stream.position`, which the loader follows), logs
per-language loss (`LanguageLossTracker`), re-solves at checkpoints (`Reweighter`) and saves
model, optimizer, dataset, tracker and re-weighter state together.
"""

from __future__ import annotations

import argparse
import json
import os

from climbstream.demo import ensure_gettext_corpus
from climbstream.train.loop import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/tiny")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--resolve-every", type=int, default=40)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    corpus = ensure_gettext_corpus(os.path.join(args.out, "corpus"))
    cfg = TrainConfig(corpus=corpus, out_dir=os.path.join(args.out, "train"), weights={"method": "temperature", "alpha": 0.3},
                      steps=args.steps, checkpoint_every=args.resolve_every, resolve_every=args.resolve_every,
                      num_workers=args.num_workers, device=args.device, seed=args.seed, progress=True)
    summary = train(cfg)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
