"""Sequential refinement: the step between `fit` and the final `solve`.

Why: a law fitted on random proxy mixtures is least sure exactly where the solver goes,
and a solver lands where its law's error favours it. So, from the law fitted so far, the
next round of proxies trains the mixtures the decision is about: the Climb solution, each
baseline the user could pick instead (same caps and floors), and the midpoint between the
Climb solution and each baseline. The law is refitted on all runs and solved again.
Stop rule: the law fitted without the newest round predicts that round within its own
4-fold cross-validation error, or the round limit is reached.

Rounds live in the design file (each run carries `round`; round 0 is the initial design),
so a round is trained by the ordinary `sweep` of the grown design: runs already in the
runs table are skipped, and `--part i/N` fans a round out like any design.
Cost: at most 1 + 2 x len(baselines) proxy runs per round; a mixture within
SAME_MIXTURE (largest ratio difference) of one already designed is not trained again, so
the baselines are trained once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from climbstream.errors import SolverError
from climbstream.mixture.cv import cross_validate, predict_rows
from climbstream.mixture.fit import fit_climb_law
from climbstream.mixture.recommend import CLIMB
from climbstream.mixture.runs import RunsTable

log = logging.getLogger(__name__)

SAME_MIXTURE = 1e-3
DEFAULT_MAX_ROUNDS = 2
MIDPOINT = 0.5


def same_mixture(a: Mapping[str, float], b: Mapping[str, float], tolerance: float = SAME_MIXTURE) -> bool:
    return max(abs(float(a.get(n, 0.0)) - float(b.get(n, 0.0))) for n in set(a) | set(b)) <= tolerance


def propose_round(candidates: Mapping[str, Mapping[str, float]], designed: Sequence[Mapping[str, float]],
                  tolerance: float = SAME_MIXTURE) -> list[tuple[str, dict[str, float]]]:
    """The next round's (label, mixture): climb, each baseline, and climb's midpoint with each baseline.

    `candidates` holds 'climb' and the baselines (recommend.candidate_mixtures); mixtures
    within `tolerance` of one in `designed` or earlier in the round are left out.
    """
    if CLIMB not in candidates:
        raise SolverError(f"propose_round needs the '{CLIMB}' candidate, got {list(candidates)}")
    climb = candidates[CLIMB]
    names = sorted(climb)
    proposals = [(CLIMB, dict(climb))]
    for label, ratios in candidates.items():
        if label == CLIMB:
            continue
        proposals.append((label, dict(ratios)))
        proposals.append((f"{CLIMB}~{label}", {n: (1 - MIDPOINT) * climb[n] + MIDPOINT * float(ratios[n])
                                               for n in names}))
    out: list[tuple[str, dict[str, float]]] = []
    for label, ratios in proposals:
        if any(same_mixture(ratios, d, tolerance) for d in list(designed) + [r for _, r in out]):
            continue
        out.append((label, ratios))
    return out


def round_error(law, runs: RunsTable) -> float:
    """Mean absolute error (nats) of the law's per-language prediction of `runs` at their largest token count."""
    rows = runs.at_largest_tokens()
    return float(np.mean(np.abs(predict_rows(law, rows) - rows.losses)))


@dataclass
class RoundCheck:
    """The stop rule's inputs and verdict for the newest round."""

    round: int
    runs: int
    error_nats: float | None = None  # the law fitted without this round, on this round
    cv_nats: float | None = None  # that law's 4-fold CV error on the earlier rounds
    stop: bool = False
    reason: str = ""
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"round": self.round, "runs": self.runs, "error_nats": self.error_nats, "cv_nats": self.cv_nats,
                "stop": self.stop, "reason": self.reason}


def check_round(runs: RunsTable, run_rounds: Mapping[str, int], max_rounds: int = DEFAULT_MAX_ROUNDS,
                cv_seed: int = 0, **fit_options) -> RoundCheck:
    """Apply the stop rule to the newest round of `runs` (`run_rounds` maps run id -> round).

    Round 0 alone has nothing to check (not stopped). The law fitted on the earlier
    rounds predicts the newest; stop when that error <= its CV error on the earlier
    rounds, or when `max_rounds` rounds of refinement are done.
    """
    missing = sorted(set(runs.run_ids()) - set(run_rounds), key=str)
    if missing:
        raise SolverError(f"{runs.source}: runs {missing[:5]} are not in the design's rounds; "
                          f"train the design they came from, or give its file")
    newest = max(run_rounds[r] for r in runs.run_ids())
    newest_ids = [r for r in runs.run_ids() if run_rounds[r] == newest]
    check = RoundCheck(round=newest, runs=len(newest_ids))
    if newest == 0:
        check.reason = "round 0 (the initial design): nothing to check yet"
        return check
    earlier = runs.of_runs([r for r in runs.run_ids() if run_rounds[r] < newest])
    law = fit_climb_law(earlier, **fit_options)
    check.error_nats = round_error(law, runs.of_runs(newest_ids))
    cv = cross_validate(earlier, "climb", folds=min(4, len(earlier.run_ids())), seed=cv_seed, **fit_options)
    check.cv_nats = float(cv["mae_nats"])
    if check.error_nats <= check.cv_nats:
        check.stop, check.reason = True, (f"round {newest} predicted within the law's CV error "
                                          f"({check.error_nats:.4f} <= {check.cv_nats:.4f} nats)")
    elif newest >= max_rounds:
        check.stop, check.reason = True, (f"round limit {max_rounds} reached (round {newest} erred "
                                          f"{check.error_nats:.4f} > CV {check.cv_nats:.4f} nats)")
    else:
        check.reason = (f"round {newest} erred {check.error_nats:.4f} > CV {check.cv_nats:.4f} nats: "
                        f"another round")
    log.info("refinement: %s", check.reason)
    return check
