"""Cross-validated prediction error of a law, so every law is reported next to its rivals.

Folds are by run (all rows of a run are held out together) and seeded. The error is the
mean absolute error of the predicted per-language held-out loss, in nats (the units of
the runs table's loss columns; nats per byte for byte-level runs), over the held-out
rows at each run's largest token count (or all rows with use_all_tokens).
"""

from __future__ import annotations

import numpy as np

from climbstream.errors import SolverError
from climbstream.mixture.fit import DEFAULT_RIDGE, DEFAULT_W_MAX, HUBER_DELTA, fit_climb_law, fit_msl_law
from climbstream.mixture.runs import RunsTable

KINDS = ("climb", "isolated", "msl")
METRIC = "mean absolute error of per-language held-out loss, nats (units of the loss columns)"


def fit_kind(runs: RunsTable, kind: str, **options):
    """Fit the law named by kind: climb, isolated or msl."""
    if kind == "msl":
        return fit_msl_law(runs)
    if kind in ("climb", "isolated"):
        return fit_climb_law(runs, isolated=kind == "isolated", **options)
    raise SolverError(f"unknown law kind {kind!r}; expected one of {', '.join(KINDS)}")


def predict_rows(law, rows: RunsTable) -> np.ndarray:
    """Per-language predicted loss for every row of a table (n x K)."""
    if law.kind == "msl":
        return law.predict(rows.ratios)
    if law.A is None:
        return law.predict(rows.ratios, rows.tokens)
    return np.vstack([law.predict(rows.ratios[m], rows.tokens[m], rows.params[m]) for m in range(len(rows))])


def cross_validate(
    runs: RunsTable,
    kind: str,
    folds: int = 4,
    seed: int = 0,
    *,
    w_max: float = DEFAULT_W_MAX,
    ridge: float | str = DEFAULT_RIDGE,
    use_all_tokens: bool = False,
    huber_delta: float = HUBER_DELTA,
    on_fold=None,
) -> dict:
    """k-fold CV by run: {kind, folds, seed, metric, mae_nats, per_language, per_fold}.

    `on_fold()` is called after each fold's fit (for progress bars).
    """
    if kind not in KINDS:
        raise SolverError(f"unknown law kind {kind!r}; expected one of {', '.join(KINDS)}")
    ids = runs.run_ids()
    if folds < 2 or folds > len(ids):
        raise SolverError(f"cross-validation needs 2 <= folds <= runs ({len(ids)}), got folds={folds}")
    order = np.random.default_rng(seed).permutation(len(ids))
    groups = [[ids[j] for j in order[f::folds]] for f in range(folds)]
    options = {} if kind == "msl" else {
        "w_max": w_max, "ridge": ridge, "use_all_tokens": use_all_tokens, "huber_delta": huber_delta}
    errors, per_fold = [], []
    for held in groups:
        train = runs.of_runs(set(ids) - set(held))
        test = runs.of_runs(held)
        if not use_all_tokens or kind == "msl":
            test = test.at_largest_tokens()
        law = fit_kind(train, kind, **options)
        err = np.abs(predict_rows(law, test) - test.losses)
        errors.append(err)
        per_fold.append(float(err.mean()))
        if on_fold is not None:
            on_fold()
    allerr = np.vstack(errors)
    return {
        "kind": kind,
        "folds": folds,
        "seed": seed,
        "metric": METRIC,
        "mae_nats": float(allerr.mean()),
        "per_language": {name: float(allerr[:, k].mean()) for k, name in enumerate(runs.languages)},
        "per_fold": per_fold,
    }
