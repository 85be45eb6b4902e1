"""Fitting the laws of laws.py to proxy runs.

Climb law: each language's row is fitted on its own (rows are independent): E_i >= 0,
B_i > 0, 0 < beta_i < 2 and the transfers W_ij in [0, w_max] (j != i), by L-BFGS-B on a
Huber loss of the log-loss residual (delta: see HUBER_DELTA), plus a ridge term that shrinks W toward
0, started from a small grid of points. Bounded, non-negative, shrunk interactions are
deliberate: on real runs an unconstrained W overfitted (CV error 0.25 vs 0.039 nats) and
chose a mixture worse than every baseline (docs/climb.md).

MSL: log L_f = log C_f - gamma_f log p_f, a per-language line fitted by least squares.

All fits are deterministic functions of their inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize

from climbstream.errors import SolverError
from climbstream.mixture.laws import MIN_EFFECTIVE_TOKENS, MSL_MIN_RATIO, ClimbLaw, MslLaw
from climbstream.mixture.runs import RunsTable

log = logging.getLogger(__name__)

# climb-method.md names delta 1e-3; on the gettext runs that is an L1 fit of log-loss and
# its 4-fold CV error (seed 0) was 0.0456 nats against MSL's 0.0443. Measured (seed 0 / 1):
# delta 0.01, ridge 1e-3: 0.0435; delta 0.05, ridge 1e-2: 0.0401 / 0.0453;
# delta 0.1, ridge 1e-2: 0.0404 / 0.0425 (MSL 0.0443 / 0.0423). See docs/climb.md.
HUBER_DELTA = 0.1
DEFAULT_W_MAX = 0.5
# The ridge weighs |W_i|^2 against the mean Huber term of row i. No fixed weight suits all
# data: on the gettext runs (law misspecified, CV error 4x the in-sample error) 1e-2 to
# 3e-2 cross-validated best, while on low-noise synthetic runs 1e-2 shrank true transfers
# 0.39 -> 0.22 and only ridge <= 1e-3 recovered the optimum. So by default each row picks
# its ridge from RIDGE_GRID by cross-validation over runs ("cv").
DEFAULT_RIDGE = "cv"
RIDGE_GRID = (0.0, 1e-3, 1e-2, 3e-2, 1e-1)
RIDGE_CV_FOLDS = 4
RIDGE_CV_MIN_GROUPS = 8
FALLBACK_RIDGE = 1e-2  # with fewer than RIDGE_CV_MIN_GROUPS runs
# MSL and isolated laws predict down to this factor below the least share (tokens) their
# runs had, and hold the prediction there. On the gettext runs a factor of 1 raised MSL's
# CV error 0.0443 -> 0.0451 (held-out runs go below the training runs' least share), 3
# and more left it unchanged; on synthetic mixtures with shares near 0, 3 halves the
# unclamped error.
EXTRAPOLATION_RANGE = 3.0
BETA_BOUNDS = (1e-3, 2.0 - 1e-6)
ALPHA_BOUNDS = (1e-3, 2.0)
START_BETAS = (0.2, 0.6)
START_E_FRACTIONS = (0.0, 0.7)
START_W = (0.0,)


class _RowProblem:
    """One language's fit: loss y_n ~ E + A (N_n/N0)^-alpha + B' (x_n / D0)^-beta.

    x_n = T_n @ w_row, with w_row fixed outside `free` and the free entries fitted.
    Parameter vector: [E, log B', beta, (log A', alpha)?, w_free...].
    """

    def __init__(self, T, y, params, i, w_fixed, free, w_max, ridge, delta):
        self.scale = float(np.max(T.sum(axis=1)))
        self.T = T / self.scale
        self.y, self.logy = y, np.log(y)
        self.free = np.asarray(free, dtype=np.int64)
        self.base = self.T @ w_fixed
        self.Tf = self.T[:, self.free]
        self.with_n = params is not None
        if self.with_n:
            self.n_scale = float(np.max(params))
            self.logn = np.log(params / self.n_scale)
        self.ridge, self.delta, self.w_max = ridge, delta, w_max
        self.n_core = 5 if self.with_n else 3

    def bounds(self):
        b = [(0.0, float(np.min(self.y))), (None, None), BETA_BOUNDS]
        if self.with_n:
            b += [(None, None), ALPHA_BOUNDS]
        return b + [(0.0, self.w_max)] * len(self.free)

    def unpack(self, theta):
        w = theta[self.n_core:]
        x = np.maximum(self.base + self.Tf @ w, 1e-12)
        return w, x

    def value_and_grad(self, theta):
        E, b, beta = theta[0], theta[1], theta[2]
        w, x = self.unpack(theta)
        logx = np.log(x)
        tb = np.exp(np.minimum(b - beta * logx, 700.0))
        P = E + tb
        ta = None
        if self.with_n:
            ta = np.exp(np.minimum(theta[3] - theta[4] * self.logn, 700.0))
            P = P + ta
        P = np.maximum(P, 1e-12)
        res = np.log(P) - self.logy
        d = self.delta
        absr = np.abs(res)
        h = np.where(absr <= d, 0.5 * res * res / d, absr - 0.5 * d)
        n = len(res)
        f = h.sum() / n + self.ridge * float(w @ w)
        g_res = np.clip(res, -d, d) / d / P / n
        grad = np.empty_like(theta)
        grad[0] = g_res.sum()
        grad[1] = g_res @ tb
        grad[2] = -(g_res @ (tb * logx))
        if self.with_n:
            grad[3] = g_res @ ta
            grad[4] = -(g_res @ (ta * self.logn))
        if len(self.free):
            grad[self.n_core:] = (g_res * (-beta * tb / x)) @ self.Tf + 2 * self.ridge * w
        return f, grad

    def start(self, beta0, e_frac, w0):
        E0 = e_frac * float(np.min(self.y))
        w = np.full(len(self.free), w0)
        x = np.maximum(self.base + self.Tf @ w, 1e-12)
        b0 = float(np.median(np.log(np.maximum(self.y - E0, 1e-3 * self.y)) + beta0 * np.log(x)))
        core = [E0, b0, beta0]
        if self.with_n:
            core += [np.log(1e-3 * float(np.min(self.y))), 0.3]
        return np.array(core + list(w), dtype=np.float64)

    def residuals(self, theta) -> np.ndarray:
        """log-loss residuals of a parameter vector (the data term's argument)."""
        E, b, beta = theta[0], theta[1], theta[2]
        _, x = self.unpack(theta)
        P = E + np.exp(np.minimum(b - beta * np.log(x), 700.0))
        if self.with_n:
            P = P + np.exp(np.minimum(theta[3] - theta[4] * self.logn, 700.0))
        return np.log(np.maximum(P, 1e-12)) - self.logy

    def _minimize(self, theta0, maxiter, ftol, gtol):
        return minimize(self.value_and_grad, theta0, jac=True, method="L-BFGS-B", bounds=self.bounds(),
                        options={"maxiter": maxiter, "ftol": ftol, "gtol": gtol})

    def _best_from_starts(self, starts_w, extra=()):
        candidates = [(self.value_and_grad(theta)[0], theta) for theta in extra]
        for beta0 in START_BETAS:
            for e_frac in START_E_FRACTIONS:
                for w0 in starts_w if len(self.free) else (0.0,):
                    r = self._minimize(self.start(beta0, e_frac, w0), 60, 1e-13, 1e-10)
                    candidates.append((r.fun, r.x))
        candidates.sort(key=lambda c: c[0])
        best = None
        for _, theta in candidates[:2]:
            r = self._minimize(theta, 3000, 1e-15, 1e-11)
            if best is None or r.fun < best.fun:
                best = r
        return best

    def solve(self, starts_w):
        return self._best_from_starts(starts_w)

    def refit(self, theta0):
        """One L-BFGS-B run from theta0 (warm start for the ridge's cross-validation)."""
        return self._minimize(theta0, 3000, 1e-15, 1e-11)

    def held_out_error(self, theta) -> float:
        """Mean absolute loss error (nats) of theta on this problem's rows."""
        return float(np.mean(np.abs(self.y * np.expm1(self.residuals(theta)))))

    def subset(self, rows: np.ndarray) -> "_RowProblem":
        """The same problem on some rows, in the same units (so parameter vectors carry over)."""
        sub = _RowProblem.__new__(_RowProblem)
        sub.__dict__.update(self.__dict__)
        sub.T, sub.y, sub.logy, sub.base, sub.Tf = self.T[rows], self.y[rows], self.logy[rows], self.base[rows], self.Tf[rows]
        if self.with_n:
            sub.logn = self.logn[rows]
        return sub

    def to_law_values(self, theta):
        """(E, B, beta, A, alpha, w_free) in the law's own units (tokens, parameters)."""
        E, b, beta = theta[0], theta[1], theta[2]
        B = float(np.exp(b) * self.scale ** beta)
        A = alpha = None
        if self.with_n:
            alpha = float(theta[4])
            A = float(np.exp(theta[3]) * self.n_scale ** alpha)
        return float(E), B, float(beta), A, alpha, theta[self.n_core:]


def _fold_ids(n: int, groups: np.ndarray | None, folds: int) -> np.ndarray | None:
    """Fold of each row, rows of one group (run) together; None when there are too few groups."""
    g = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    n_groups = int(g.max()) + 1
    if n_groups < RIDGE_CV_MIN_GROUPS:
        return None
    order = np.random.default_rng(0).permutation(n_groups)
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    fold_of_group[order] = np.arange(n_groups) % min(folds, n_groups)
    return fold_of_group[g]


def _fit_row_cv(prob: _RowProblem, fold: np.ndarray | None):
    """Fit one row with the ridge of RIDGE_GRID that predicts held-out rows best.

    Each grid value is fitted on all rows (from the usual starts), then refitted on each
    fold's training rows from there and scored on its held-out rows (mean absolute loss
    error); ties go to the larger ridge. Returns (result, ridge chosen).
    """
    if fold is None:
        prob.ridge = FALLBACK_RIDGE
        return prob.solve(START_W), FALLBACK_RIDGE
    fits, errors = {}, {}
    for ridge in RIDGE_GRID:
        prob.ridge = ridge
        fits[ridge] = full = prob.solve(START_W)
        err = []
        for f in range(int(fold.max()) + 1):
            train, test = prob.subset(fold != f), prob.subset(fold == f)
            err.append(test.held_out_error(train.refit(full.x).x))
        errors[ridge] = float(np.mean(err))
    chosen = min(sorted(errors, reverse=True), key=lambda r: errors[r])
    prob.ridge = chosen
    return fits[chosen], chosen


def _ridge_per_row(ridge, k: int) -> np.ndarray | None:
    """The ridge of each row, or None for "cv" (each row chooses its own)."""
    if isinstance(ridge, str):
        if ridge != "cv":
            raise SolverError(f"ridge must be a number >= 0, one per language, or 'cv', got {ridge!r}")
        return None
    values = np.full(k, ridge, dtype=np.float64) if np.ndim(ridge) == 0 else np.asarray(ridge, dtype=np.float64)
    if values.shape != (k,) or not np.all(np.isfinite(values)) or np.any(values < 0):
        raise SolverError(f"ridge must be a number >= 0, one per language ({k}), or 'cv', got {ridge!r}")
    return values


def fit_rows(*args, **kwargs) -> ClimbLaw:
    """Fit a ClimbLaw (see _fit_rows) with BLAS limited to one thread.

    L-BFGS-B on these few-parameter rows calls BLAS on tiny vectors, and OpenBLAS's
    threads cost far more than the work: one K = 3 fit of 12 runs took 4.1 s of CPU
    (29.6 s wall on 2 busy cores) with the default threads and 0.19 s (2.4 s) with one.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_rows(*args, **kwargs)


def _fit_rows(
    tokens_seen: np.ndarray,
    losses: np.ndarray,
    languages: Sequence[str],
    *,
    params: np.ndarray | None = None,
    W_fixed: np.ndarray | None = None,
    fit_W: bool = True,
    w_max: float = DEFAULT_W_MAX,
    ridge: float | str = DEFAULT_RIDGE,
    delta: float = HUBER_DELTA,
    kind: str = "climb",
    progress: bool = False,
    groups: np.ndarray | None = None,
) -> ClimbLaw:
    """Fit a ClimbLaw to rows of (tokens seen per language, loss per language).

    `tokens_seen` is n x K (already repetition-discounted if wanted). With fit_W the
    off-diagonal W entries are fitted in [0, w_max]; otherwise W_fixed (or I) is used.
    `params` (model sizes per row) adds the A/N^alpha term when it varies. `progress`
    shows a bar with one step per language (each row is fitted from several starts).
    `ridge` is a weight >= 0, one weight per language (a bootstrap replicate keeps the
    full fit's choices), or "cv": each row chooses it from RIDGE_GRID by
    cross-validation, rows of one `groups` value (a run) held out together.
    """
    from tqdm import tqdm

    T = np.asarray(tokens_seen, dtype=np.float64)
    Y = np.asarray(losses, dtype=np.float64)
    n, k = Y.shape
    if n < 3:
        raise SolverError(f"law fit needs at least 3 rows of runs, got {n}; run more proxy runs")
    if not 0 <= w_max:
        raise SolverError(f"w_max must be >= 0, got {w_max}")
    per_row = _ridge_per_row(ridge, k)
    if params is not None and np.ptp(params) == 0:
        params = None
    W0 = np.eye(k) if W_fixed is None else np.asarray(W_fixed, dtype=np.float64)
    W = W0.copy()
    E, B, beta = np.zeros(k), np.zeros(k), np.zeros(k)
    A = np.zeros(k) if params is not None else None
    alpha = np.zeros(k) if params is not None else None
    ridges = np.zeros(k)
    folds = _fold_ids(n, groups, RIDGE_CV_FOLDS) if per_row is None else None
    for i in tqdm(range(k), desc=f"fit {kind}", unit="lang", disable=not progress, leave=False):
        free = [j for j in range(k) if j != i] if (fit_W and w_max > 0) else []
        w_fixed = W0[i].copy()
        w_fixed[free] = 0.0
        w_fixed[i] = 1.0
        prob = _RowProblem(T, Y[:, i], params, i, w_fixed, free, w_max, 0.0 if per_row is None else per_row[i],
                           delta)
        if per_row is None and free:
            best, ridges[i] = _fit_row_cv(prob, folds)
        else:
            best, ridges[i] = prob.solve(START_W), prob.ridge
        E[i], B[i], beta[i], a_i, al_i, w_free = prob.to_law_values(best.x)
        if A is not None:
            A[i], alpha[i] = a_i, al_i
        W[i] = w_fixed
        W[i, free] = w_free
        log.debug("fit %s: E=%.4f B=%.4g beta=%.4f converged=%s", languages[i], E[i], B[i], beta[i], best.success)
    law = ClimbLaw(
        languages=tuple(languages), E=E, B=B, beta=beta, W=W, kind=kind, A=A, alpha=alpha,
        params_ref=None if params is None else float(np.max(params)),
    )
    if kind == "isolated":  # without transfers nothing bounds B x^-beta as a share goes to 0
        law.min_effective_tokens = np.maximum((T @ W.T).min(axis=0) / EXTRAPOLATION_RANGE, MIN_EFFECTIVE_TOKENS)
    pred = law.loss_at_effective(T @ W.T, None) if A is None else np.vstack(
        [law.loss_at_effective(T[m] @ W.T, params[m]) for m in range(n)])
    law.fit_info = {
        "rows": int(n), "huber_delta": delta, "ridge": ridge if isinstance(ridge, (str, int, float)) else "per-language",
        "ridge_per_language": {name: float(r) for name, r in zip(languages, ridges)}, "w_max": w_max,
        "train_mae_nats": float(np.mean(np.abs(pred - Y))),
    }
    return law


def fit_climb_law(
    runs: RunsTable,
    *,
    w_max: float = DEFAULT_W_MAX,
    ridge: float | str = DEFAULT_RIDGE,
    use_all_tokens: bool = False,
    isolated: bool = False,
    huber_delta: float = HUBER_DELTA,
    progress: bool = False,
) -> ClimbLaw:
    """Fit the Climb law (or, with isolated=True, the law with W = I) to proxy runs.

    Uses each run's rows at its largest token count unless use_all_tokens (on real runs
    the law fitted at the budget alone predicted unseen mixtures twice as well).
    """
    rows = runs if use_all_tokens else runs.at_largest_tokens()
    tokens_seen = rows.ratios * rows.tokens[:, None]
    law = fit_rows(
        tokens_seen, rows.losses, rows.languages, params=rows.params,
        fit_W=not isolated, w_max=w_max, ridge=ridge, delta=huber_delta,
        kind="isolated" if isolated else "climb", progress=progress, groups=rows.run,
    )
    if law.params_ref is None:
        law.params_ref = float(np.max(rows.params))
    law.fit_info.update(source=runs.source, use_all_tokens=use_all_tokens, runs=len(rows.run_ids()))
    return law


def fit_msl_law(runs: RunsTable) -> MslLaw:
    """Fit the MSL baseline at the largest token count: log L_f = log C_f - gamma_f log p_f.

    gamma_f is kept >= 0 (a language whose loss rises with its own share gets gamma 0).
    """
    rows = runs.at_largest_tokens()
    if np.ptp(rows.tokens) > 1e-9 * np.max(rows.tokens):
        raise SolverError(
            f"{runs.source}: the MSL law is fitted at one token count, but the runs end at "
            f"{sorted(set(rows.tokens.tolist()))}; give runs of equal length"
        )
    if len(rows) < 2:
        raise SolverError(f"{runs.source}: the MSL fit needs at least 2 runs, got {len(rows)}")
    min_ratio = max(float(rows.ratios.min()) / EXTRAPOLATION_RANGE, MSL_MIN_RATIO)
    logp = np.log(np.maximum(rows.ratios, MSL_MIN_RATIO))
    logy = np.log(rows.losses)
    k = len(rows.languages)
    C, gamma = np.zeros(k), np.zeros(k)
    for f in range(k):
        x, y = logp[:, f], logy[:, f]
        if np.ptp(x) > 0:
            slope, intercept = np.polyfit(x, y, 1)
        else:
            slope, intercept = 0.0, float(np.mean(y))
        if slope > 0:
            slope, intercept = 0.0, float(np.mean(y))
        gamma[f], C[f] = -slope, np.exp(intercept)
    pred = C * np.maximum(rows.ratios, MSL_MIN_RATIO) ** (-gamma)
    return MslLaw(
        languages=rows.languages, C=C, gamma=gamma, tokens_ref=float(rows.tokens[0]),
        params_ref=float(np.max(rows.params)), min_ratio=min_ratio,
        fit_info={"rows": len(rows), "source": runs.source,
                  "train_mae_nats": float(np.mean(np.abs(pred - rows.losses)))},
    )
