"""Smoke test of benchmarks/allocation.py's plumbing (design -> sweep -> fit -> solve -> train).

A CPU-sized run on the tiny test corpus: every step runs for real, nothing asserts which
method wins (that is the benchmark's own result, sized for a GPU).
"""

from __future__ import annotations

import csv
import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import allocation  # noqa: E402


def test_the_allocation_benchmark_trains_every_method_at_equal_tokens(mds_corpus, tmp_path, capsys):
    out = allocation.main(["--corpus", mds_corpus, "--out", str(tmp_path), "--runs", "8", "--proxy-steps", "6",
                           "--steps", "6", "--seeds", "2", "--global-batch", "8", "--heldout-samples", "8"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == out
    with open(tmp_path / "runs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len({r["run"] for r in rows}) == 8 and len(rows) == 8 * 3
    budget = 6 * 8 * 32
    assert out["budget_tokens"] == budget
    assert set(out["results"]) == {"climb", "temperature", "uniform", "unimax"}
    for method, r in out["results"].items():
        # the same tokens for every method and seed (the tracker counts predicted tokens: seq_len - 1 a sample)
        assert len(r["per_seed"]) == 2 and r["tokens_trained"] == [6 * 8 * 31], method
        assert abs(sum(r["ratios"].values()) - 1) < 1e-4
        assert r["stderr"] == pytest.approx(abs(r["per_seed"][0] - r["per_seed"][1]) / 2)
    assert len(set(out["results"]["uniform"]["ratios"].values())) == 1
    assert out["results"]["climb"]["minus_climb"] == 0.0
    assert sorted(out["ranking"]) == sorted(out["results"])


def test_one_seed_is_refused():
    with pytest.raises(SystemExit):
        allocation.parse_args(["--seeds", "1"])
