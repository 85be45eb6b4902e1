"""Smoke test of benchmarks/growth.py's cost of a change (the audit itself runs in tests/dataset/test_growth.py)."""

from __future__ import annotations

from benchmarks.growth import cost


def test_the_cost_of_a_change_is_measured_on_a_small_language():
    report = cost(samples=32_000, shard_samples=32)
    assert report["shards_before"] == 1000 and report["appended"] == 32_000
    assert report["locate_4096_s"] > 0 and report["order_heap_bytes"] > 0
    assert report["state_bytes_per_language_and_version"] < 120
