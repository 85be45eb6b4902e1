"""The HF Trainer on 2 gloo processes: ClimbTrainer is exact and resumes in O(1); the plain Trainer is refused."""

from __future__ import annotations

import pytest

from tests.corpora import WEIGHTS
from tests.integrations.runner import as_steps, expected_steps, run, trained

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("workers,ga", [(0, 1), (2, 2)])
def test_climb_trainer_steps_are_the_stream_and_resume_continues_it(mds_corpus, tmp_path, workers, ga):
    env = {"WORKERS": str(workers), "GA": str(ga), "MAX_STEPS": "6", "SAVE_STEPS": "3"}
    run("hf_script.py", mds_corpus, str(tmp_path), "run", env=env)
    micro = 6 * ga
    expected = expected_steps(mds_corpus, WEIGHTS, micro, world=2)
    for rank in range(2):
        assert as_steps(trained(tmp_path, rank, "run")) == expected[rank]
    run("hf_script.py", mds_corpus, str(tmp_path), "resume", env=env)
    for rank in range(2):  # steps 4-6 continue at global batch 3 * ga: nothing replayed, nothing skipped
        assert as_steps(trained(tmp_path, rank, "resume")) == expected[rank][3 * ga:]


@pytest.mark.parametrize("nproc", [1, 2])
def test_plain_trainer_is_refused_naming_climb_trainer(mds_corpus, tmp_path, nproc):
    proc = run("hf_script.py", mds_corpus, str(tmp_path), "run", "plain", expect_fail=True, nproc=nproc,
               env={"MAX_STEPS": "2", "SAVE_STEPS": "2"})
    assert "ConfigError: the HF Trainer passes its DataLoader through accelerate" in proc.stderr
    assert "train with climbstream.integrations.hf.ClimbTrainer instead of Trainer" in proc.stderr
    assert trained(tmp_path, 0) == [] and trained(tmp_path, 1) == []
