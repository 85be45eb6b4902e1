"""Allocation files: round trip through YAML and JSON, and version errors that name both versions."""

from __future__ import annotations

import json

import pytest
import yaml

from climbstream.errors import ClimbstreamError
from climbstream.mixture.allocation import Allocation
from climbstream.mixture.solver import allocate


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_allocation_round_trips(tmp_path, suffix, sparse_truth):
    alloc = allocate("climb", {n: 10**6 for n in "abcd"}, 2e6, law=sparse_truth)
    path = tmp_path / f"alloc{suffix}"
    alloc.save(path)
    back = Allocation.load(path)
    assert back == alloc
    assert back.ratios() == alloc.ratios()
    data = json.loads(path.read_text()) if suffix == ".json" else yaml.safe_load(path.read_text())
    assert list(data) == ["version", "method", "params", "budget_tokens", "caps", "languages", "pred_mean_loss"]
    assert set(data["languages"]["a"]) == {"ratio", "tokens", "epochs", "cap", "binding", "pred_loss"}
    assert set(data["caps"]) == {"e_max", "floor"}


def test_loading_an_unknown_version_names_the_file_and_both_versions(tmp_path):
    alloc = allocate("uniform", {"a": 10, "b": 10}, 10)
    path = tmp_path / "a.yaml"
    alloc.save(path)
    data = yaml.safe_load(path.read_text())
    data["version"] = 7
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ClimbstreamError) as err:
        Allocation.load(path)
    msg = str(err.value)
    assert str(path) in msg and "7" in msg and "version 1" in msg


def test_missing_allocation_file_says_how_to_make_one(tmp_path):
    with pytest.raises(ClimbstreamError, match="climbstream solve"):
        Allocation.load(tmp_path / "nope.yaml")


def test_law_round_trips_and_checks_version(tmp_path, sparse_truth):
    import numpy as np

    from climbstream.mixture.laws import load_law, save_law

    save_law(sparse_truth, tmp_path / "law.yaml")
    back = load_law(tmp_path / "law.yaml")
    assert np.array_equal(back.W, sparse_truth.W) and np.array_equal(back.B, sparse_truth.B)
    data = yaml.safe_load((tmp_path / "law.yaml").read_text())
    data["version"] = 99
    (tmp_path / "law.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ClimbstreamError, match="99"):
        load_law(tmp_path / "law.yaml")
