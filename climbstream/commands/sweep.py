"""`climbstream sweep DESIGN`: train one proxy per designed mixture into a runs table.

`--part i/N` trains one machine's share of the runs, `--merge` joins the parts' tables
(climbstream/train/sweep_parts.py).
"""

from __future__ import annotations

HELP = "train a proxy model per mixture of a design and append held-out losses to a runs table (resumable)"


def add_arguments(parser) -> None:
    """Arguments of `climbstream sweep`."""
    parser.add_argument("design", help="mixtures from 'climbstream design' (YAML/JSON/CSV)")
    parser.add_argument("--corpus", help="prepared corpus (folder or URL with climbstream-manifest.json); "
                                         "needed except with --merge")
    parser.add_argument("--out", required=True, help="runs table CSV to append to (created if missing)")
    parser.add_argument("--part", default=None, metavar="i/N",
                        help="train only part i of N of the design's runs (runs r with r mod N = i-1), into "
                             "OUT.part-i-of-N.csv beside --out; one part per machine or task (a Slurm array: "
                             "--part $((SLURM_ARRAY_TASK_ID + 1))/N), then --merge")
    parser.add_argument("--merge", action="store_true",
                        help="join the part tables beside --out into --out (checked against the design): the "
                             "table one machine's sweep writes")
    parser.add_argument("--overwrite", action="store_true", help="with --merge: replace an existing --out")
    parser.add_argument("--trainer", default="builtin",
                        help="'builtin' (tiny byte-level transformer) or a command template using {mixture} {out} "
                             "{run} {corpus} {tokens} {seed}; it must write {\"tokens\": [...], \"loss\": {NAME: [...]}}")
    parser.add_argument("--steps", type=int, default=120, help="training steps per run (builtin; default 120)")
    parser.add_argument("--global-batch", type=int, default=16, help="global batch (builtin; default 16)")
    parser.add_argument("--eval-fractions", default="0.25,0.5,1",
                        help="fractions of the run at which held-out loss is measured (default 0.25,0.5,1)")
    parser.add_argument("--heldout-samples", type=int, default=32, help="held-out samples per language per eval")
    parser.add_argument("--work-dir", default=None, help="checkpoints and logs per run (default: next to --out)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (builtin)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    """Run the sweep and print a summary."""
    import json

    from climbstream.errors import ConfigError
    from climbstream.train.sweep import SweepConfig, run_sweep
    from climbstream.train.sweep_parts import merge_runs, parse_part

    if args.merge:
        if args.part:
            raise ConfigError("--merge joins the parts' tables; give it without --part")
        merged = merge_runs(args.design, args.out, overwrite=args.overwrite)
        print(json.dumps(merged) if args.json else
              f"merged {merged['parts']} part tables: {merged['runs']} runs, {merged['rows']} rows; "
              f"table: {merged['runs_out']}")
        return 0
    if not args.corpus:
        raise ConfigError("sweep needs --corpus (the prepared corpus the proxies train on)")
    part = parse_part(args.part) if args.part else None
    try:
        fractions = tuple(float(x) for x in args.eval_fractions.split(","))
    except ValueError:
        raise ConfigError(f"--eval-fractions: expected numbers like 0.25,0.5,1, got {args.eval_fractions!r}") from None
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise ConfigError(f"--eval-fractions: each must be in (0, 1], got {args.eval_fractions!r}")
    summary = run_sweep(SweepConfig(
        design=args.design, corpus=args.corpus, runs_out=args.out, trainer=args.trainer, steps=args.steps,
        global_batch=args.global_batch, eval_fractions=fractions, heldout_samples=args.heldout_samples,
        work_dir=args.work_dir, device=args.device, seed=args.seed, progress=not args.quiet, part=part,
    ))
    if args.json:
        print(json.dumps(summary))
    else:
        per = summary["seconds_per_run"]
        print(f"{summary['trained']} runs trained, {summary['skipped']} already done, "
              f"{'%.1f s per run' % per if per else 'nothing to do'}; table: {summary['runs_out']}")
    return 0
