"""Re-solving the mixture at checkpoints from the run's own per-language loss.

At a checkpoint the Reweighter (1) reads the loss history the tracker kept (held-out
records when there are any, else training means), each point paired with the tokens each
language had consumed by then, counted exactly from the schedule at that position;
(2) guards: it fits the online law on all points but the last and predicts the last; if
the prediction misses by more than `guard_threshold` nats on average, it keeps the
current mixture and logs why; (3) otherwise refits on all points, solves for the
remaining budget with epoch caps that count tokens already consumed, (4) moves only
`damping` of the way to the new answer (a convex step, so a language the solve keeps
above `floor` and the current mixture has above it stays above it), and (5)
appends the result as a new stage at the consumed position. W in the online fits, by
`transfers`: "auto" (default) refits W when the loss history's mixtures vary enough to
identify it, else keeps the offline law's W (`law=`, a ClimbLaw or its file) and refits
E, B and beta, else W = I; "refit", "offline" or "identity" force one. Every verdict is logged in
`decisions`, which is part of its state, so a resumed run makes the same decisions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from climbstream.errors import ClimbstreamError, ConfigError, StateError, check_version

log = logging.getLogger(__name__)

STATE_VERSION = 1


class Reweighter:
    """Decides, at checkpoints, whether and how to change the mixture of a running stream."""

    def __init__(self, languages: Sequence[str], available_tokens: Mapping[str, int], budget_tokens: float,
                 seq_len: int, *, e_max: float = 8.0, floor: float = 0.01, damping: float = 0.5,
                 guard_threshold: float = 0.05, min_points: int = 4, source: str = "auto", law=None,
                 transfers: str = "auto"):
        if not 0 < damping <= 1:
            raise ConfigError(f"Reweighter: damping must be in (0, 1], got {damping}")
        if source not in ("auto", "heldout", "language"):
            raise ConfigError(f"Reweighter: source must be auto, heldout or language, got {source!r}")
        if min_points < 4:
            raise ConfigError("Reweighter: min_points must be >= 4 (the guard fits 3 points and predicts the 4th)")
        self.languages = list(languages)
        self.available = {n: int(available_tokens[n]) for n in self.languages}
        self.budget_tokens = float(budget_tokens)
        self.seq_len = int(seq_len)
        self.e_max, self.floor, self.damping = float(e_max), float(floor), float(damping)
        self.guard_threshold, self.min_points, self.source = float(guard_threshold), int(min_points), source
        from climbstream.mixture.online import TRANSFERS

        if transfers not in TRANSFERS:
            raise ConfigError(f"Reweighter: transfers must be one of {', '.join(TRANSFERS)}, got {transfers!r}")
        self.law = _offline_law(law)  # its W is kept in the online fits (E, B, beta refitted)
        if transfers == "offline" and self.law is None:
            raise ConfigError("Reweighter: transfers='offline' needs law= (a law file from 'climbstream fit')")
        self.transfers = transfers
        self.decisions: list[dict] = []
        self.history: list[dict] = []  # loss points seen so far (kept in the checkpoint)
        self._seen: set[tuple] = set()

    # -- the checkpoint hook ----------------------------------------------------------------
    def at_checkpoint(self, step: int, stream, tracker) -> dict | None:
        """Maybe append a stage to `stream`; returns the decision when a stage was added."""
        decision = {"step": int(step), "position": int(stream.position)}
        self.observe(tracker.history)
        try:
            decision.update(self._decide(self.records(self.history, stream), stream))
        except ClimbstreamError as err:  # a failed fit or solve keeps the mixture, loudly
            decision.update(verdict="keep", detail=f"{type(err).__name__}: {err}")
        if decision["verdict"] == "resolved":
            decision["stage_start"] = stream.add_stage(decision["new"])
        self.decisions.append(decision)
        log.info("re-solve at step %d: %s %s", step, decision["verdict"], decision.get("detail", ""))
        return decision if decision["verdict"] == "resolved" else None

    def observe(self, history: Sequence[Mapping]) -> None:
        """Keep the loss points of `history` (the tracker's) not seen yet.

        The tracker's history starts empty in a resumed process, so the re-weighter keeps
        its own copy in its state; call this before every checkpoint (the training loop
        does) so that a resumed run decides from the same points as an uninterrupted one.
        """
        for r in history:
            if r.get("kind") in ("heldout", "language") and r.get("loss_mean") is not None:
                key = (r["kind"], r["lang"], int(r["step"]))
                if key not in self._seen:
                    self._seen.add(key)
                    self.history.append({k: r.get(k) for k in ("kind", "step", "position", "lang", "loss_mean")})

    def records(self, history: Sequence[Mapping], stream) -> list[dict]:
        """Loss points {step, lang, loss_mean, tokens_total} for the online fit.

        Held-out records when there are any (the law fits held-out loss best), else the
        training means. Tokens per language come from the schedule's counts at each
        record's position, so they are exact whatever the flush cadence.
        """
        kind = self.source
        if kind == "auto":
            kind = "heldout" if any(r.get("kind") == "heldout" for r in history) else "language"
        by_step: dict[int, dict[str, dict]] = {}
        for r in history:
            if r.get("kind") == kind and r.get("loss_mean") is not None and r.get("position"):
                by_step.setdefault(int(r["step"]), {})[r["lang"]] = r
        out = []
        for step, per_lang in sorted(by_step.items()):
            if not all(n in per_lang for n in self.languages):
                continue  # a language without loss at this point (say, weight 0 so far)
            position = int(next(iter(per_lang.values()))["position"])
            counts = stream.schedule.counts_at(position) * self.seq_len
            for i, name in enumerate(self.languages):
                out.append({"step": step, "lang": name, "loss_mean": float(per_lang[name]["loss_mean"]),
                            "tokens_total": int(counts[i])})
        return out

    def _decide(self, records: list[dict], stream) -> dict:
        from climbstream.mixture.online import fit_online_law, guard_prediction, solve_remaining

        points = len({r["step"] for r in records})
        if points < self.min_points:
            return {"verdict": "keep", "detail": f"{points} loss points, need {self.min_points}"}
        guard = guard_prediction(records, self.law, counts=self.available, threshold=self.guard_threshold,
                                 transfers=self.transfers)
        if not guard.ok:
            return {"verdict": "keep", "guard_error": guard.error_nats,
                    "detail": f"guard: the fit before step {guard.predicted_step} missed it by "
                              f"{guard.error_nats:.4f} nats (threshold {self.guard_threshold})"}
        consumed = stream.schedule.counts_at(stream.position) * self.seq_len
        consumed_tokens = {n: int(c) for n, c in zip(self.languages, consumed)}
        remaining = self.budget_tokens - float(consumed.sum())
        if remaining <= 0:
            return {"verdict": "keep", "guard_error": guard.error_nats, "detail": "budget already consumed"}
        law = fit_online_law(records, self.law, counts=self.available, transfers=self.transfers)
        current = _current_ratios(stream)
        allocation = solve_remaining(law, consumed_tokens, remaining, self.available, e_max=self.e_max,
                                     floor=self.floor, damping=self.damping, current=current)
        return {"verdict": "resolved", "guard_error": guard.error_nats, "current": current,
                "transfers": law.fit_info["transfers"],
                "target": allocation.params["target"], "new": allocation.ratios(),
                "pred_mean_loss": allocation.pred_mean_loss,
                "detail": f"guard error {guard.error_nats:.4f} nats; moved {self.damping:.0%} toward the new solve"}

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Decisions and loss points so far (the stages themselves live in the dataset state)."""
        return {"version": STATE_VERSION, "languages": self.languages, "decisions": list(self.decisions),
                "history": list(self.history)}

    def load_state_dict(self, state: Mapping, where: str = "Reweighter state") -> None:
        """Restore decisions saved by `state_dict`; `where` names the checkpoint in errors."""
        check_version(state.get("version"), STATE_VERSION, where)
        missing = [key for key in ("languages", "decisions", "history") if key not in state]
        if missing:
            raise StateError(f"{where}: the re-solving state lacks {missing} (an earlier climbstream wrote it); "
                             f"start the run afresh (a new out_dir, or 'climbstream demo --fresh' for the demo)")
        if list(state["languages"]) != self.languages:
            raise ConfigError(f"{where}: saved for {state['languages']}, this run has {self.languages}")
        self.decisions = [dict(d) for d in state["decisions"]]
        self.history = []
        self._seen = set()
        self.observe(state["history"])


def _offline_law(law):
    """A ClimbLaw, or the path of a law file from 'climbstream fit', or None (W = I)."""
    if law is None or not isinstance(law, (str, bytes)) and not hasattr(law, "__fspath__"):
        return law
    from climbstream.mixture.laws import load_law

    return load_law(law)


def _current_ratios(stream) -> dict[str, float]:
    weights = stream.stages()[-1]["weights"]
    total = float(sum(weights.values()))
    return {n: w / total for n, w in weights.items()}
