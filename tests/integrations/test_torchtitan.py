"""torchtitan's ParallelAwareDataloader over the stream: exact per dp rank, and a state saved at dp
degree 2 resumes at degree 2 (torchdata's own restore) and at degree 1 (through the stream)."""

from __future__ import annotations

import pickle

import pytest

from climbstream import ClimbStream
from climbstream.errors import StateError
from tests.corpora import WEIGHTS
from tests.integrations.runner import B, as_steps, expected_steps, run, trained

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("workers", [0, 2])
def test_titan_loader_resumes_at_the_same_and_at_another_dp_degree(mds_corpus, tmp_path, workers):
    env = {"WORKERS": str(workers)}
    run("titan_script.py", mds_corpus, str(tmp_path), "run", env=env)
    two = expected_steps(mds_corpus, WEIGHTS, 6, world=2)
    for rank in range(2):
        assert as_steps(trained(tmp_path, rank, "run")) == two[rank]
    for rank in range(2):
        (tmp_path / f"rank{rank}.jsonl").unlink()
    run("titan_script.py", mds_corpus, str(tmp_path), "resume", env=env)
    for rank in range(2):
        assert as_steps(trained(tmp_path, rank, "resume")) == two[rank][3:]
    (tmp_path / "rank0.jsonl").unlink()
    run("titan_script.py", mds_corpus, str(tmp_path), "resume", nproc=1, env=env)
    one = expected_steps(mds_corpus, WEIGHTS, 6, world=1)
    assert as_steps(trained(tmp_path, 0, "resume")) == one[0][3:]


def test_a_pickled_state_that_would_run_code_is_refused(mds_corpus):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, rank=0, world_size=1)
    with pytest.raises(StateError, match=r"dp_rank_0: a pickled loader state refers to builtins.print"):
        stream.load_state_dict({"dp_rank_0": pickle.dumps({"x": Evil()}), "world_size": 2})
