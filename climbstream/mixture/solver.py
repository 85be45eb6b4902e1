"""The one entry point: method name + inputs -> Allocation.

Every method sees the same feasible set (inputs.feasible_set) and its answer passes
through the same projection (caps.project), so baselines and Climb are compared under
the same caps and floors, and under the same law when one is given (pred_loss).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from climbstream.errors import SolverError
from climbstream.mixture import baselines
from climbstream.mixture.allocation import Allocation, build_allocation
from climbstream.mixture.caps import project
from climbstream.mixture.climb import solve_climb
from climbstream.mixture.inputs import DEFAULT_E_MAX, Feasible, check_counts, feasible_set
from climbstream.mixture.laws import ClimbLaw, MslLaw

log = logging.getLogger(__name__)

METHODS = ("natural", "uniform", "temperature", "unimax", "msl", "isolated", "climb")
LAW_METHODS = {"msl": "msl", "isolated": "isolated", "climb": "climb"}


def _importance(importance: Mapping[str, float] | None, names: tuple[str, ...]) -> np.ndarray:
    if importance is None:
        return np.ones(len(names))
    unknown = sorted(set(importance) - set(names))
    if unknown:
        raise SolverError(f"importance: languages {unknown} are not in the counts ({list(names)})")
    w = np.array([float(importance.get(n, 1.0)) for n in names])
    bad = [n for n, v in zip(names, w) if not math.isfinite(v) or v < 0]
    if bad or w.sum() <= 0:
        raise SolverError(f"importance: weights must be finite, >= 0 and not all 0 (bad: {bad or list(names)})")
    return w


def _check_law(method: str, law, names: tuple[str, ...]) -> None:
    if law is None:
        if method in LAW_METHODS:
            raise SolverError(
                f"method {method!r} needs a fitted law; fit one with "
                f"'climbstream fit RUNS --kind {LAW_METHODS[method]} --out LAW.yaml' and pass --law LAW.yaml"
            )
        return
    if not isinstance(law, (ClimbLaw, MslLaw)):
        raise SolverError(f"law must be a ClimbLaw or MslLaw, got {type(law).__name__}")
    missing, extra = sorted(set(names) - set(law.languages)), sorted(set(law.languages) - set(names))
    if missing or extra:
        raise SolverError(
            f"the law's languages {list(law.languages)} do not match the counts {list(names)} "
            f"(missing from law: {missing}, not in counts: {extra}); refit on runs over the same languages"
        )
    if method == "msl" and not isinstance(law, MslLaw):
        raise SolverError("method 'msl' needs an MSL law ('climbstream fit RUNS --kind msl'), got a Climb law")
    if method in ("climb", "isolated") and not isinstance(law, ClimbLaw):
        raise SolverError(f"method {method!r} needs a Climb law ('climbstream fit RUNS --kind {method}'), got an MSL law")
    if method == "isolated" and not law.without_interactions():
        raise SolverError("method 'isolated' needs a law fitted with W = I ('climbstream fit RUNS --kind isolated')")


def _climb(box: Feasible, law: ClimbLaw, w: np.ndarray, polish: str) -> tuple[np.ndarray, dict]:
    idx = np.array([box.names.index(n) for n in law.languages])
    sol = solve_climb(law, box.budget_tokens, box.floors[idx], box.caps[idx], importance=w[idx],
                      consumed=box.consumed[idx], polish=polish)
    back = np.empty(law.K)
    back[idx] = np.arange(law.K)
    order = back.astype(int)

    def named(r):
        return {n: float(r[law.languages.index(n)]) for n in sorted(box.names)}

    params = {
        "two_step": {"ratios": named(sol.two_step), "F": sol.F_two_step, **sol.info},
        "polished": {"ratios": named(sol.ratios), "F": sol.F_polished, "method": sol.polish_method,
                     "converged": sol.polish_converged, "kkt_residual": sol.kkt_residual},
        "chosen": "polished" if sol.F_polished < sol.F_two_step else "two_step",
    }
    return sol.ratios[order], params


def allocate(
    method: str,
    counts: Mapping[str, int],
    budget_tokens: float,
    *,
    e_max: float = DEFAULT_E_MAX,
    floor: float | Mapping[str, float] | None = None,
    importance: Mapping[str, float] | None = None,
    law: ClimbLaw | MslLaw | None = None,
    params: Mapping | None = None,
    consumed: Mapping[str, float] | None = None,
    allow_infeasible: bool = False,
    polish: str = "auto",
) -> Allocation:
    """Solve for language ratios with `method` in natural|uniform|temperature|unimax|msl|isolated|climb.

    `budget_tokens` is the budget still to allocate (mid-run: the remaining tokens, with
    `consumed` the tokens already seen). `floor` defaults to 0.1/K; `params` carries
    method options (temperature: {"alpha": 0.3}). Raises SolverError for bad input or
    when caps cannot fill the budget (unless allow_infeasible, which marks params).
    """
    if method not in METHODS:
        raise SolverError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    counts = check_counts(counts)
    names = tuple(sorted(counts))
    _check_law(method, law, names)
    box = feasible_set(counts, budget_tokens, e_max=e_max, floor=floor, consumed=consumed, names=names,
                       allow_infeasible=allow_infeasible)
    w = _importance(importance, names)
    out_params = dict(params or {})
    if box.infeasible:
        log.warning("%s", box.infeasible)
        r = box.caps / box.caps.sum() if box.caps.sum() > 0 else np.full(len(names), 1.0 / len(names))
        return build_allocation(method, box, r, law=law, importance=w, params=out_params)
    if method == "climb" or method == "isolated":
        r, extra = _climb(box, law, w, polish)
        out_params.update(extra)
    else:
        if method == "natural":
            proposal = baselines.natural(box)
        elif method == "uniform":
            proposal = baselines.uniform(box)
        elif method == "temperature":
            alpha = float(out_params.setdefault("alpha", baselines.DEFAULT_TEMPERATURE_ALPHA))
            proposal = baselines.temperature(box, alpha)
        elif method == "unimax":
            proposal = baselines.unimax(box)
        else:
            proposal = baselines.msl(box, law, w)
        r = project(proposal, box.floors, box.caps)
        moved = np.abs(r - proposal) > 1e-9
        if moved.any():
            out_params["projected"] = sorted(n for n, m in zip(names, moved) if m)
    return build_allocation(method, box, r, law=law, importance=w, params=out_params)
