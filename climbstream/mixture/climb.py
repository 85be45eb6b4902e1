"""The Climb solve: two-step (equalize marginal benefits, maximize magnitude), then polish.

Minimizes F(r) = sum_i w_i L_i(x_i), x = W (a + D r), over the feasible set
{sum r = 1, floor <= r <= cap}; a are tokens already consumed (0 offline). F is convex
(L_i convex and decreasing in x_i, x affine in r; with the repetition discount x is
concave in r, still convex), so the polish reaches the optimum.

Step 1 fixes the direction: marginal benefits g_i = w_i beta_i B_i x_i^(-beta_i-1) equal
to mu give targets x_i(mu) = (w_i beta_i B_i / mu)^(1/(beta_i+1)). Step 2 maximizes the
magnitude: the smallest mu for which some feasible r has W (a + D r) >= x(mu), found by a
root search on the LP value t*(mu) = max{t : W (a + D r) >= t x(mu)} = 1 (HiGHS). A
language pinned at its cap that still limits t is fixed there and the LP re-solved. The
two-step answer equals the optimum only when W's column sums are equal, so `polish`
minimizes F directly from it (mixture/polish.py: projected Newton with the exact Hessian
and a KKT-residual stop, at any K; SLSQP on request) and both answers are reported with
their F. `polish_converged` means the KKT residual is below KKT_TOLERANCE, whatever
method ran.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq, linprog, minimize

from climbstream.errors import SolverError
from climbstream.mixture.caps import project
from climbstream.mixture.laws import ClimbLaw, repeated_tokens
from climbstream.mixture.polish import TOLERANCE as KKT_TOLERANCE
from climbstream.mixture.polish import duality_gap, kkt_residual
from climbstream.mixture.polish import polish as newton_polish

log = logging.getLogger(__name__)


@dataclass
class ClimbSolution:
    ratios: np.ndarray
    two_step: np.ndarray
    F_two_step: float
    F_polished: float
    polish_method: str
    polish_converged: bool
    info: dict = field(default_factory=dict)
    kkt_residual: float = float("nan")


class Objective:
    """F(r) and its gradient for a law, budget D, consumed tokens a and weights w."""

    def __init__(self, law: ClimbLaw, D: float, consumed: np.ndarray, w: np.ndarray):
        self.law, self.D, self.a, self.w = law, float(D), consumed, w
        self.Wt = law.W.T.copy()
        self.c = law.irreducible()

    def value_grad(self, r: np.ndarray) -> tuple[float, np.ndarray]:
        law = self.law
        seen = self.a + self.D * np.maximum(r, 0.0)
        rep = repeated_tokens(seen, law.unique_tokens, law.repetition_decay_epochs)
        x = np.maximum(rep @ self.Wt, 1e-9)
        tb = law.B * x ** (-law.beta)
        F = float(self.w @ (self.c + tb))
        dx = -self.w * law.beta * tb / x
        drep = dx @ law.W
        if law.unique_tokens is not None and law.repetition_decay_epochs is not None:
            s = np.maximum(law.unique_tokens, 1.0)
            extra = np.maximum(seen / s - 1.0, 0.0)
            drep = drep * np.where(seen <= s, 1.0, np.exp(-extra / law.repetition_decay_epochs))
        return F, self.D * drep

    def value(self, r: np.ndarray) -> float:
        return self.value_grad(r)[0]

    def hessian(self, r: np.ndarray) -> np.ndarray:
        """Exact Hessian D^2 J W^T diag(w L'') W J (+ the repetition curvature term)."""
        law = self.law
        seen = self.a + self.D * np.maximum(r, 0.0)
        rep = repeated_tokens(seen, law.unique_tokens, law.repetition_decay_epochs)
        x = np.maximum(rep @ self.Wt, 1e-9)
        tb = law.B * x ** (-law.beta)
        d1 = -self.w * law.beta * tb / x
        d2 = self.w * law.beta * (law.beta + 1) * tb / (x * x)
        jac = np.ones_like(seen)
        curv = np.zeros_like(seen)
        if law.unique_tokens is not None and law.repetition_decay_epochs is not None:
            s = np.maximum(law.unique_tokens, 1.0)
            decay = law.repetition_decay_epochs
            over = seen > s
            jac = np.where(over, np.exp(-np.maximum(seen / s - 1.0, 0.0) / decay), 1.0)
            curv = np.where(over, -jac / (s * decay), 0.0) * (d1 @ law.W)
        JW = law.W * jac[None, :]
        return self.D ** 2 * ((JW.T * d2) @ JW + np.diag(curv))


def _targets(law: ClimbLaw, w: np.ndarray, log_mu: float) -> np.ndarray:
    return np.exp((np.log(w * law.beta * law.B) - log_mu) / (law.beta + 1.0))


def _lp(law, D, a, x, floors, caps, active):
    """max t s.t. (W (a + D r))_i >= t x_i for active i, sum r = 1, floors <= r <= caps."""
    k = law.K
    W = law.W[active]
    xs = x[active]
    dense = k < 200 or np.count_nonzero(W) > 0.2 * W.size
    Wm = W if dense else sp.csr_matrix(W)
    scaled = (Wm * (D / xs)[:, None]) if dense else sp.diags(D / xs) @ Wm
    t_col = np.ones((int(active.sum()), 1))
    A_ub = np.hstack([-scaled, t_col]) if dense else sp.hstack([-scaled, sp.csr_matrix(t_col)]).tocsr()
    b_ub = (law.W[active] @ a) / xs
    A_eq = np.append(np.ones(k), 0.0)[None, :]
    bounds = list(zip(floors, caps)) + [(0.0, None)]
    res = linprog(np.append(np.zeros(k), -1.0), A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[1.0],
                  bounds=bounds, method="highs")
    if res.status != 0:
        raise SolverError(f"two-step LP failed ({res.message}); check caps and floors")
    return res.x[:k], float(res.x[k])


def two_step(law: ClimbLaw, D: float, a: np.ndarray, w: np.ndarray, floors, caps) -> tuple[np.ndarray, dict]:
    """The two-step answer (see module docstring); returns (ratios, info)."""
    active = np.ones(law.K, dtype=bool)
    calls = 0
    for _ in range(law.K):
        def log_t(log_mu: float) -> float:
            nonlocal calls
            calls += 1
            return np.log(max(_lp(law, D, a, _targets(law, w, log_mu), floors, caps, active)[1], 1e-300))

        r0 = project(np.ones(law.K), floors, caps)
        x0 = np.maximum(law.W @ (a + D * r0), 1.0)
        lo = hi = float(np.median(np.log(w * law.beta * law.B) - (law.beta + 1) * np.log(x0)))
        while log_t(lo) > 0:
            lo -= 5.0
        while log_t(hi) < 0:
            hi += 5.0
        log_mu = brentq(log_t, lo, hi, xtol=1e-10, rtol=1e-12)
        x = _targets(law, w, log_mu)
        r, t = _lp(law, D, a, x, floors, caps, active)
        slack = (law.W @ (a + D * r)) / x - t
        pinned = active & (r >= caps - 1e-9) & (slack <= 1e-7)
        if not pinned.any() or pinned.sum() == active.sum():
            break
        active &= ~pinned
        floors = np.where(pinned, caps, floors)
    return r, {"log_mu": float(log_mu), "lp_calls": calls, "pinned_at_cap": int((~active).sum())}


def _slsqp(obj: Objective, r0, floors, caps):
    res = minimize(obj.value_grad, r0, jac=True, method="SLSQP", bounds=list(zip(floors, caps)),
                   constraints=[{"type": "eq", "fun": lambda r: r.sum() - 1.0, "jac": lambda r: np.ones_like(r)}],
                   options={"maxiter": 1000, "ftol": 1e-15})
    r = project(np.clip(res.x, floors, caps), floors, caps)
    return r, bool(res.success), int(res.nit)


def solve_climb(law: ClimbLaw, budget_tokens: float, floors: np.ndarray, caps: np.ndarray, *,
                importance: np.ndarray | None = None, consumed: np.ndarray | None = None,
                polish: str = "auto") -> ClimbSolution:
    """Two-step then polish, in law.languages order; polish in auto|slsqp|newton|none."""
    k = law.K
    w = np.ones(k) if importance is None else np.asarray(importance, dtype=np.float64)
    a = np.zeros(k) if consumed is None else np.asarray(consumed, dtype=np.float64)
    obj = Objective(law, budget_tokens, a, w)
    r2, info = two_step(law, float(budget_tokens), a, w, floors.copy(), caps.copy())
    r2 = project(np.clip(r2, floors, caps), floors, caps)
    F2 = obj.value(r2)
    method = "newton" if polish == "auto" else polish
    if method == "none":
        return ClimbSolution(r2, r2, F2, F2, "none", False, info, _kkt(obj, r2, floors, caps))
    if method == "slsqp":
        rp, _, nit = _slsqp(obj, r2, floors, caps)
    elif method == "newton":
        rp, _, nit, _ = newton_polish(obj.value_grad, obj.hessian, r2, floors, caps)
    else:
        raise SolverError(f"unknown polish method {polish!r}; expected auto, slsqp, newton or none")
    Fp = obj.value(rp)
    if not np.isfinite(Fp) or Fp > F2:
        rp, Fp = r2, F2
    kkt = _kkt(obj, rp, floors, caps)
    info["polish_iterations"] = nit
    info["duality_gap"] = duality_gap(rp, obj.value_grad(rp)[1], floors, caps)
    return ClimbSolution(rp, r2, F2, Fp, method, kkt <= KKT_TOLERANCE, info, kkt)


def _kkt(obj: Objective, r: np.ndarray, floors: np.ndarray, caps: np.ndarray) -> float:
    return kkt_residual(r, obj.value_grad(r)[1], floors, caps)
