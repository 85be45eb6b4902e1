"""`climbstream refine DESIGN`: the next round of proxy mixtures where the decision is (climbstream.mixture.refine).

One step (no --corpus): check the newest round of DESIGN against the runs table (the stop
rule), and unless it says stop, write DESIGN grown by the next round to --out; train it
with `climbstream sweep NEXT --corpus C --out RUNS` (runs already in the table are
skipped; `--part i/N` fans the round out), then call refine again on NEXT.
With --corpus: the same loop on this machine, each round through the sweep, until the
stop rule holds.
"""

from __future__ import annotations

import argparse
import json

HELP = "propose the next round of proxy mixtures (climb, baselines, midpoints) until the law predicts its newest round"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("design", help="the design whose runs are in --runs (from 'climbstream design' or refine)")
    parser.add_argument("--runs", required=True, help="runs table of the design's runs (from 'climbstream sweep')")
    parser.add_argument("--counts", required=True, help="climbstream-manifest.json or a {NAME: tokens} YAML")
    parser.add_argument("--budget", required=True, type=float, help="tokens of the final run the mixture is for")
    parser.add_argument("--out", required=True, help="the grown design to write (.yaml)")
    parser.add_argument("--max-epochs", type=float, default=8.0, help="epoch cap per language (default 8)")
    parser.add_argument("--floor", type=float, default=None, help="least share per language (default 0.1/K)")
    parser.add_argument("--baselines", default="temperature,unimax,uniform",
                        help="baselines a user could pick instead, comma-separated (default temperature,unimax,uniform)")
    parser.add_argument("--temperature-alpha", type=float, default=0.3)
    parser.add_argument("--max-rounds", type=int, default=2, help="rounds of refinement at most (default 2)")
    parser.add_argument("--corpus", help="train each round here with the sweep (the whole loop on this machine)")
    parser.add_argument("--trainer", default="builtin", help="with --corpus: as 'climbstream sweep --trainer'")
    parser.add_argument("--steps", type=int, default=120, help="with --corpus: steps per proxy (builtin; default 120)")
    parser.add_argument("--global-batch", type=int, default=16, help="with --corpus: global batch (builtin)")
    parser.add_argument("--device", default="cpu", help="with --corpus: cpu or cuda (builtin)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the rounds as JSON")


def _step(args, design: str, out: str) -> dict:
    """Check the newest round of `design` and, unless the rule stops, write the next round into `out`."""
    from climbstream.errors import ConfigError
    from climbstream.mixture.design import load_rounds, save_design
    from climbstream.mixture.fit import fit_climb_law
    from climbstream.mixture.inputs import read_counts
    from climbstream.mixture.recommend import candidate_mixtures
    from climbstream.mixture.refine import check_round, propose_round
    from climbstream.mixture.runs import load_runs
    from climbstream.train.sweep_design import load_design

    languages, mixtures = load_design(design)
    rounds = load_rounds(design)
    runs = load_runs(args.runs)
    missing = [i for i in range(len(mixtures)) if str(i) not in set(runs.run_ids())]
    if missing:
        raise ConfigError(f"{args.runs}: runs {missing[:8]} of {design} are not trained yet; train them with "
                          f"'climbstream sweep {design} --corpus CORPUS --out {args.runs}', then refine again")
    counts = read_counts(args.counts)
    check = check_round(runs, {str(i): r for i, r in enumerate(rounds)}, max_rounds=args.max_rounds)
    result = {"design": design, "check": check.to_dict(), "runs": len(mixtures)}
    if check.stop:
        return result | {"next": None}
    law = fit_climb_law(runs, progress=not args.quiet)
    baselines = tuple(b for b in args.baselines.split(",") if b)
    candidates = candidate_mixtures(counts, args.budget, law, e_max=args.max_epochs, floor=args.floor,
                                    baselines=baselines, temperature_alpha=args.temperature_alpha)
    proposals = propose_round(candidates, mixtures)
    if not proposals:
        check.stop, check.reason = True, "every candidate is already trained"
        return result | {"check": check.to_dict(), "next": None}
    if not out.endswith((".yaml", ".yml")):
        raise ConfigError(f"--out {out}: a refined design is YAML (it keeps each run's round)")
    import numpy as np

    new_round = max(rounds) + 1
    save_design(out, languages, np.array([[m[n] for n in languages] for m in mixtures + [r for _, r in proposals]]),
                method="refine", seed=0, rounds=rounds + [new_round] * len(proposals),
                labels=[None] * len(mixtures) + [label for label, _ in proposals])
    return result | {"next": out, "round": new_round, "proposals": [label for label, _ in proposals]}


def run(args: argparse.Namespace) -> int:
    from climbstream.errors import ConfigError

    if args.max_rounds < 1:
        raise ConfigError(f"--max-rounds {args.max_rounds}: refinement needs at least 1 round")
    steps, design = [], args.design
    while True:
        if args.corpus:
            from climbstream.train.sweep import SweepConfig, run_sweep

            run_sweep(SweepConfig(design=design, corpus=args.corpus, runs_out=args.runs, trainer=args.trainer,
                                  steps=args.steps, global_batch=args.global_batch, device=args.device,
                                  progress=not args.quiet))
        result = _step(args, design, args.out)
        steps.append(result)
        if not args.json:
            check = result["check"]
            print(f"round {check['round']} ({check['runs']} runs): {check['reason']}")
            if result["next"]:
                print(f"round {result['round']}: {len(result['proposals'])} mixtures ({', '.join(result['proposals'])})"
                      f" written to {result['next']}")
        if result["next"] is None or not args.corpus:
            break
        design = result["next"]
    if args.json:
        print(json.dumps(steps))
    elif steps[-1]["next"] is None:
        print(f"stop. Recommend: climbstream solve --recommend --runs {args.runs} --counts {args.counts} "
              f"--budget {args.budget:g}")
    else:
        print(f"next: climbstream sweep {steps[-1]['next']} --corpus CORPUS --out {args.runs}, "
              f"then climbstream refine {steps[-1]['next']} ...")
    return 0
