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


def staged_log(stages, per_flush=200_000, flushes_per_stage=4):
    """A loss log whose mixture changes at each stage (cumulative tokens, true law, no noise)."""
    records, seen, s = [], np.zeros(3), 0
    for ratios in stages:
        for _ in range(flushes_per_stage):
            s += 1
            seen = seen + np.array(ratios) * per_flush
            loss = TRUTH.loss_at_effective(TRUTH.effective_tokens(seen))
            records += [{"step": s, "lang": n, "loss_mean": float(loss[k]), "tokens_total": float(seen[k])}
                        for k, n in enumerate(TRUTH.languages)]
    return records


def test_auto_transfers_refit_W_only_when_the_mixtures_identify_it():
    from climbstream.mixture.online import choose_transfers, mixtures_vary

    one_stage = history_arrays(staged_log([(0.5, 0.35, 0.15)] * 3))[2]
    varied = history_arrays(staged_log([(0.5, 0.35, 0.15), (0.2, 0.3, 0.5), (0.1, 0.7, 0.2)]))[2]
    assert not mixtures_vary(one_stage) and mixtures_vary(varied)
    assert choose_transfers("auto", one_stage, TRUTH) == "offline"
    assert choose_transfers("auto", one_stage, None) == "identity"
    assert choose_transfers("auto", varied, None) == "refit"
    with pytest.raises(SolverError, match="transfers='offline' needs the offline law"):
        choose_transfers("offline", varied, None)
    with pytest.raises(SolverError, match="transfers must be one of auto, refit, offline, identity, got 'W'"):
        choose_transfers("W", varied, None)


def test_refitting_W_on_a_varied_history_finds_the_transfers_the_offline_W_lacks():
    history = staged_log([(0.5, 0.35, 0.15), (0.2, 0.3, 0.5), (0.1, 0.7, 0.2), (0.6, 0.1, 0.3)])
    wrong_offline = make_law(TRUTH.languages, TRUTH.E, TRUTH.B, TRUTH.beta, np.eye(3))
    auto = fit_online_law(history, wrong_offline, transfers="auto")
    kept = fit_online_law(history, wrong_offline, transfers="offline")
    assert auto.fit_info["transfers"] == "refit" and kept.fit_info["transfers"] == "offline"
    later = np.array([0.3, 0.3, 0.4]) * 200_000 * 40
    true = TRUTH.loss_at_effective(TRUTH.effective_tokens(later))
    err = {name: np.abs(law.loss_at_effective(law.effective_tokens(later)) - true).mean()
           for name, law in (("auto", auto), ("offline", kept))}
    assert err["auto"] < 0.5 * err["offline"], err
    assert abs(auto.W[1, 0] - 0.3) < 0.1 and abs(auto.W[0, 1] - 0.2) < 0.1


def test_reweighter_refuses_an_unknown_or_unsatisfiable_transfers_choice():
    from climbstream.errors import ConfigError
    from climbstream.train.reweight import Reweighter

    with pytest.raises(ConfigError, match="transfers must be one of auto, refit, offline, identity, got 'fixed'"):
        Reweighter(list(TRUTH.languages), COUNTS, 4e6, 128, transfers="fixed")
    with pytest.raises(ConfigError, match="transfers='offline' needs law="):
        Reweighter(list(TRUTH.languages), COUNTS, 4e6, 128, transfers="offline")


def test_on_real_runs_the_default_refits_W_and_predicts_the_next_interval_best(real_runs, real_counts):
    """Pooled history: every run at its first two token counts; predicted: each run's third."""
    levels = sorted(set(real_runs.tokens.tolist()))
    history = []
    for m in np.flatnonzero(real_runs.tokens < levels[2]):
        step = real_runs.run_ids().index(real_runs.run[m]) * 10 + levels.index(real_runs.tokens[m])
        history += [{"step": step, "lang": n, "loss_mean": float(real_runs.losses[m, k]),
                     "tokens_total": float(real_runs.ratios[m, k] * real_runs.tokens[m])}
                    for k, n in enumerate(real_runs.languages)]
    third = real_runs.select(np.flatnonzero(real_runs.tokens == levels[2]))
    from climbstream.mixture.fit import fit_climb_law

    offline = fit_climb_law(real_runs.select(np.flatnonzero(real_runs.tokens == levels[1])), ridge=1e-2)
    err = {}
    for mode in ("auto", "offline"):
        law = fit_online_law(history, offline, counts=real_counts, transfers=mode)
        order = [third.languages.index(n) for n in law.languages]
        pred = law.loss_at_effective(law.effective_tokens((third.ratios * third.tokens[:, None])[:, order]))
        err[law.fit_info["transfers"]] = float(np.abs(pred - third.losses[:, order]).mean())
    assert set(err) == {"refit", "offline"}
    assert err["refit"] < 0.15 < err["offline"], err
