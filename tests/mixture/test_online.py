"""Section 7: fitting from a loss log, guarding a re-solve, and solving the remaining budget."""

from __future__ import annotations

import numpy as np
import pytest

from climbstream.errors import SolverError
from climbstream.mixture.laws import repeated_tokens
from climbstream.mixture.online import fit_online_law, guard_prediction, history_arrays, solve_remaining

from .conftest import make_law

TRUTH = make_law(["en", "fr", "is"], E=[1.0, 1.1, 1.3], B=[40.0, 55.0, 70.0], beta=[0.3, 0.32, 0.35],
                 W=[[1, 0.2, 0], [0.3, 1, 0], [0, 0, 1]])
COUNTS = {"en": 5_000_000, "fr": 5_000_000, "is": 200_000}


def loss_log(ratios=(0.5, 0.35, 0.15), flushes=12, per_flush=200_000, noise=0.0, jump_last=0.0, decay=None):
    rng = np.random.default_rng(0)
    unique = np.array([COUNTS[n] for n in TRUTH.languages], float)
    records = []
    for s in range(1, flushes + 1):
        seen = np.array(ratios) * per_flush * s
        x = repeated_tokens(seen, unique if decay else None, decay) @ TRUTH.W.T
        loss = TRUTH.loss_at_effective(x) * np.exp(rng.normal(0, noise, 3))
        if s == flushes:
            loss = loss + jump_last
        for k, n in enumerate(TRUTH.languages):
            records.append({"step": s * 100, "position": s * 1000, "lang": n, "loss_mean": float(loss[k]),
                            "tokens_interval": float(ratios[k] * per_flush), "tokens_total": float(seen[k]),
                            "stage": 0, "weight": 0})
        records.append({"step": s * 100, "wait_s": 0.0, "cache_hit_rate": 1.0, "bytes_downloaded": 0})
    return records


def test_online_fit_with_offline_W_predicts_the_future():
    law = fit_online_law(loss_log(flushes=8), TRUTH)
    later = np.array([0.5, 0.35, 0.15]) * 200_000 * 20
    pred = law.loss_at_effective(law.effective_tokens(later))
    true = TRUTH.loss_at_effective(TRUTH.effective_tokens(later))
    assert np.abs(pred - true).max() < 0.02


def test_online_fit_fits_a_repetition_decay_when_a_language_repeats():
    log = loss_log(ratios=(0.45, 0.35, 0.2), flushes=12, per_flush=400_000, decay=2.0)
    law = fit_online_law(log, TRUTH, counts=COUNTS)
    assert law.repetition_decay_epochs == 2.0
    assert law.fit_info["train_mae_nats"] < 1e-3


def test_guard_accepts_a_good_fit_and_rejects_a_surprise():
    good = guard_prediction(loss_log(noise=0.001), TRUTH, threshold=0.02)
    assert good.ok and good.error_nats < 0.02 and good.predicted_step == 1200 and good.fitted_through_step == 1100
    bad = guard_prediction(loss_log(jump_last=0.2), TRUTH, threshold=0.02)
    assert not bad.ok and bad.error_nats > 0.15
    assert set(bad.per_language) == {"en", "fr", "is"}


def test_solve_remaining_counts_consumed_tokens_in_the_epoch_caps():
    consumed = {"en": 1_000_000, "fr": 800_000, "is": 1_500_000}
    alloc = solve_remaining(TRUTH, consumed, 4_000_000, COUNTS, e_max=8, floor=0.0, damping=1.0)
    # 'is' may see 8 * 200k = 1.6M in all; 1.5M are gone, so at most 100k of the remaining 4M
    assert alloc.languages["is"].cap == pytest.approx(100_000 / 4_000_000)
    assert alloc.languages["is"].tokens <= 100_000 + 1e-6
    assert alloc.languages["is"].epochs <= 8 + 1e-9
    assert alloc.params["polished_F"] <= alloc.params["two_step_F"] + 1e-12


def test_solve_remaining_moves_only_the_damped_fraction():
    consumed = {"en": 1_000_000, "fr": 1_000_000, "is": 100_000}
    full = solve_remaining(TRUTH, consumed, 4_000_000, COUNTS, floor=0.0, damping=1.0)
    half = solve_remaining(TRUTH, consumed, 4_000_000, COUNTS, floor=0.0, damping=0.5)
    start = np.array([1, 1, 0.1]) / 2.1
    for k, n in enumerate(["en", "fr", "is"]):
        assert half.languages[n].ratio == pytest.approx(start[k] + 0.5 * (full.languages[n].ratio - start[k]), abs=1e-9)
    with pytest.raises(SolverError, match="damping"):
        solve_remaining(TRUTH, consumed, 4_000_000, COUNTS, damping=0.0)


def test_loss_log_missing_a_language_at_a_flush_names_the_step():
    log = [r for r in loss_log(flushes=4) if not (r.get("step") == 300 and r.get("lang") == "fr")]
    with pytest.raises(SolverError, match="step 300.*fr"):
        history_arrays(log)


def test_damping_steps_exactly_halfway_from_an_infeasible_current_mixture():
    consumed = {"en": 1_000_000, "fr": 1_000_000, "is": 100_000}
    # 'is' has 200k tokens: with e_max 1 it may take at most 100k more of 4M (2.5%), so the
    # current mixture (20% 'is') is outside the feasible set and is projected before the step
    current = {"en": 0.4, "fr": 0.4, "is": 0.2}
    full = solve_remaining(TRUTH, consumed, 4_000_000, COUNTS, e_max=1, floor=0.0, damping=1.0, current=current)
    half = solve_remaining(TRUTH, consumed, 4_000_000, COUNTS, e_max=1, floor=0.0, damping=0.5, current=current)
    start = np.array([half.params["from"][n] for n in ("en", "fr", "is")])
    assert start[2] == pytest.approx(0.025)  # projected onto the cap
    for k, n in enumerate(["en", "fr", "is"]):
        assert half.languages[n].ratio == pytest.approx(start[k] + 0.5 * (full.languages[n].ratio - start[k]), abs=1e-9)


def test_reweighter_fits_online_with_the_offline_laws_W(tmp_path):
    from climbstream.mixture.laws import save_law
    from climbstream.train.reweight import Reweighter

    path = tmp_path / "law.yaml"
    save_law(TRUTH, path)
    r = Reweighter(list(TRUTH.languages), COUNTS, 4e6, 128, law=str(path))
    assert np.array_equal(r.law.W, TRUTH.W)
    online = fit_online_law(loss_log(flushes=8), r.law)
    assert np.array_equal(online.W, TRUTH.W)
    assert np.array_equal(fit_online_law(loss_log(flushes=8)).W, np.eye(3))  # without a law: W = I
