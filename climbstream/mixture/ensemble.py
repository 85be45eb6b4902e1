"""How sure the law is: a bootstrap ensemble of the Climb law over proxy runs.

Why: a solver lands where its law's error favours it. Under the allocation benchmark's
protocol v1 the law predicted its own pick within 0.008 nats and over-predicted every
baseline by 0.04, so it ranked its pick first where training ranked it last. An interval
on each prediction, and on each predicted difference, lets the decision rule
(recommend.py) refuse a gap the law cannot resolve.

The ensemble: the full fit plus `replicates` refits on runs resampled with replacement
(a run's rows stay together), each language's ridge fixed at the full fit's
cross-validated choice (choosing it again per replicate costs about 10x and only blurs a
discrete choice). Intervals are the normal bootstrap interval, point +- z x the
replicates' standard deviation: with 24 replicates percentiles would rest on one or two
values. Differences are paired: one replicate predicts both mixtures. Deterministic given
the runs, the options and `seed`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from climbstream.errors import SolverError
from climbstream.mixture.fit import fit_climb_law
from climbstream.mixture.laws import ClimbLaw
from climbstream.mixture.runs import RunsTable

log = logging.getLogger(__name__)

DEFAULT_REPLICATES = 24
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    """A predicted value (the full fit's) with its 95% ensemble interval."""

    value: float
    low: float
    high: float
    sd: float

    def to_dict(self) -> dict:
        return {"mean": self.value, "low": self.low, "high": self.high, "sd": self.sd}


@dataclass(frozen=True)
class LawEnsemble:
    """The full fit (`law`) and its bootstrap replicates, all over the same languages."""

    law: ClimbLaw
    replicates: tuple[ClimbLaw, ...]
    seed: int = 0
    z: float = Z95

    def __post_init__(self) -> None:
        if len(self.replicates) < 2:
            raise SolverError(f"a law ensemble needs at least 2 replicates, got {len(self.replicates)}")

    @property
    def languages(self) -> tuple[str, ...]:
        return self.law.languages

    def _vector(self, ratios: Mapping[str, float]) -> np.ndarray:
        missing = sorted(set(self.languages) - set(ratios))
        if missing:
            raise SolverError(f"mixture {dict(ratios)} has no ratio for {missing} (the law's languages)")
        r = np.array([float(ratios[n]) for n in self.languages])
        return r / r.sum()

    def mean_losses(self, ratios: Mapping[str, float], budget_tokens: float,
                    importance: Mapping[str, float] | None = None) -> tuple[float, np.ndarray]:
        """(full fit's, each replicate's) predicted mean loss after `budget_tokens` of `ratios`."""
        r = self._vector(ratios)
        w = np.ones(len(r)) if importance is None else np.array([float(importance.get(n, 1.0))
                                                                   for n in self.languages])
        w = w / w.sum()
        point = float(w @ self.law.predict(r, budget_tokens))
        reps = np.array([float(w @ law.predict(r, budget_tokens)) for law in self.replicates])
        return point, reps

    def interval(self, point: float, replicates: np.ndarray) -> Interval:
        sd = float(np.std(replicates, ddof=1))
        return Interval(point, point - self.z * sd, point + self.z * sd, sd)

    def compare(self, candidates: Mapping[str, Mapping[str, float]], budget_tokens: float,
                importance: Mapping[str, float] | None = None) -> dict:
        """Predicted mean loss of every candidate and every paired difference, with intervals.

        Returns {"predicted": {label: Interval}, "differences": {"a - b": Interval}} for
        every ordered pair of distinct labels.
        """
        preds = {label: self.mean_losses(r, budget_tokens, importance) for label, r in candidates.items()}
        predicted = {label: self.interval(*p) for label, p in preds.items()}
        differences = {f"{a} - {b}": self.interval(preds[a][0] - preds[b][0], preds[a][1] - preds[b][1])
                       for a in preds for b in preds if a != b}
        return {"predicted": predicted, "differences": differences}


def bootstrap_runs(runs: RunsTable, rng: np.random.Generator) -> RunsTable:
    """The runs table resampled by run, with replacement; a run drawn twice appears twice under new ids."""
    ids = runs.run_ids()
    drawn = rng.integers(0, len(ids), size=len(ids))
    rows, new_ids = [], []
    for copy, j in enumerate(drawn):
        idx = [i for i, run in enumerate(runs.run) if run == ids[j]]
        rows += idx
        new_ids += [f"b{copy}"] * len(idx)
    table = runs.select(rows)
    return RunsTable(languages=table.languages, run=tuple(new_ids), tokens=table.tokens, params=table.params,
                     ratios=table.ratios, losses=table.losses, seed=table.seed, source=f"{runs.source} (bootstrap)")


def fit_ensemble(runs: RunsTable, *, replicates: int = DEFAULT_REPLICATES, seed: int = 0, law: ClimbLaw | None = None,
                 progress: bool = False, **fit_options) -> LawEnsemble:
    """The full fit (or `law`, fitted on `runs` with the same options) and `replicates` bootstrap refits.

    `fit_options` go to fit_climb_law (w_max, use_all_tokens, huber_delta, ...); the
    replicates keep each language's ridge from the full fit.
    """
    from tqdm import tqdm

    if replicates < 2:
        raise SolverError(f"replicates must be >= 2 for an interval, got {replicates}")
    if len(runs.run_ids()) < 3:
        raise SolverError(f"{runs.source}: an ensemble needs at least 3 runs, got {len(runs.run_ids())}")
    full = law if law is not None else fit_climb_law(runs, **fit_options)
    per_language = full.fit_info.get("ridge_per_language")
    ridge = [per_language[n] for n in full.languages] if per_language else fit_options.get("ridge", 1e-2)
    options = {k: v for k, v in fit_options.items() if k != "ridge"}
    rng = np.random.default_rng(seed)
    fitted = []
    for _ in tqdm(range(replicates), desc="law ensemble", unit="fit", disable=not progress, leave=False):
        fitted.append(fit_climb_law(bootstrap_runs(runs, rng), ridge=ridge, **options))
    log.info("law ensemble: %d bootstrap refits over %d runs", replicates, len(runs.run_ids()))
    return LawEnsemble(law=full, replicates=tuple(fitted), seed=seed)

