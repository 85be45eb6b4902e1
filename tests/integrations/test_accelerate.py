"""accelerate on 2 gloo processes: prepare_loader is exact and save_state/load_state resume it; the
combinations that cannot be exact are one-line errors naming the fix."""

from __future__ import annotations

import pytest

from tests.corpora import WEIGHTS
from tests.integrations.runner import as_steps, expected_steps, run, trained

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("workers", [0, 2])
def test_prepare_loader_is_exact_and_load_state_continues_at_the_next_position(mds_corpus, tmp_path, workers):
    env = {"WORKERS": str(workers)}
    run("accelerate_script.py", mds_corpus, str(tmp_path), "run", "helper", env=env)
    expected = expected_steps(mds_corpus, WEIGHTS, 6, world=2)
    for rank in range(2):
        assert as_steps(trained(tmp_path, rank, "run")) == expected[rank]
    run("accelerate_script.py", mds_corpus, str(tmp_path), "resume", "helper", env=env)
    for rank in range(2):
        assert as_steps(trained(tmp_path, rank, "resume")) == expected[rank][3:]


def test_default_prepare_is_refused_naming_prepare_loader(mds_corpus, tmp_path):
    proc = run("accelerate_script.py", mds_corpus, str(tmp_path), "run", "prepare", expect_fail=True)
    assert "ConfigError: accelerate dispatches this stream's batches from rank 0" in proc.stderr
    assert "climbstream.integrations.accelerate.prepare_loader(accelerator, stream)" in proc.stderr
    assert trained(tmp_path, 0) == []


def test_prepare_without_dispatch_trains_exact_batches_but_refuses_to_save_a_position_ahead(mds_corpus, tmp_path):
    proc = run("accelerate_script.py", mds_corpus, str(tmp_path), "run", "nodispatch", expect_fail=True)
    expected = expected_steps(mds_corpus, WEIGHTS, 3, world=2)
    for rank in range(2):  # accelerate's IterableDatasetShard keeps exactly this rank's slice
        assert as_steps(trained(tmp_path, rank, "run")) == expected[rank]
    assert "StateError: the consumed position is unknown: accelerate fetches each batch before the step" in proc.stderr
    assert "prepare_loader for accelerate" in proc.stderr
