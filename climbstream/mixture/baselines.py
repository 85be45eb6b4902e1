"""Baseline allocators: natural, uniform, temperature, UniMax and MSL.

Each returns a proposal in `box.names` order; allocate() projects it onto the shared
feasible set (caps and floors), so baselines and Climb are compared on equal terms.
`isolated` is not here: it is the Climb solve with W = I (climb.py).
"""

from __future__ import annotations

import numpy as np

from climbstream.errors import SolverError
from climbstream.mixture.inputs import Feasible
from climbstream.mixture.laws import MslLaw

DEFAULT_TEMPERATURE_ALPHA = 0.3


def natural(box: Feasible) -> np.ndarray:
    """r_i proportional to the available tokens S_i."""
    return box.counts / box.counts.sum()


def uniform(box: Feasible) -> np.ndarray:
    """r_i = 1/K."""
    return np.full(len(box.names), 1.0 / len(box.names))


def temperature(box: Feasible, alpha: float = DEFAULT_TEMPERATURE_ALPHA) -> np.ndarray:
    """r_i proportional to (S_i / sum S)^alpha (alpha = 1/T; XLM-R and mT5 use 0.3)."""
    if not 0 < alpha:
        raise SolverError(f"temperature alpha must be > 0, got {alpha} (alpha = 1/T; 0.3 is usual)")
    q = box.counts / box.counts.sum()
    return np.where(q > 0, q ** alpha, 0.0) / np.where(q > 0, q ** alpha, 0.0).sum()


def unimax(box: Feasible) -> np.ndarray:
    """UniMax (Chung et al. 2023): uniform budget, languages over their epoch cap get the cap.

    Languages in order of increasing cap (that is, available tokens) take
    min(remaining / languages left, cap); the cap counts tokens already consumed.
    """
    D = box.budget_tokens
    order = np.argsort(box.caps * D, kind="stable")
    remaining = D
    tokens = np.zeros(len(box.names))
    k = len(order)
    for pos, i in enumerate(order):
        u = min(remaining / (k - pos), box.caps[i] * D)
        tokens[i] = u
        remaining -= u
    return tokens / D


def msl(box: Feasible, law: MslLaw, importance: np.ndarray | None = None) -> np.ndarray:
    """Minimize sum_f w_f C_f p_f^(-gamma_f) on the box-constrained simplex (exact).

    p_f = clip((gamma_f w_f C_f / lambda)^(1/(1+gamma_f)), floor_f, cap_f), with lambda
    found by bisection so that sum p = 1; languages with gamma_f <= 0 stay at their floor.
    """
    order = [law.languages.index(n) for n in box.names]
    C, gamma = law.C[order], law.gamma[order]
    w = np.ones(len(order)) if importance is None else np.asarray(importance, dtype=np.float64)
    good = gamma > 0
    if not good.any():
        return np.full(len(order), 1.0 / len(order))
    logc = np.where(good, np.log(np.where(good, gamma * w * C, 1.0)), 0.0)
    expo = 1.0 / (1.0 + np.where(good, gamma, 0.0))

    def share(log_lambda: float) -> np.ndarray:
        p = np.where(good, np.exp(np.clip((logc - log_lambda) * expo, -745.0, 700.0)), 0.0)
        return np.clip(p, box.floors, box.caps)

    lo, hi = -2000.0, 2000.0
    for _ in range(300):
        mid = 0.5 * (lo + hi)
        if share(mid).sum() > 1.0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13:
            break
    return share(0.5 * (lo + hi))
