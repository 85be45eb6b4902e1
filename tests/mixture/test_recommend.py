"""The recommendation: bootstrap ensemble intervals, the decision rule, refinement rounds and their stop rule.

Synthetic runs come from a known K = 3 law (W = I plus one transfer), so what the
ensemble and the rule must say is known; the fits use a fixed ridge to stay fast.
"""

from __future__ import annotations

import numpy as np
import pytest

from climbstream.errors import SolverError
from climbstream.mixture.ensemble import LawEnsemble, bootstrap_runs, fit_ensemble
from climbstream.mixture.laws import ClimbLaw
from climbstream.mixture.recommend import CLIMB, candidate_mixtures, recommend
from climbstream.mixture.refine import check_round, propose_round, same_mixture
from climbstream.mixture.runs import runs_from_rows

NAMES = ("a", "b", "c")
TOKENS = 1e6
COUNTS = {"a": 10**7, "b": 10**7, "c": 60_000}  # c is small: e_max 1 caps it at 0.06


def truth() -> ClimbLaw:
    W = np.eye(3)
    W[1, 0] = 0.3  # a helps b
    return ClimbLaw(languages=NAMES, E=np.array([1.0, 1.2, 0.9]), B=np.array([40.0, 80.0, 30.0]),
                    beta=np.array([0.3, 0.35, 0.25]), W=W)


def synthetic_runs(law: ClimbLaw, runs: int = 12, seed: int = 0, noise: float = 2e-3, first: int = 0,
                   mixtures=None):
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(runs):
        r = np.asarray(mixtures[m]) if mixtures is not None else np.maximum(rng.dirichlet(np.ones(3)), 0.02)
        r = r / r.sum()
        loss = law.predict(r, TOKENS) * np.exp(rng.normal(0, noise, 3))
        rows.append({"run": first + m, "tokens": TOKENS, "params": 1e6,
                     **{f"ratio_{n}": x for n, x in zip(NAMES, r)}, **{f"loss_{n}": x for n, x in zip(NAMES, loss)}})
    return rows


def law_with_B(scale_b: float) -> ClimbLaw:
    """W = I, B of language b scaled: a replicate that thinks b's data is worth more or less."""
    t = truth()
    return ClimbLaw(languages=NAMES, E=t.E, B=t.B * np.array([1.0, scale_b, 1.0]), beta=t.beta, W=np.eye(3))


def test_bootstrap_resamples_whole_runs_with_fresh_ids():
    table = runs_from_rows(synthetic_runs(truth(), runs=5), "s")
    boot = bootstrap_runs(table, np.random.default_rng(3))
    assert len(boot.run_ids()) == 5 and len(boot) == 5  # one row per run here; duplicates get their own ids
    for row in range(len(boot)):  # every row is a row of the original table
        assert any(np.allclose(boot.ratios[row], table.ratios[j]) and np.allclose(boot.losses[row], table.losses[j])
                   for j in range(len(table)))


def test_ensemble_intervals_hold_the_full_fit_and_pairs_are_antisymmetric():
    table = runs_from_rows(synthetic_runs(truth(), runs=12), "s")
    ens = fit_ensemble(table, replicates=4, seed=1, ridge=1e-2)
    assert len(ens.replicates) == 4
    cmp = ens.compare({"x": {"a": 0.6, "b": 0.3, "c": 0.1}, "y": {"a": 0.2, "b": 0.2, "c": 0.6}}, TOKENS)
    for p in cmp["predicted"].values():
        assert p.low < p.value < p.high and p.sd > 0
    xy, yx = cmp["differences"]["x - y"], cmp["differences"]["y - x"]
    assert xy.value == pytest.approx(-yx.value) and xy.sd == pytest.approx(yx.sd)
    # the full fit's point prediction is the law's own
    r = np.array([0.6, 0.3, 0.1])
    assert cmp["predicted"]["x"].value == pytest.approx(float(ens.law.predict(r, TOKENS).mean()))
    # seeded: the same ensemble twice
    again = fit_ensemble(table, replicates=4, seed=1, ridge=1e-2)
    assert [law.B.tolist() for law in again.replicates] == [law.B.tolist() for law in ens.replicates]


def test_climb_is_recommended_only_when_every_replicate_interval_puts_it_ahead():
    from climbstream.mixture.solver import allocate

    optimum = allocate(CLIMB, {n: 10**9 for n in NAMES}, TOKENS, floor=0.0, law=law_with_B(1.0)).ratios()
    good = {CLIMB: optimum, "uniform": {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, "skewed": {"a": 0.8, "b": 0.1, "c": 0.1}}
    sure = LawEnsemble(law=law_with_B(1.0), replicates=tuple(law_with_B(s) for s in (0.98, 1.0, 1.02)))
    rec = recommend(sure, good, TOKENS)
    assert rec.label == CLIMB and rec.verdict.startswith("recommending climb: the ensemble puts it ahead")
    assert all(rec.comparison["differences"][f"{b} - {CLIMB}"].low > 0 for b in ("uniform", "skewed"))
    # replicates that disagree about b's value widen every interval past 0: the best baseline wins
    unsure = LawEnsemble(law=law_with_B(1.0), replicates=tuple(law_with_B(s) for s in (0.2, 1.0, 5.0)))
    rec = recommend(unsure, good, TOKENS)
    best = min(("uniform", "skewed"), key=lambda b: rec.comparison["predicted"][b].value)
    assert rec.label == best and rec.ratios == good[best]
    assert f"recommending {best}: climb is not resolvably ahead of" in rec.verdict
    data = rec.to_dict()
    assert data["recommended"] == best and set(data["candidates"]) == set(good)
    assert f"uniform - {CLIMB}" in data["differences"] and "rule" in data


def test_a_climb_pick_that_the_law_ranks_behind_is_never_recommended():
    sure = LawEnsemble(law=law_with_B(1.0), replicates=tuple(law_with_B(s) for s in (0.99, 1.0, 1.01)))
    bad_climb = {CLIMB: {"a": 0.9, "b": 0.05, "c": 0.05}, "uniform": {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}}
    rec = recommend(sure, bad_climb, TOKENS)
    assert rec.label == "uniform"
    with pytest.raises(SolverError, match="needs the 'climb' candidate"):
        recommend(sure, {"uniform": bad_climb["uniform"]}, TOKENS)


def test_candidates_share_caps_and_floors_and_extra_mixtures_are_kept_as_given():
    cands = candidate_mixtures(COUNTS, TOKENS, truth(), e_max=1.0, floor=0.02,
                               extra={"uniform_uncapped": {"a": 1, "b": 1, "c": 1}})
    assert set(cands) == {CLIMB, "temperature", "unimax", "uniform", "uniform_uncapped"}
    cap_c = COUNTS["c"] / TOKENS
    for label in (CLIMB, "temperature", "unimax", "uniform"):
        assert cands[label]["c"] <= cap_c + 1e-9 and min(cands[label].values()) >= 0.02 - 1e-9, label
    assert cands["uniform_uncapped"] == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    with pytest.raises(SolverError, match=r"baselines \['msl'\]: expected some of natural"):
        candidate_mixtures(COUNTS, TOKENS, truth(), e_max=1.0, baselines=("msl",))
    with pytest.raises(SolverError, match="name of a method already compared"):
        candidate_mixtures(COUNTS, TOKENS, truth(), e_max=1.0, extra={"uniform": {"a": 1, "b": 1, "c": 1}})


def test_a_round_proposes_climb_each_baseline_and_the_midpoints_once():
    cands = {CLIMB: {"a": 0.5, "b": 0.3, "c": 0.2}, "uniform": {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3},
             "temperature": {"a": 0.5, "b": 0.3, "c": 0.2}}  # the same mixture as climb: proposed once
    first = propose_round(cands, designed=[])
    labels = [label for label, _ in first]
    assert labels == [CLIMB, "uniform", "climb~uniform"]
    mid = dict(first)["climb~uniform"]
    assert mid["a"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert propose_round(cands, designed=[r for _, r in first]) == []  # all trained already
    assert same_mixture({"a": 0.5, "b": 0.5}, {"a": 0.5004, "b": 0.4996})
    assert not same_mixture({"a": 0.5, "b": 0.5}, {"a": 0.51, "b": 0.49})


def test_the_stop_rule_stops_when_the_newest_round_is_predicted_within_cv_error():
    law = truth()
    rows = synthetic_runs(law, runs=12, seed=0)
    rounds = {str(i): 0 for i in range(12)}
    check = check_round(runs_from_rows(rows, "s"), rounds)
    assert not check.stop and check.round == 0 and check.error_nats is None
    # round 1 drawn from the same law: predicted within CV error -> stop
    same = rows + synthetic_runs(law, runs=4, seed=5, first=12)
    check = check_round(runs_from_rows(same, "s"), rounds | {str(i): 1 for i in range(12, 16)}, ridge=1e-2)
    assert check.stop and check.error_nats <= check.cv_nats and "within the law's CV error" in check.reason
    # round 1 from another world (b's loss 20% higher): the law misses it -> another round, then the limit
    other = ClimbLaw(languages=NAMES, E=law.E * np.array([1.0, 1.2, 1.0]), B=law.B, beta=law.beta, W=law.W)
    shifted = rows + synthetic_runs(other, runs=4, seed=5, first=12)
    r1 = rounds | {str(i): 1 for i in range(12, 16)}
    check = check_round(runs_from_rows(shifted, "s"), r1, max_rounds=2, ridge=1e-2)
    assert not check.stop and check.error_nats > check.cv_nats and "another round" in check.reason
    check = check_round(runs_from_rows(shifted, "s"), r1, max_rounds=1, ridge=1e-2)
    assert check.stop and "round limit 1" in check.reason
    with pytest.raises(SolverError, match="not in the design's rounds"):
        check_round(runs_from_rows(shifted, "s"), rounds)
