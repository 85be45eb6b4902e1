"""Smoke test of benchmarks/allocation.py (protocol v2: proxies -> laws -> refinement -> recommendation -> paired arms) and its statistics.

A CPU-sized run on the tiny test corpus: every step runs for real, nothing asserts which
method wins (that is the benchmark's own result). The interval arithmetic and the
resolvability rule are checked on numbers whose answer is known.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import allocation  # noqa: E402
from allocation_stats import RESOLVE_FACTOR, all_pairs, noise_floor, paired_difference, ranking  # noqa: E402
from allocation_train import RunShape, load_heldout, train_mixture  # noqa: E402

ARMS = {"climb", "climb_unrefined", "temperature", "unimax", "uniform", "online"}
BASELINES = {"temperature", "unimax", "uniform"}


def test_the_allocation_benchmark_pairs_every_arm_with_the_recommended_mixture(mds_corpus, tmp_path, capsys):
    out = allocation.main(["--corpus", mds_corpus, "--out", str(tmp_path), "--proxies", "5", "--steps", "4",
                           "--seeds", "2", "--global-batch", "8", "--workers", "1", "--max-rounds", "1",
                           "--replicates", "3", "--regret-languages", "aa,bb,cc", "--regret-proxies", "4",
                           "--regret-proxy-steps", "3", "--regret-steps", "3", "--regret-parts", "4"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == out
    m = out["methods"]
    manifest = json.load(open(os.path.join(mds_corpus, "climbstream-manifest.json")))
    # the whole held-out split of every language is scored
    assert m["final"]["heldout_samples"] == {n: v["heldout_samples"] for n, v in manifest["languages"].items()}
    assert set(m["results"]) == ARMS
    rec = m["recommended"]
    assert rec in ARMS - {"online", "climb_unrefined"} and m["recommendation"]["recommended"] == rec
    assert m["results"][rec]["ratios"] == {n: round(v, 5) for n, v in m["recommendation"]["candidates"][rec]
                                           ["ratios"].items()}
    for method, r in m["results"].items():
        # equal tokens for every arm and seed, the online arm's stages included: steps x global batch x seq_len
        assert len(r["per_seed"]) == 2 and r["tokens_trained"] == [4 * 8 * 32], method
        assert abs(sum(r["ratios"].values()) - 1) < 1e-4
        assert r["prediction_error"] == pytest.approx(r["mean_heldout_loss"] - r["law_predicted_loss"])
        if method not in ("uniform", "online"):  # uniform is the uncapped baseline; the others stay within e_max
            assert max(r["epochs"].values()) <= m["e_max"] + 1e-3, method
    assert len(set(m["results"]["uniform"]["ratios"].values())) == 1
    # every baseline is paired with the recommended mixture, with its interval
    for b in BASELINES - {rec}:
        p = m["pairs"][f"{b} - {rec}"]
        assert p["low"] <= p["mean"] <= p["high"] and m["not_resolvably_worse"][f"{b} - {rec}"] == (p["high"] >= 0)
        assert p["mean"] == pytest.approx(m["results"][b]["mean_heldout_loss"] - m["results"][rec]["mean_heldout_loss"])
    assert out["online"]["start"] == rec and f"online - {rec}" in out["online"]["pairs"]
    assert [len(d) for d in out["online"]["decisions"]] == [len(out["online"]["at_steps"])] * 2
    laws = out["laws"]
    assert set(laws) == {"full", "half", "fractions", "refined", "best"} and laws["best"] in laws
    assert laws["fractions"]["rows"] == 3 * laws["full"]["rows"]  # three scores per full-length proxy
    r = out["refinement"]
    assert r["rounds"][0]["round"] == 1 and r["runs_total"] == 5 + r["rounds"][0]["runs"]
    g = out["regret"]
    assert g["languages"] == ["aa", "bb", "cc"] and len(g["grid"]) == 3  # (1,1,2)/4 and its permutations
    assert all(p["regret"] >= 0 for p in g["picks"].values())
    saved = tmp_path / "allocation.json"
    saved.write_text(json.dumps(out))
    assert allocation.main(["--render", str(saved)]) == out
    table = capsys.readouterr().out
    assert f"recommended: {rec}" in table and all(f"| {arm} |" in table for arm in ARMS)


def test_the_online_arm_resolves_through_the_library_reweighter_and_keeps_the_token_count(mds_corpus):
    from allocation_train import online_options

    from climbstream.mixture.laws import ClimbLaw

    heldout = load_heldout(mds_corpus)
    names = sorted(heldout)
    law = ClimbLaw(languages=tuple(names), E=np.ones(4), B=np.full(4, 20.0), beta=np.full(4, 0.3), W=np.eye(4))
    shape = RunShape(steps=12, global_batch=8)
    start = {"aa": 0.4, "bb": 0.3, "cc": 0.2, "dd": 0.1}
    online = online_options(law, (8,), e_max=50.0, floor=0.02, budget_tokens=12 * 8 * 32, flush_every=2)
    online["guard_threshold"] = 10.0  # let the re-solve through: this test is about the plumbing, not the guard
    a = train_mixture(mds_corpus, start, shape, init_seed=1, data_seed=2, heldout=heldout, online=online)
    assert [d["step"] for d in a["resolves"]] == [8] and a["resolves"][0]["verdict"] == "resolved"
    assert [s["start"] for s in a["stages"]] == [0, 8 * 8]  # the new stage starts at the consumed position
    assert sum(a["tokens_per_language"].values()) == 12 * 8 * 32
    b = train_mixture(mds_corpus, start, shape, init_seed=1, data_seed=2, heldout=heldout, online=online)
    for n in names:  # deterministic, re-solve included
        np.testing.assert_array_equal(a["heldout"][n], b["heldout"][n])


def test_a_seed_gives_the_same_run_and_the_whole_heldout_split(mds_corpus):
    heldout = load_heldout(mds_corpus)
    shape = RunShape(steps=3, global_batch=8)
    ratios = {"aa": 0.4, "bb": 0.3, "cc": 0.2, "dd": 0.1}
    a = train_mixture(mds_corpus, ratios, shape, init_seed=5, data_seed=7, heldout=heldout)
    b = train_mixture(mds_corpus, ratios, shape, init_seed=5, data_seed=7, heldout=heldout)
    c = train_mixture(mds_corpus, ratios, shape, init_seed=6, data_seed=7, heldout=heldout)
    for n in ratios:
        assert len(a["heldout"][n]) == len(heldout[n])
        np.testing.assert_array_equal(a["heldout"][n], b["heldout"][n])
    assert any(not np.array_equal(a["heldout"][n], c["heldout"][n]) for n in ratios)  # the init seed matters


def test_the_lr_decays_to_zero_after_warmup():
    shape = RunShape(steps=100, warmup_steps=10)
    assert shape.lr_factor(0) == pytest.approx(0.1) and shape.lr_factor(9) == pytest.approx(1.0)
    assert shape.lr_factor(100) == pytest.approx(0.0, abs=1e-12)
    assert shape.lr_factor(55) == pytest.approx(0.5)


def _scores(per_seed_shift, eval_noise=0.0, samples=400, seed=0):
    """Two languages; method b = method a + shift[s] on every sample, plus per-sample noise."""
    rng = np.random.default_rng(seed)
    base = [{k: rng.normal(2.0, 0.3, samples) for k in ("x", "y")} for _ in per_seed_shift]
    other = [{k: v + d + rng.normal(0, eval_noise, samples) for k, v in s.items()}
             for s, d in zip(base, per_seed_shift)]
    return base, other


def test_the_paired_interval_is_t_times_the_seed_spread_without_eval_noise():
    a, b = _scores([0.10, 0.12, 0.11, 0.13])
    d = paired_difference(b, a)
    diffs = np.array([0.10, 0.12, 0.11, 0.13])
    assert d["mean"] == pytest.approx(diffs.mean())
    assert d["eval_se"] == pytest.approx(0.0, abs=1e-12)
    assert d["half_width"] == pytest.approx(3.182446 * diffs.std(ddof=1) / 2, rel=1e-5)
    assert d["resolved"]  # 0.115 against a half-width of 0.021


def test_evaluation_noise_widens_the_interval_and_can_unresolve_a_gap():
    a, b = _scores([0.01, 0.01, 0.01], eval_noise=0.5, samples=50)
    d = paired_difference(b, a)
    assert d["eval_se"] > 0.02 and d["half_width"] > 4 * abs(d["mean"])
    assert not d["resolved"]


def test_identical_mixtures_are_no_gap_and_ties_group_in_the_ranking():
    a, b = _scores([0.0, 0.0])
    assert not paired_difference(b, a)["resolved"]
    x, far = _scores([0.5, 0.52, 0.51], seed=1)
    near = [{k: v + d for k, v in s.items()} for s, d in zip(x, [0.001, -0.002, 0.003])]
    pairs = all_pairs({"x": x, "near": near, "far": far})
    groups = ranking({"x": 2.0, "near": 2.001, "far": 2.5}, pairs)
    assert groups == [["x", "near"], ["far"]]
    floor = noise_floor(pairs)
    assert floor["resolvable_gap"] == pytest.approx(RESOLVE_FACTOR * floor["max_half_width"])
    assert floor["smallest_real_gap"] >= RESOLVE_FACTOR * max(p["half_width"] for p in pairs.values() if p["resolved"])


def test_one_seed_is_refused():
    with pytest.raises(SystemExit):
        allocation.parse_args(["--seeds", "1"])
    with pytest.raises(SystemExit):
        allocation.parse_args(["--replicates", "1"])
