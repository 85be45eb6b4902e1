"""Projection of any ratio vector onto the feasible set {sum r = 1, floor <= r <= cap}.

Every allocator's answer passes through here, so caps and floors bind every method the
same way. The projection keeps the proposal's proportions where it can:
r_i = clip(s * p_i, floor_i, cap_i) with the one scale s > 0 that makes sum r = 1. This is
the KL (information) projection of p onto the box-constrained simplex; the sum is
monotone in s, so s is found by bisection to machine precision.
"""

from __future__ import annotations

import numpy as np

from climbstream.errors import SolverError


def project(proposal: np.ndarray, floors: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Closest feasible ratios to `proposal` in KL; raises SolverError if the box misses sum 1.

    Zero entries of the proposal stay at their floor unless the others cannot take the mass.
    """
    p = np.asarray(proposal, dtype=np.float64)
    if np.any(~np.isfinite(p)) or np.any(p < 0):
        raise SolverError(f"cannot project ratios with negative or non-finite entries: {p.tolist()}")
    if floors.sum() > 1 + 1e-9 or caps.sum() < 1 - 1e-9:
        raise SolverError(
            f"no feasible ratios: floors sum to {floors.sum():.6g}, caps to {caps.sum():.6g} (need floors <= 1 <= caps)"
        )
    logp = np.log(np.where(p > 0, p, 1e-300))

    def total(log_s: float) -> float:
        return float(np.clip(np.exp(np.minimum(logp + log_s, 700.0)), floors, caps).sum())

    lo, hi = -750.0, 750.0
    if total(lo) >= 1.0:
        return floors / floors.sum() if floors.sum() > 0 else np.full(len(p), 1.0 / len(p))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if total(mid) < 1.0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    r = np.clip(np.exp(np.minimum(logp + hi, 700.0)), floors, caps)
    # Put the last rounding residue on the entries strictly inside their bounds.
    free = (r > floors + 1e-15) & (r < caps - 1e-15)
    if free.any():
        r[free] += (1.0 - r.sum()) * r[free] / r[free].sum()
    return r
