"""Paired intervals and the resolvability rule of the allocation benchmark (pure numpy/scipy).

For seed s every method starts from the same weights and draws the same samples of each
language (common random numbers), and every model is scored on the same held-out
samples. So a method's difference to another is taken per seed, and its uncertainty has
two parts:
- training noise: the spread of the per-seed differences, sd / sqrt(n);
- evaluation noise: the held-out split is a finite sample of each language; the per-sample
  differences (averaged over seeds) give its standard error. It is common to all seeds,
  so it does not shrink with more seeds and is added, not averaged away.
The 95% half-width is t(0.975, n-1) * sqrt(train_se^2 + eval_se^2).

Rule, fixed before any ranking is looked at: a gap is reported as real only when
|mean difference| >= RESOLVE_FACTOR x its half-width (so every reported gap is at least
three half-widths); smaller gaps are reported as not resolved at this size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

RESOLVE_FACTOR = 3.0
CONFIDENCE = 0.95


def paired_difference(a: Sequence[Mapping[str, np.ndarray]], b: Sequence[Mapping[str, np.ndarray]]) -> dict:
    """mean_loss(a) - mean_loss(b) over seeds, paired: a[s] and b[s] share seed s.

    a[s] / b[s] map language -> per-sample held-out loss on the same samples. The score is
    the mean over languages of each language's mean (languages weigh the same).
    """
    n = len(a)
    if n != len(b) or n < 2:
        raise ValueError(f"paired_difference: need the same number (>= 2) of seeds on both sides, got {n} and {len(b)}")
    langs = sorted(a[0])
    per_seed = np.array([np.mean([a[s][k].mean() - b[s][k].mean() for k in langs]) for s in range(n)])
    train_se = float(per_seed.std(ddof=1) / math.sqrt(n))
    var = 0.0
    for k in langs:
        d = np.mean([a[s][k] - b[s][k] for s in range(n)], axis=0)
        var += d.var(ddof=1) / len(d)
    eval_se = math.sqrt(var) / len(langs)
    t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1))
    half = t * math.hypot(train_se, eval_se)
    mean = float(per_seed.mean())
    return {"mean": mean, "half_width": half, "low": mean - half, "high": mean + half,
            "per_seed": per_seed.tolist(), "train_se": train_se, "eval_se": eval_se, "t": t, "seeds": n,
            # identical mixtures give exactly 0 +- 0: no gap, not a resolved one
            "resolved": bool(half > 0 and abs(mean) >= RESOLVE_FACTOR * half)}


def all_pairs(scores: Mapping[str, Sequence[Mapping[str, np.ndarray]]]) -> dict[str, dict]:
    """paired_difference for every ordered pair 'a - b' with a after b in the given order."""
    names = list(scores)
    return {f"{a} - {b}": paired_difference(scores[a], scores[b])
            for i, b in enumerate(names) for a in names[i + 1:]}


def ranking(means: Mapping[str, float], pairs: Mapping[str, dict]) -> list[list[str]]:
    """Methods from best to worst, grouped where no resolved gap separates neighbours.

    A method starts a new group only when its gap to every method of the current group is
    resolved; otherwise it joins the group (a tie at this size).
    """
    order = sorted(means, key=means.get)
    groups: list[list[str]] = []
    for m in order:
        if groups and not all(_resolved(pairs, m, other) for other in groups[-1]):
            groups[-1].append(m)
        else:
            groups.append([m])
    return groups


def _resolved(pairs: Mapping[str, dict], a: str, b: str) -> bool:
    key = f"{a} - {b}" if f"{a} - {b}" in pairs else f"{b} - {a}"
    return pairs[key]["resolved"]


def noise_floor(pairs: Mapping[str, dict]) -> dict:
    """The largest half-width over the compared pairs and the smallest gap this size can call real."""
    halves = [p["half_width"] for p in pairs.values()]
    real = [abs(p["mean"]) for p in pairs.values() if p["resolved"]]
    worst = max(halves)
    return {"max_half_width": worst, "median_half_width": float(np.median(halves)),
            "resolvable_gap": RESOLVE_FACTOR * worst,
            "smallest_real_gap": min(real) if real else None,
            # the test: every interval's half-width against the smallest gap called real
            "max_half_width_over_smallest_real_gap": worst / min(real) if real else None}
