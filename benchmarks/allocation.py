"""Does the Climb allocation train better? design -> sweep -> fit -> solve -> train; prints one JSON object.

1. design `--runs` proxy mixtures (Dirichlet) over the corpus's languages;
2. sweep: train one builtin proxy per mixture (`--proxy-steps` steps), held-out loss per
   language at three token counts -> runs.csv;
3. fit the Climb law on the runs (the library's defaults);
4. solve climb, temperature (alpha 0.3), uniform and UniMax for the final budget
   (`--steps` x global batch x seq_len tokens) with the same caps (e_max) and floor;
5. train each allocation with `--seeds` seeds at equal tokens and score the mean held-out
   loss over languages (every language weighs the same, as in the objective).

Reports each method's mean held-out loss with its standard error over seeds, the
difference to climb, and the law's CV error. The corpus defaults to the demo's gettext
corpus (built under --out when missing). `--quick` is the CPU-sized smoke run; the full
default is sized for one GPU (`--device cuda`) in under 10 minutes.

    .venv/bin/python benchmarks/allocation.py --device cuda --out out/allocation
    .venv/bin/python benchmarks/allocation.py --quick --out /tmp/allocation
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

METHODS = {"climb": None, "temperature": {"alpha": 0.3}, "uniform": None, "unimax": None}
FULL = {"runs": 16, "proxy_steps": 160, "steps": 480, "seeds": 3}
QUICK = {"runs": 8, "proxy_steps": 24, "steps": 24, "seeds": 2}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/allocation", help="work directory (corpus, runs, training runs)")
    ap.add_argument("--corpus", default=None, help="prepared corpus (default: the demo's gettext corpus under --out)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="CPU-sized smoke run: %s" % QUICK)
    ap.add_argument("--runs", type=int, default=None, help=f"proxy mixtures (default {FULL['runs']})")
    ap.add_argument("--proxy-steps", type=int, default=None, help=f"steps per proxy run (default {FULL['proxy_steps']})")
    ap.add_argument("--steps", type=int, default=None, help=f"steps of each final run (default {FULL['steps']})")
    ap.add_argument("--seeds", type=int, default=None, help=f"seeds per method (default {FULL['seeds']}, >= 2)")
    ap.add_argument("--global-batch", type=int, default=16)
    ap.add_argument("--heldout-samples", type=int, default=32)
    ap.add_argument("--e-max", type=float, default=8.0)
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.seeds < 2:
        ap.error("--seeds must be >= 2 (a standard error needs two)")
    return args


def mean_and_stderr(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v)))


def main(argv=None) -> dict:
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    from climbstream.train.demo import ensure_gettext_corpus
    from climbstream.formats.manifest import MANIFEST_NAME, Manifest
    from climbstream.mixture.inputs import read_counts
    from climbstream.mixture.cv import cross_validate
    from climbstream.mixture.design import design_mixtures, save_design
    from climbstream.mixture.fit import fit_climb_law
    from climbstream.mixture.runs import load_runs
    from climbstream.mixture.solver import allocate
    from climbstream.train.sweep import SweepConfig, run_sweep
    from climbstream.train.loop import TrainConfig, train

    args = parse_args(argv)
    started = time.time()
    os.makedirs(args.out, exist_ok=True)
    corpus = args.corpus or ensure_gettext_corpus(os.path.join(args.out, "corpus"))
    manifest = Manifest.load(corpus)
    langs = sorted(manifest.languages)
    counts = read_counts(os.path.join(corpus, MANIFEST_NAME))

    design = os.path.join(args.out, "design.yaml")
    save_design(design, langs, design_mixtures(args.runs, len(langs), "dirichlet", seed=0), method="dirichlet", seed=0)
    runs_csv = os.path.join(args.out, "runs.csv")
    sweep = run_sweep(SweepConfig(design=design, corpus=corpus, runs_out=runs_csv, steps=args.proxy_steps,
                                  global_batch=args.global_batch, heldout_samples=args.heldout_samples,
                                  device=args.device))
    runs = load_runs(runs_csv)
    law = fit_climb_law(runs)
    cv = cross_validate(runs, "climb")["mae_nats"]

    budget = float(args.steps * args.global_batch * manifest.seq_len)
    allocations = {m: allocate(m, counts, budget, e_max=args.e_max, law=law if m == "climb" else None,
                               params=p).ratios() for m, p in METHODS.items()}
    results = {}
    for method, ratios in allocations.items():
        per_seed, tokens = [], set()
        for seed in range(args.seeds):
            summary = train(TrainConfig(
                corpus=corpus, out_dir=os.path.join(args.out, "final", f"{method}-seed{seed}"), weights=ratios,
                steps=args.steps, global_batch=args.global_batch, seed=seed, heldout_every=None,
                heldout_samples=args.heldout_samples, heldout_at_tokens=[int(budget)],
                checkpoint_every=args.steps, device=args.device))
            final = summary["final_heldout_loss"]
            per_seed.append(float(np.mean([final[n] for n in langs])))
            tokens.add(int(sum(summary["tokens_per_language"].values())))
        mean, se = mean_and_stderr(per_seed)
        results[method] = {"mean_heldout_loss": mean, "stderr": se, "per_seed": per_seed,
                           "tokens_trained": sorted(tokens),  # predicted tokens, seq_len - 1 per sample
                           "ratios": {n: round(r, 5) for n, r in ratios.items()}}
    climb = results["climb"]["mean_heldout_loss"]
    for method, r in results.items():
        other = results[method]
        r["minus_climb"] = other["mean_heldout_loss"] - climb
        r["minus_climb_stderr"] = float(np.hypot(other["stderr"], results["climb"]["stderr"]))
    out = {
        "device": args.device, "corpus": corpus, "languages": langs, "budget_tokens": budget,
        "proxy": {"runs": args.runs, "steps": args.proxy_steps, "seconds_per_run": sweep["seconds_per_run"],
                  "climb_cv_mae_nats": cv},
        "final": {"steps": args.steps, "seeds": args.seeds, "global_batch": args.global_batch,
                  "heldout_samples": args.heldout_samples},
        "results": results,
        "ranking": sorted(results, key=lambda m: results[m]["mean_heldout_loss"]),
        "seconds": round(time.time() - started, 1),
    }
    json.dump(out, sys.stdout)
    print()
    return out


if __name__ == "__main__":
    main()
