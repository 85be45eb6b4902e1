"""The `validate` report: every law's CV error side by side, and every method's allocation
scored under the same fitted Climb law with the same caps and floors.

This is the honesty check of docs/climb.md section 9: a law is only trusted next to its
rivals' cross-validated error, and Climb's mixture only next to the baselines' predicted
loss under the same law.
"""

from __future__ import annotations

from collections.abc import Mapping

from climbstream.mixture.allocation import Allocation, rescore
from climbstream.mixture.cv import KINDS, cross_validate
from climbstream.mixture.fit import fit_climb_law, fit_msl_law
from climbstream.mixture.inputs import DEFAULT_E_MAX, feasible_set
from climbstream.mixture.laws import ClimbLaw
from climbstream.mixture.runs import RunsTable
from climbstream.mixture.solver import METHODS, allocate

VALIDATION_TEMPERATURE_ALPHA = 0.3


def validate_runs(
    runs: RunsTable,
    counts: Mapping[str, int] | None = None,
    budget_tokens: float | None = None,
    *,
    e_max: float = DEFAULT_E_MAX,
    floor: float | None = None,
    folds: int = 4,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """{cv: {kind: cv dict}, law: ClimbLaw, laws: {...}, allocations: {method: Allocation} or {}}.

    Allocations need counts; the budget defaults to the runs' largest token count.
    Each allocation's pred_loss is under the Climb law; `params.own_law_pred_mean_loss`
    keeps what msl/isolated predict for themselves. `progress` shows one bar step per fit
    (folds x laws, then the three final fits).
    """
    from tqdm import tqdm

    with tqdm(total=len(KINDS) * (folds + 1), desc="validate", unit="fit", disable=not progress) as bar:
        cv = {kind: cross_validate(runs, kind, folds=folds, seed=seed, on_fold=lambda: bar.update(1))
              for kind in KINDS}
        law = fit_climb_law(runs)
        bar.update(1)
        laws = {"climb": law, "isolated": fit_climb_law(runs, isolated=True)}
        bar.update(1)
        laws["msl"] = fit_msl_law(runs)
        bar.update(1)
    allocations: dict[str, Allocation] = {}
    if counts is not None:
        budget = float(budget_tokens if budget_tokens is not None else runs.tokens.max())
        names = tuple(sorted(counts))
        box = feasible_set(counts, budget, e_max=e_max, floor=floor, names=names)
        for method in METHODS:
            own = laws.get(method, law)
            params = {"alpha": VALIDATION_TEMPERATURE_ALPHA} if method == "temperature" else None
            alloc = allocate(method, counts, budget, e_max=e_max, floor=floor, law=own, params=params)
            if own is not law:
                alloc.params["own_law_pred_mean_loss"] = alloc.pred_mean_loss
                alloc = rescore(alloc, law, box)
            allocations[method] = alloc
    return {"cv": cv, "law": law, "laws": laws, "allocations": allocations}


def summary(report: dict) -> dict:
    """The JSON-ready part of a report."""
    law: ClimbLaw = report["law"]
    return {
        "cv": {k: {"mae_nats": v["mae_nats"], "per_language": v["per_language"], "folds": v["folds"],
                   "seed": v["seed"], "metric": v["metric"]} for k, v in report["cv"].items()},
        "interactions": {"languages": list(law.languages), "W": law.W.tolist()},
        "allocations": {m: a.to_dict() for m, a in report["allocations"].items()},
    }
