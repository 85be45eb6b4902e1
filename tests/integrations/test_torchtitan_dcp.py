"""torchtitan's save and load flow (torch.distributed.checkpoint) over ClimbTitanDataloader: a checkpoint
saved at dp degree 2 resumes exactly at degree 1, 2 and 4, and loading starts no iterator under the old state."""

from __future__ import annotations

import pytest

from tests.corpora import WEIGHTS
from tests.integrations.runner import as_steps, expected_steps, run, trained

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("workers", [0, 2])
def test_a_dcp_checkpoint_at_dp_2_resumes_exactly_at_dp_1_2_and_4(mds_corpus, tmp_path, workers):
    env = {"WORKERS": str(workers)}
    run("titan_dcp_script.py", mds_corpus, str(tmp_path), "run", nproc=2, env=env)
    two = expected_steps(mds_corpus, WEIGHTS, 6, world=2)
    for rank in range(2):
        assert as_steps(trained(tmp_path, rank, "run")) == two[rank]
    for degree in (1, 2, 4):
        for path in tmp_path.glob("rank*.jsonl"):
            path.unlink()
        run("titan_dcp_script.py", mds_corpus, str(tmp_path), "resume", nproc=degree, env=env)
        expected = expected_steps(mds_corpus, WEIGHTS, 6, world=degree)
        for rank in range(degree):
            assert as_steps(trained(tmp_path, rank, "resume")) == expected[rank][3:], (degree, rank)
