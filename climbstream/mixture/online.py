"""Re-solving during training (docs/climb.md section 7), as pure functions.

From the loss log (per language: loss and cumulative tokens seen), fit
L_i(t) = E_i + B_i / (W rep(D(t)))_i^beta_i with W from the offline fit (or I), where
rep() discounts tokens beyond one epoch with a decay R* in epochs (Muennighoff et al.
2023), then solve for the remaining budget with epoch caps that count consumed tokens,
damped toward the current mixture. `guard_prediction` checks a fit before trusting it:
fit without the last interval, predict it, compare. The re-weighter calls these.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from climbstream.errors import SolverError
from climbstream.mixture.allocation import Allocation, build_allocation
from climbstream.mixture.caps import project
from climbstream.mixture.fit import DEFAULT_RIDGE, DEFAULT_W_MAX, fit_rows
from climbstream.mixture.inputs import DEFAULT_E_MAX, feasible_set
from climbstream.mixture.laws import ClimbLaw, repeated_tokens
from climbstream.mixture.solver import allocate

log = logging.getLogger(__name__)

DEFAULT_DECAY_EPOCHS = 15.4  # Muennighoff et al. 2023's fitted R*_D
DECAY_GRID = (1.0, 2.0, 4.0, 8.0, 15.4, 32.0, 100.0)
REPEATED_EPOCHS = 1.25
DEFAULT_GUARD_THRESHOLD = 0.05
# Where the online fit takes W from (benchmarks/online_variants.py, docs/climb.md): on the
# shared proxy runs the next interval was predicted to 0.10 nats with W refitted on a
# history whose mixtures vary, 0.25 with the offline law's W, 0.37 with W = I. "auto"
# refits when the history identifies W (mixtures_vary), else takes the offline W when
# there is one, else I.
TRANSFERS = ("auto", "refit", "offline", "identity")
MIN_SINGULAR_RATIO = 1e-3


def history_arrays(history: Iterable[Mapping]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """(languages, steps[n], tokens_seen[n, K], loss[n, K]) from loss-log records.

    Records without `lang` (loader metrics) are skipped; every flush must carry every
    language, else SolverError names the step and the missing language.
    """
    by_step: dict[int, dict[str, tuple[float, float]]] = {}
    for rec in history:
        if "lang" not in rec:
            continue
        try:
            step, lang = int(rec["step"]), str(rec["lang"])
            by_step.setdefault(step, {})[lang] = (float(rec["tokens_total"]), float(rec["loss_mean"]))
        except (KeyError, TypeError, ValueError) as err:
            raise SolverError(f"loss log record {dict(rec)!r}: missing or bad field ({err}); "
                              "records need step, lang, loss_mean, tokens_total") from None
    if not by_step:
        raise SolverError("loss log has no per-language records; nothing to fit")
    langs = tuple(sorted(set().union(*by_step.values())))
    steps = sorted(by_step)
    T, L = np.zeros((len(steps), len(langs))), np.zeros((len(steps), len(langs)))
    for m, s in enumerate(steps):
        missing = [n for n in langs if n not in by_step[s]]
        if missing:
            raise SolverError(f"loss log step {s}: no record for languages {missing}; every flush must log every language")
        for k, n in enumerate(langs):
            T[m, k], L[m, k] = by_step[s][n]
    return langs, np.array(steps), T, L


def _reorder_W(W, langs: tuple[str, ...]) -> np.ndarray | None:
    if W is None:
        return None
    if isinstance(W, ClimbLaw):
        missing = sorted(set(langs) - set(W.languages))
        if missing:
            raise SolverError(f"offline law has no languages {missing} that the loss log has")
        idx = [W.languages.index(n) for n in langs]
        return W.W[np.ix_(idx, idx)]
    W = np.asarray(W, dtype=np.float64)
    if W.shape != (len(langs), len(langs)):
        raise SolverError(f"W must be {len(langs)}x{len(langs)} in sorted language order {list(langs)}, got {W.shape}")
    return W


def mixtures_vary(tokens_seen: np.ndarray) -> bool:
    """Whether a history's token vectors (n x K) identify W: at least K + 4 points whose
    per-language token columns are linearly independent (smallest singular value of the
    column-normalised matrix >= MIN_SINGULAR_RATIO of the largest). One stage gives
    points on one ray (rank 1); each stage adds at most one direction.
    """
    T = np.asarray(tokens_seen, dtype=np.float64)
    n, k = T.shape
    if n < k + 4:
        return False
    s = np.linalg.svd(T / np.maximum(np.linalg.norm(T, axis=0), 1e-300), compute_uv=False)
    return bool(s[-1] >= MIN_SINGULAR_RATIO * s[0])


def choose_transfers(mode: str, tokens_seen: np.ndarray, offline) -> str:
    """The W variant to fit with: `mode` itself, or what "auto" picks for this history."""
    if mode not in TRANSFERS:
        raise SolverError(f"transfers must be one of {', '.join(TRANSFERS)}, got {mode!r}")
    if mode == "offline" and offline is None:
        raise SolverError("transfers='offline' needs the offline law (law=...)")
    if mode != "auto":
        return mode
    if mixtures_vary(tokens_seen):
        return "refit"
    return "offline" if offline is not None else "identity"


def fit_online_law(
    history: Iterable[Mapping],
    W=None,
    *,
    counts: Mapping[str, int] | None = None,
    repetition_decay_epochs: float | None = None,
    fit_W: bool = False,
    w_max: float = DEFAULT_W_MAX,
    ridge: float | str = DEFAULT_RIDGE,
    transfers: str | None = None,
) -> ClimbLaw:
    """Fit E, B, beta per language from a loss log; W fixed (a ClimbLaw, a matrix, or I).

    With counts, tokens beyond one epoch are discounted; R* is fitted on a grid when a
    language passed REPEATED_EPOCHS epochs in the log, else DEFAULT_DECAY_EPOCHS.
    fit_W=True also fits bounded W (only when the run's stages varied the mixture).
    `transfers` (one of TRANSFERS) overrides both: "refit" fits W, "offline" keeps W's,
    "identity" uses I, "auto" picks by choose_transfers. The law's fit_info says which.
    """
    langs, _, T, L = history_arrays(history)
    chosen = None
    if transfers is not None:
        chosen = choose_transfers(transfers, T, W)
        fit_W = chosen == "refit"
        W = W if chosen == "offline" else None
    W0 = _reorder_W(W, langs)
    unique = None
    if counts is not None:
        missing = sorted(set(langs) - set(counts))
        if missing:
            raise SolverError(f"counts: no available tokens for languages {missing} of the loss log")
        unique = np.array([float(counts[n]) for n in langs])
    grid = [None]
    if unique is not None:
        if repetition_decay_epochs is not None:
            grid = [float(repetition_decay_epochs)]
        elif np.any(T.max(axis=0) > REPEATED_EPOCHS * unique):
            grid = list(DECAY_GRID)
        else:
            grid = [DEFAULT_DECAY_EPOCHS]
    best = None
    for decay in grid:
        Tr = repeated_tokens(T, unique, decay)
        law = fit_rows(Tr, L, langs, W_fixed=W0, fit_W=fit_W, w_max=w_max, ridge=ridge)
        if best is None or law.fit_info["train_mae_nats"] < best.fit_info["train_mae_nats"]:
            law.unique_tokens, law.repetition_decay_epochs = unique, decay
            best = law
    best.fit_info["source"] = "loss log"
    best.fit_info["transfers"] = chosen or ("refit" if fit_W else "offline" if W is not None else "identity")
    return best


@dataclass(frozen=True)
class GuardVerdict:
    """Whether a fit made before the last interval predicted that interval well enough."""

    ok: bool
    error_nats: float
    threshold: float
    per_language: dict[str, float]
    fitted_through_step: int
    predicted_step: int


def guard_prediction(
    history: Iterable[Mapping],
    W=None,
    *,
    counts: Mapping[str, int] | None = None,
    threshold: float = DEFAULT_GUARD_THRESHOLD,
    repetition_decay_epochs: float | None = None,
    transfers: str | None = None,
) -> GuardVerdict:
    """Fit on all flushes but the last, predict the last; ok when the mean abs error <= threshold.

    `transfers` as in fit_online_law (the variant is chosen on the points fitted).
    """
    records = [r for r in history if "lang" in r]
    langs, steps, T, L = history_arrays(records)
    if len(steps) < 4:
        raise SolverError(f"the guard needs at least 4 flushes in the loss log, got {len(steps)}")
    last = int(steps[-1])
    law = fit_online_law([r for r in records if int(r["step"]) != last], W, counts=counts,
                         repetition_decay_epochs=repetition_decay_epochs, transfers=transfers)
    pred = law.loss_at_effective(law.effective_tokens(T[-1]))
    err = np.abs(pred - L[-1])
    verdict = GuardVerdict(
        ok=bool(err.mean() <= threshold), error_nats=float(err.mean()), threshold=float(threshold),
        per_language={n: float(e) for n, e in zip(langs, err)},
        fitted_through_step=int(steps[-2]), predicted_step=last,
    )
    log.info("re-solve guard: %s (error %.4f nats vs threshold %.4f, predicting step %d)",
             "ok" if verdict.ok else "REJECTED", verdict.error_nats, threshold, last)
    return verdict


def solve_remaining(
    law: ClimbLaw,
    consumed: Mapping[str, float],
    remaining_tokens: float,
    counts: Mapping[str, int],
    e_max: float = DEFAULT_E_MAX,
    floor: float | Mapping[str, float] | None = None,
    damping: float = 0.5,
    *,
    current: Mapping[str, float] | None = None,
    importance: Mapping[str, float] | None = None,
) -> Allocation:
    """Climb solve of the remaining budget, moved a fraction `damping` from `current`.

    Final tokens are consumed_j + r_j * remaining; epoch caps count consumed tokens.
    `current` defaults to the mixture consumed so far. damping=1 takes the full step.
    """
    if not 0 < damping <= 1:
        raise SolverError(f"damping must be in (0, 1] (the fraction of the step toward the new answer), got {damping}")
    target = allocate("climb", counts, remaining_tokens, e_max=e_max, floor=floor, importance=importance,
                      law=law, consumed=consumed)
    names = tuple(sorted(counts))
    box = feasible_set(counts, remaining_tokens, e_max=e_max, floor=floor, consumed=consumed, names=names)
    if current is None:
        total = sum(float(consumed.get(n, 0.0)) for n in names)
        cur = np.array([float(consumed.get(n, 0.0)) / total if total > 0 else 1.0 / len(names) for n in names])
    else:
        cur = np.array([float(current.get(n, 0.0)) for n in names])
        cur = cur / cur.sum()
    # Project the current mixture first: the damped step between two feasible points is
    # feasible (the box is convex), so the step taken is exactly `damping` of the way.
    cur = project(cur, box.floors, box.caps)
    new = np.array([target.languages[n].ratio for n in names])
    r = cur + damping * (new - cur)
    params = {"target": target.ratios(), "damping": damping, "from": dict(zip(names, cur.tolist())),
              "target_pred_mean_loss": target.pred_mean_loss,
              "two_step_F": target.params["two_step"]["F"], "polished_F": target.params["polished"]["F"]}
    w = None if importance is None else np.array([float(importance.get(n, 1.0)) for n in names])
    return build_allocation("climb-online", box, r, law=law, importance=w, params=params)
