"""Minimize a smooth convex objective over {sum r = 1, floor <= r <= cap}, with a real optimality test.

The Climb objective F is smooth and (with W >= 0 and no repetition term) convex, so its
minimizer is the point where the KKT conditions hold: some multiplier nu makes
g_i + nu = 0 on free coordinates, >= 0 at a floor, <= 0 at a cap. `kkt_residual`
measures how far r is from that (the projected-gradient residual, in units of ratio),
and `polish` stops only when it is below `tol`; `converged` is True exactly then.

Method: projected Newton on the free coordinates (Bertsekas' two-metric form: coordinates
at a bound whose gradient pushes outward are held, the rest take the Newton step of the
equality-constrained problem with the exact Hessian), with an Armijo search along the
projection arc; coordinates within epsilon of a bound count as at it, with epsilon
shrinking with the residual, so that they cannot zigzag against the bound. Where that step gives no descent (an indefinite or stale active set), a
projected-gradient step, which always descends away from a KKT point, is taken instead;
so a failed line search never ends the solve. Each iteration is O(K^3) for the Newton
system: K = 1000 takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TOLERANCE = 1e-7
_EPS_ACTIVE = 1e-2


def project_euclidean(v: np.ndarray, floors: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Euclidean projection onto {sum r = 1, floors <= r <= caps} (bisection on the shift)."""
    lo, hi = float(np.min(v - caps)), float(np.max(v - floors))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.clip(v - mid, floors, caps).sum() > 1.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-16 * max(1.0, abs(hi)):
            break
    r = np.clip(v - hi, floors, caps)
    free = (r > floors) & (r < caps)
    if free.any():
        r[free] += (1.0 - r.sum()) / free.sum()
    return np.clip(r, floors, caps)


def kkt_residual(r: np.ndarray, g: np.ndarray, floors: np.ndarray, caps: np.ndarray) -> float:
    """Projected-gradient stationarity: max |r - P(r - g / max|g|)|, in units of ratio.

    0 exactly at a KKT point; a coordinate that the gradient pushes against a bound adds
    no more than its distance to that bound, so the measure reads "how far would the
    ratios move under a unit gradient step" and is comparable across K and budgets.
    """
    scale = max(float(np.max(np.abs(g))), 1e-300)
    return float(np.max(np.abs(r - project_euclidean(r - g / scale, floors, caps))))


def duality_gap(r: np.ndarray, g: np.ndarray, floors: np.ndarray, caps: np.ndarray) -> float:
    """Frank-Wolfe gap g . (r - s), s the feasible point minimizing g . s: for a convex F an
    upper bound on F(r) - min F, from r and g alone (no reference solver needed)."""
    s = floors.astype(np.float64).copy()
    left = 1.0 - s.sum()
    for i in np.argsort(g):  # fill the cheapest directions first
        take = min(caps[i] - s[i], left)
        s[i] += take
        left -= take
        if left <= 0:
            break
    return float(g @ (r - s))


def polish(value_grad: Callable, hessian: Callable, r0: np.ndarray, floors: np.ndarray, caps: np.ndarray,
           tol: float = TOLERANCE, max_iter: int = 500) -> tuple[np.ndarray, bool, int, float]:
    """(r, converged, iterations, kkt_residual) from r0; converged means kkt_residual <= tol."""
    r = project_euclidean(np.asarray(r0, dtype=np.float64), floors, caps)
    f, g = value_grad(r)
    kkt = kkt_residual(r, g, floors, caps)
    it = 0
    while kkt > tol and it < max_iter:
        it += 1
        eps = min(_EPS_ACTIVE / len(r), kkt)  # Bertsekas' epsilon-active set
        step = _newton_step(r, f, g, hessian(r), value_grad, floors, caps, eps)
        if step is None:
            step = _gradient_step(r, f, g, value_grad, floors, caps)
        if step is None:
            break  # no descent at machine precision: report the residual as it is
        r, f, g = step
        kkt = kkt_residual(r, g, floors, caps)
    return r, kkt <= tol, it, kkt


def _armijo(r, f, g, direction: Callable, value_grad, t0: float):
    t = t0
    while t > 1e-14 * t0:
        rn = direction(t)
        fn, gn = value_grad(rn)
        if np.isfinite(fn) and fn <= f + 1e-4 * float(g @ (rn - r)) and fn < f:
            return rn, fn, gn
        t *= 0.5
    return None


def _newton_step(r, f, g, H, value_grad, floors, caps, eps):
    nu = _multiplier(r, g, floors, caps, eps)
    held = ((r <= floors + eps) & (g + nu > 0)) | ((r >= caps - eps) & (g + nu < 0))
    idx = np.flatnonzero(~held)
    if not len(idx):
        return None
    m = len(idx)
    kkt = np.zeros((m + 1, m + 1))
    kkt[:m, :m] = H[np.ix_(idx, idx)] + 1e-12 * max(float(np.trace(H)) / len(r), 1e-300) * np.eye(m)
    kkt[:m, m] = kkt[m, :m] = 1.0
    rhs = np.append(-g[idx], 0.0)
    try:
        sol = np.linalg.solve(kkt, rhs)
    except np.linalg.LinAlgError:
        sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
    d = np.zeros_like(r)
    d[idx] = sol[:m]
    if not np.all(np.isfinite(d)) or float(g @ d) >= 0:
        return None
    return _armijo(r, f, g, lambda t: project_euclidean(r + t * d, floors, caps), value_grad, 1.0)


def _gradient_step(r, f, g, value_grad, floors, caps):
    t0 = 1.0 / max(float(np.max(np.abs(g))), 1e-300)
    return _armijo(r, f, g, lambda t: project_euclidean(r - t * g, floors, caps), value_grad, t0)


def _multiplier(r, g, floors, caps, eps) -> float:
    free = (r > floors + eps) & (r < caps - eps)
    return -float(np.mean(g[free])) if free.any() else -float(np.median(g))
