"""Steps the allocation benchmark shares: proxy design, runs-table rows, the law fit, and the K=3 regret grid.

allocation.py holds the protocol and the command line; allocation_refine.py protocol v2's
main study; allocation_train.py one training run; allocation_stats.py the intervals.
Everything here is deterministic given the sizes and the seeds (on one machine and
thread count).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence

import numpy as np

from allocation_train import RunShape, eval_stderr, mean_loss

log = logging.getLogger(__name__)

PROXY_SEED = 1000  # proxies share one init and data order (their differences are the mixtures'), apart from the finals'
METHODS = ("climb", "temperature", "unimax", "uniform")
TEMPERATURE_ALPHA = 0.3


def budget_tokens(shape: RunShape, seq_len: int) -> float:
    return float(shape.steps * shape.global_batch * seq_len)


def design_proxies(counts: Mapping[str, int], shape: RunShape, runs: int, seq_len: int, e_max: float) -> list[dict]:
    """`runs` Dirichlet mixtures (design seed 0) projected onto the caps and floors at the proxy budget."""
    from climbstream.mixture.design import design_mixtures
    from climbstream.mixture.inputs import feasible_set

    names = sorted(counts)
    box = feasible_set(counts, budget_tokens(shape, seq_len), e_max=e_max, names=tuple(names))
    design = design_mixtures(runs, len(names), "dirichlet", seed=0, floors=box.floors, caps=box.caps)
    return [{n: float(x) for n, x in zip(names, r)} for r in design]


def proxy_jobs(mixtures: Sequence[Mapping[str, float]], shape: RunShape) -> list[tuple]:
    return [(dict(r), shape, PROXY_SEED, PROXY_SEED, sorted(r)) for r in mixtures]


def runs_table(rows: Sequence[Mapping], source: str):
    """A RunsTable of benchmark rows (run, tokens, params, ratio_<lang>, loss_<lang>)."""
    from climbstream.mixture.runs import runs_from_rows

    return runs_from_rows(rows, source)


def fit_law(mixtures: Sequence[Mapping[str, float]], outs: Sequence[dict], shape: RunShape, seq_len: int):
    """Fit the Climb law (library defaults) on the trained proxies; returns (law, info).

    info holds the runs table rows and the law's 4-fold CV and in-sample errors, in nats
    (mean absolute error of per-language held-out loss).
    """
    from climbstream.mixture.cv import cross_validate
    from climbstream.mixture.fit import fit_climb_law
    from climbstream.mixture.runs import runs_from_rows

    budget = budget_tokens(shape, seq_len)
    rows = [{"run": run, "tokens": budget, "params": out["params"],
             **{f"ratio_{n}": r[n] for n in sorted(r)},
             **{f"loss_{n}": float(out["heldout"][n].mean()) for n in sorted(r)}}
            for run, (r, out) in enumerate(zip(mixtures, outs))]
    table = runs_from_rows(rows, "allocation proxies")
    law = fit_climb_law(table)
    cv = cross_validate(table, "climb", folds=4)
    return law, {"runs": len(rows), "steps": shape.steps, "budget_tokens": budget,
                 "seconds_per_run": float(np.mean([o["seconds"] for o in outs])),
                 "cv_mae_nats": cv["mae_nats"], "cv_per_language": cv["per_language"],
                 "train_mae_nats": law.fit_info.get("train_mae_nats"),
                 "W_offdiag_sum": float(np.abs(law.W - np.eye(law.K)).sum()),
                 "rows": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()} for row in rows]}


def solve_mixtures(counts: Mapping[str, int], budget: float, law, e_max: float) -> dict[str, dict[str, float]]:
    """Each method's ratios under the same caps (e_max) and floors, except uniform.

    uniform is the naive baseline, 1/K whatever the caps (it repeats small languages past
    e_max); UniMax is uniform with the caps. With uniform projected onto the caps the two
    would be the same mixture by construction.
    """
    from climbstream.mixture.solver import allocate

    out = {"climb": allocate("climb", counts, budget, e_max=e_max, law=law).ratios(),
           "temperature": allocate("temperature", counts, budget, e_max=e_max,
                                   params={"alpha": TEMPERATURE_ALPHA}).ratios(),
           "unimax": allocate("unimax", counts, budget, e_max=e_max).ratios(),
           "uniform": {n: 1.0 / len(counts) for n in counts}}
    return {m: {n: float(v) for n, v in sorted(r.items())} for m, r in out.items()}


def predicted_mean_loss(law, ratios: Mapping[str, float], budget: float) -> float:
    """The law's mean over languages of the predicted held-out loss after `budget` tokens of `ratios`."""
    r = np.array([ratios[n] for n in law.languages])
    return float(np.mean(law.predict(r, budget)))


def run_regret(runner, counts: Mapping[str, int], *, final: RunShape, proxy: RunShape, proxies: int, parts: int,
               seq_len: int, e_max: float) -> dict:
    """The K = 3 regret grid (v1's second experiment): proxies -> law -> every grid mixture and each pick."""
    mixtures = design_proxies(counts, proxy, proxies, seq_len, e_max)
    law, proxy_info = fit_law(mixtures, runner.run(proxy_jobs(mixtures, proxy)), proxy, seq_len)
    plan = plan_grid(counts, law, final, parts, seq_len, e_max)
    return {"regret": score_grid(plan, runner.run(plan["jobs"]), law, counts, proxy_info, final, e_max)}


def simplex_grid(k: int, parts: int) -> list[np.ndarray]:
    """Interior points of the simplex with step 1/parts (every language at least 1/parts)."""
    return [np.array(c, dtype=float) / parts for c in itertools.product(range(1, parts), repeat=k) if sum(c) == parts]


def plan_grid(counts, law, final: RunShape, parts: int, seq_len: int, e_max: float) -> dict:
    """Every interior grid mixture and each method's pick, one common seed (0); a pick on the grid is not trained twice."""
    names = sorted(counts)
    budget = budget_tokens(final, seq_len)
    picks = solve_mixtures(counts, budget, law, e_max)
    labelled = [(f"grid{i}", {n: float(x) for n, x in zip(names, p)}) for i, p in enumerate(simplex_grid(len(names), parts))]
    jobs, index = [], []
    for label, ratios in labelled + [(m, picks[m]) for m in METHODS]:
        same = next((i for i, j in enumerate(jobs) if np.allclose([j[0][n] for n in names],
                                                                  [ratios[n] for n in names], atol=1e-6)), None)
        if same is None:
            jobs.append((ratios, final, 0, 0, names))
            same = len(jobs) - 1
        index.append((label, ratios, same))
    return {"budget": budget, "parts": parts, "grid_size": len(labelled), "index": index, "jobs": jobs}


def score_grid(plan: dict, outs: Sequence[dict], law, counts, proxy_info: dict, final: RunShape, e_max: float) -> dict:
    """Regret of each method's pick against the best trained mixture (grid or pick), with its evaluation SE.

    One seed, common to every run (same weights, same draws), so mixtures are compared like
    the paired final runs; each regret's standard error is over held-out samples, paired
    against the best mixture.
    """
    names, budget = sorted(counts), plan["budget"]
    trained = [{"label": label, "ratios": ratios, "scores": outs[i]["heldout"], "loss": mean_loss(outs[i]["heldout"]),
                "law_predicted_loss": predicted_mean_loss(law, ratios, budget)} for label, ratios, i in plan["index"]]
    grid = trained[:plan["grid_size"]]
    best = min(trained, key=lambda t: t["loss"])
    law_best = min(grid, key=lambda t: t["law_predicted_loss"])
    picks = {t["label"]: {"ratios": {n: round(v, 4) for n, v in t["ratios"].items()}, "loss": t["loss"],
                          "regret": t["loss"] - best["loss"],
                          "regret_eval_stderr": eval_stderr(t["scores"], best["scores"]) if t is not best else 0.0,
                          "law_predicted_loss": t["law_predicted_loss"]}
             for t in trained[plan["grid_size"]:]}
    losses = np.array([t["loss"] for t in trained])
    predicted = np.array([t["law_predicted_loss"] for t in trained])
    return {"languages": names, "budget_tokens": budget, "steps": final.steps, "e_max": e_max, "seed": 0,
            "grid_step": round(1.0 / plan["parts"], 5),
            "proxy": {k: v for k, v in proxy_info.items() if k != "rows"},
            "best": {"label": best["label"], "ratios": {n: round(v, 4) for n, v in best["ratios"].items()},
                     "loss": best["loss"]},
            "law_best_grid_point": {"label": law_best["label"], "loss": law_best["loss"],
                                    "regret": law_best["loss"] - best["loss"]},
            "picks": picks,
            "law_vs_trained_rank_correlation": float(_spearman(losses, predicted)),
            "law_mae_nats_on_trained": float(np.mean(np.abs(losses - predicted))),
            "grid": [{"label": t["label"], "ratios": {n: round(v, 4) for n, v in t["ratios"].items()},
                      "loss": round(t["loss"], 5), "law_predicted_loss": round(t["law_predicted_loss"], 5)}
                     for t in grid]}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return spearmanr(a, b).statistic
