"""Solver and fit timings; prints one JSON object (add --markdown for a table too).

Climb solve (two-step + polish) for K = 10, 100, 1000 languages with a synthetic law
(sparse non-negative W, 3 transfers per language, beta in [0.2, 0.5]), a synthetic
fit of 200 runs over K = 20, and the solution quality at K = 8 ... 1000 with skewed counts
and binding caps (`quality`). Targets: K = 100 under 1 s, K = 1000 under 60 s, a
relative gap to the reference of at most 1e-6.

    .venv/bin/python benchmarks/solver.py [--sizes 10,100,1000] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import scipy

from climbstream.mixture.fit import fit_climb_law
from climbstream.mixture.laws import ClimbLaw
from climbstream.mixture.runs import runs_from_rows
from climbstream.mixture.solver import allocate


def synthetic_law(k: int, seed: int = 0) -> ClimbLaw:
    rng = np.random.default_rng(seed)
    W = np.eye(k)
    for i in range(k):
        others = rng.choice([j for j in range(k) if j != i], size=min(3, k - 1), replace=False)
        W[i, others] = rng.uniform(0.05, 0.4, len(others))
    return ClimbLaw(languages=tuple(f"l{i:04d}" for i in range(k)), E=rng.uniform(0.8, 1.5, k),
                    B=rng.uniform(20, 200, k), beta=rng.uniform(0.2, 0.5, k), W=W)


def time_solve(k: int) -> dict:
    law = synthetic_law(k)
    rng = np.random.default_rng(1)
    budget = 1e9
    counts = {n: int(c) for n, c in zip(law.languages, rng.uniform(0.2, 5.0, k) * budget / k)}
    t0 = time.perf_counter()
    alloc = allocate("climb", counts, budget, law=law, floor=0.1 / k)
    seconds = time.perf_counter() - t0
    p = alloc.params
    return {"K": k, "seconds": round(seconds, 4), "polish": p["polished"]["method"],
            "polish_gradient": "analytic", "polish_converged": p["polished"]["converged"],
            "F_two_step": p["two_step"]["F"], "F_polished": p["polished"]["F"],
            "lp_calls": p["two_step"]["lp_calls"],
            "binding": sum(a.binding for a in alloc.languages.values())}


def quality(k: int, reference_max_k: int = 145) -> dict:
    """Climb at K languages with skewed counts and binding caps, against SLSQP from 3 starts.

    Counts are log-normal (sigma 2: a few large languages, a long tail), the budget is
    twice the corpus over e_max 4, so the tail is capped. The reference is scipy's SLSQP
    from the two-step answer, the uniform point and the natural point (K <= reference_max_k:
    above, one SLSQP run takes minutes); at every K the Frank-Wolfe duality gap is a
    reference-free upper bound on how far the answer is from the optimum (F is convex).
    """
    from climbstream.mixture.climb import Objective, _slsqp, solve_climb
    from climbstream.mixture.caps import project

    law = synthetic_law(k)
    rng = np.random.default_rng(1)
    budget = 1e9
    counts = np.exp(rng.normal(0.0, 2.0, k))
    counts = counts / counts.sum() * 2 * budget
    caps = np.minimum(1.0, 4 * counts / budget)
    floors = np.minimum(np.full(k, 0.1 / k), caps)
    t0 = time.perf_counter()
    sol = solve_climb(law, budget, floors, caps)
    seconds = time.perf_counter() - t0
    out = {"K": k, "seconds": round(seconds, 3), "F": sol.F_polished, "converged": sol.polish_converged,
           "kkt_residual": sol.kkt_residual, "duality_gap_relative": sol.info["duality_gap"] / abs(sol.F_polished),
           "binding_caps": int(np.sum(sol.ratios >= caps - 1e-12)), "iterations": sol.info["polish_iterations"]}
    if k <= reference_max_k:
        obj = Objective(law, budget, np.zeros(k), np.ones(k))
        starts = [sol.two_step, project(np.ones(k), floors, caps), project(counts, floors, caps)]
        t0 = time.perf_counter()
        best = min(obj.value(_slsqp(obj, r0, floors, caps)[0]) for r0 in starts)
        out["reference_seconds"] = round(time.perf_counter() - t0, 3)
        out["F_reference"] = best
        out["gap_relative"] = (sol.F_polished - best) / abs(best)
    return out


def time_fit(n_runs: int = 200, k: int = 20) -> dict:
    law = synthetic_law(k, seed=2)
    rng = np.random.default_rng(3)
    rows = []
    for run in range(n_runs):
        r = rng.dirichlet(np.ones(k))
        r = np.maximum(r, 1e-3)
        r /= r.sum()
        loss = law.predict(r, 1e8) * np.exp(rng.normal(0, 0.003, k))
        row = {"run": run, "tokens": 1e8, "params": 1e7}
        row.update({f"ratio_{n}": x for n, x in zip(law.languages, r)})
        row.update({f"loss_{n}": x for n, x in zip(law.languages, loss)})
        rows.append(row)
    runs = runs_from_rows(rows, "synthetic")
    t0 = time.perf_counter()
    fitted = fit_climb_law(runs)
    return {"runs": n_runs, "K": k, "seconds": round(time.perf_counter() - t0, 3),
            "train_mae_nats": fitted.fit_info["train_mae_nats"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--skip-fit", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--quality", default="8,21,40,80,145,500,1000",
                    help="K values of the solution-quality run ('' to skip)")
    args = ap.parse_args()
    out = {
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                    "cpu": platform.processor() or platform.machine()},
        "polish_note": "projected Newton (exact Hessian), stopped on a KKT residual <= 1e-7 (projected gradient, units of ratio), at every K",
        "solve": [time_solve(int(k)) for k in args.sizes.split(",")],
    }
    if not args.skip_fit:
        out["fit"] = time_fit()
    if args.quality:
        out["quality"] = [quality(int(k)) for k in args.quality.split(",")]
    print(json.dumps(out))
    if args.markdown:
        print("\n| K | seconds | polish | F two-step | F polished |\n|---|---|---|---|---|")
        for s in out["solve"]:
            print(f"| {s['K']} | {s['seconds']} | {s['polish']} | {s['F_two_step']:.6f} | {s['F_polished']:.6f} |")
        print("\n| K | seconds | converged | KKT residual | duality gap (rel.) | gap to SLSQP x3 (rel.) |\n"
              "|---|---|---|---|---|---|")
        for q in out.get("quality", []):
            gap = f"{q['gap_relative']:.1e}" if "gap_relative" in q else "n/a"
            print(f"| {q['K']} | {q['seconds']} | {q['converged']} | {q['kkt_residual']:.1e} | "
                  f"{q['duality_gap_relative']:.1e} | {gap} |")


if __name__ == "__main__":
    main()
