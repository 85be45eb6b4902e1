"""`climbstream demo`: the built-in end-to-end run on real text (see climbstream/train/demo.py)."""

from __future__ import annotations

HELP = "build a real multilingual corpus, train a tiny model with re-solving, and report (no data needed)"


def add_arguments(parser) -> None:
    """Arguments of `climbstream demo`."""
    parser.add_argument("--out", default="out/demo", help="working folder (default out/demo); reruns reuse it")
    parser.add_argument("--steps", type=int, default=240, help="training steps (default 240, a few minutes on 2 cores)")
    parser.add_argument("--resolve-every", type=int, default=60, help="steps between re-solves (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-workers", type=int, default=1, help="DataLoader workers (default 1)")
    parser.add_argument("--fresh", action="store_true", help="delete the previous training run first")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    """Run the demo and print where its outputs are."""
    import os
    import shutil

    from climbstream.train.demo import run_demo

    if args.fresh:
        shutil.rmtree(os.path.join(args.out, "train"), ignore_errors=True)
    summary = run_demo(args.out, steps=args.steps, seed=args.seed, num_workers=args.num_workers,
                       resolve_every=args.resolve_every, progress=not args.quiet)
    print(summary["report_text"])
    print(f"\nre-solves: {len(summary['resolves'])}; stages: {len(summary['stages'])}")
    for d in summary["resolves"]:
        print(f"  step {d.get('step')}: {d.get('verdict')} {d.get('detail', '')}")
    print(f"\ncorpus:   {os.path.join(args.out, 'corpus')}")
    print(f"run:      {summary['out_dir']}  (losses.jsonl, checkpoint.pt, summary.json)")
    for path in summary["report_files"]:
        print(f"plot:     {path}")
    return 0
