"""The recommended mixture: Climb's solution only where the law's ensemble resolves it ahead.

The rule (docs/climb.md, "The recommendation", fixed before any trained comparison of it
was looked at): the candidates are the Climb solution and each baseline the user could
pick instead, under the same caps and floors. Climb is recommended only when, for every
baseline, the ensemble's 95% interval of "baseline - climb" (predicted mean loss) lies
above 0. Otherwise the baseline with the lowest predicted loss under the full fit is
recommended, and the verdict says so plainly. An honest "use temperature sampling" is
the feature: a solver that always prefers its own answer lands where its law errs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from climbstream.errors import SolverError
from climbstream.mixture.ensemble import LawEnsemble

CLIMB = "climb"
DEFAULT_BASELINES = ("temperature", "unimax", "uniform")
BASELINE_METHODS = ("natural", "uniform", "temperature", "unimax")
RULE = ("climb only where every baseline's 95% ensemble interval of 'baseline - climb' (predicted mean loss) "
        "is above 0; else the baseline with the lowest predicted mean loss")


@dataclass(frozen=True)
class Recommendation:
    """The recommended label and mixture, why, and the ensemble's comparison behind it."""

    label: str
    ratios: dict[str, float]
    verdict: str
    comparison: dict
    budget_tokens: float

    def to_dict(self) -> dict:
        """The allocation file's `recommendation` entry (plain data)."""
        predicted = self.comparison["predicted"]
        return {
            "rule": RULE, "recommended": self.label, "verdict": self.verdict, "budget_tokens": self.budget_tokens,
            "candidates": {label: {"ratios": self.comparison["mixtures"][label], **predicted[label].to_dict()}
                           for label in predicted},
            "differences": {key: value.to_dict() for key, value in self.comparison["differences"].items()
                            if key.endswith(f" - {self.label}") or key.endswith(f" - {CLIMB}")},
            "replicates": self.comparison["replicates"],
        }


def candidate_mixtures(counts: Mapping[str, int], budget_tokens: float, law, *, e_max: float, floor=None,
                       baselines: Sequence[str] = DEFAULT_BASELINES, temperature_alpha: float = 0.3,
                       importance: Mapping[str, float] | None = None,
                       extra: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, dict[str, float]]:
    """The Climb solution and each baseline under the same caps and floors, plus any `extra` mixtures.

    `extra` adds mixtures the user would otherwise train (say, uniform without caps), by
    label; they are compared like the baselines.
    """
    from climbstream.mixture.solver import allocate

    if CLIMB in baselines:
        raise SolverError("baselines: 'climb' is the candidate being judged; name only baselines")
    unknown = sorted(set(baselines) - set(BASELINE_METHODS))
    if unknown:
        raise SolverError(f"baselines {unknown}: expected some of {', '.join(BASELINE_METHODS)} (MSL and isolated "
                          f"need laws of their own: compare them with 'climbstream validate')")
    out = {CLIMB: allocate(CLIMB, counts, budget_tokens, e_max=e_max, floor=floor, law=law,
                           importance=importance).ratios()}
    for method in baselines:
        params = {"alpha": temperature_alpha} if method == "temperature" else None
        out[method] = allocate(method, counts, budget_tokens, e_max=e_max, floor=floor, params=params).ratios()
    for label, ratios in (extra or {}).items():
        if label in out:
            raise SolverError(f"extra candidate {label!r} has the name of a method already compared; rename it")
        total = sum(float(v) for v in ratios.values())
        out[label] = {n: float(ratios.get(n, 0.0)) / total for n in sorted(counts)}
    return {label: {n: float(v) for n, v in sorted(r.items())} for label, r in out.items()}


def recommend(ensemble: LawEnsemble, candidates: Mapping[str, Mapping[str, float]], budget_tokens: float, *,
              importance: Mapping[str, float] | None = None) -> Recommendation:
    """Apply the rule to `candidates` (which must hold 'climb' and at least one baseline)."""
    if CLIMB not in candidates or len(candidates) < 2:
        raise SolverError(f"recommend needs the '{CLIMB}' candidate and at least one baseline, got {list(candidates)}")
    comparison = ensemble.compare(candidates, budget_tokens, importance)
    comparison["mixtures"] = {label: dict(r) for label, r in candidates.items()}
    comparison["replicates"] = len(ensemble.replicates)
    baselines = [label for label in candidates if label != CLIMB]
    diffs = comparison["differences"]
    behind = [b for b in baselines if not diffs[f"{b} - {CLIMB}"].low > 0]
    if not behind:
        label = CLIMB
        worst = min(baselines, key=lambda b: diffs[f"{b} - {CLIMB}"].low)
        d = diffs[f"{worst} - {CLIMB}"]
        verdict = (f"recommending climb: the ensemble puts it ahead of every baseline (closest: {worst}, "
                   f"predicted {d.value:+.4f} nats, 95% interval {d.low:+.4f} to {d.high:+.4f})")
    else:
        predicted = comparison["predicted"]
        label = min(baselines, key=lambda b: predicted[b].value)
        d = diffs[f"{behind[0]} - {CLIMB}"]
        verdict = (f"recommending {label}: climb is not resolvably ahead of {', '.join(behind)} under the law's "
                   f"uncertainty ({behind[0]} - climb predicted {d.value:+.4f} nats, 95% interval {d.low:+.4f} to "
                   f"{d.high:+.4f}); {label} has the lowest predicted loss of the baselines")
    return Recommendation(label=label, ratios=dict(candidates[label]), verdict=verdict, comparison=comparison,
                          budget_tokens=float(budget_tokens))


def recommend_allocation(runs, counts: Mapping[str, int], budget_tokens: float, *, e_max: float, floor=None,
                         baselines: Sequence[str] = DEFAULT_BASELINES, temperature_alpha: float = 0.3,
                         extra: Mapping[str, Mapping[str, float]] | None = None, law=None,
                         replicates: int | None = None, seed: int = 0, progress: bool = False,
                         importance: Mapping[str, float] | None = None):
    """The whole `solve --recommend`: fit (or take `law`), ensemble, candidates, rule -> (Allocation, Recommendation).

    The Allocation is the recommended mixture's, under the full fit's predictions, with
    the recommendation attached.
    """
    import numpy as np

    from climbstream.mixture.allocation import build_allocation
    from climbstream.mixture.ensemble import DEFAULT_REPLICATES, fit_ensemble
    from climbstream.mixture.inputs import feasible_set
    from climbstream.mixture.solver import allocate

    ensemble = fit_ensemble(runs, law=law, replicates=replicates or DEFAULT_REPLICATES, seed=seed, progress=progress)
    candidates = candidate_mixtures(counts, budget_tokens, ensemble.law, e_max=e_max, floor=floor,
                                    baselines=baselines, temperature_alpha=temperature_alpha, importance=importance,
                                    extra=extra)
    rec = recommend(ensemble, candidates, budget_tokens, importance=importance)
    if rec.label == CLIMB or rec.label in baselines:
        params = {"alpha": temperature_alpha} if rec.label == "temperature" else None
        alloc = allocate(rec.label, counts, budget_tokens, e_max=e_max, floor=floor, law=ensemble.law,
                         params=params, importance=importance)
    else:  # a mixture the user supplied, kept as given (it may break the caps: `binding`/`epochs` show it)
        names = tuple(sorted(counts))
        box = feasible_set(counts, budget_tokens, e_max=e_max, floor=floor, names=names)
        w = None if importance is None else np.array([float(importance.get(n, 1.0)) for n in names])
        alloc = build_allocation(rec.label, box, np.array([rec.ratios[n] for n in names]), law=ensemble.law,
                                 importance=w)
    alloc.recommendation = rec.to_dict()
    return alloc, rec
