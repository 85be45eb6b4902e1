"""Lightning with the stream built in train_dataloader() and ClimbCallback added to trainer.callbacks there
(2 gloo processes): the checkpoint holds the end of the step it was saved at whatever the callback's place,
fit(ckpt_path=) continues at the next position, and a resume that cannot restore the stream is refused."""

from __future__ import annotations

import glob

import pytest
import torch

from tests.corpora import WEIGHTS
from tests.integrations.runner import B, as_steps, expected_steps, run, trained

pytestmark = pytest.mark.slow


def _saved_positions(out) -> dict:
    [ckpt] = glob.glob(str(out / "checkpoints" / "*step=4*.ckpt"))
    saved = torch.load(ckpt, weights_only=False)  # a checkpoint this test just wrote
    loops = saved["loops"]["fit_loop"]["state_dict"].get("combined_loader") or [{}]
    return {"callback": saved["callbacks"]["ClimbCallback"]["stream"]["position"], "loop": loops[0].get("position")}


@pytest.mark.parametrize("devices,place,workers", [(2, "append", 2), (1, "first", 0)])
def test_a_callback_added_in_train_dataloader_checkpoints_and_resumes_exactly(mds_corpus, tmp_path, devices, place,
                                                                            workers):
    env = {"WORKERS": str(workers)}
    args = (mds_corpus, str(tmp_path))
    run("lightning_late_script.py", *args, "run", str(devices), "stream", place, nproc=0, env=env)
    expected = expected_steps(mds_corpus, WEIGHTS, 8, world=devices)
    for rank in range(devices):
        assert as_steps(trained(tmp_path, rank, "run")) == expected[rank]
    assert _saved_positions(tmp_path) == {"callback": 4 * B, "loop": 4 * B}  # the end of step 4's global batch
    run("lightning_late_script.py", *args, "resume", str(devices), "stream", place, nproc=0, env=env)
    for rank in range(devices):
        assert as_steps(trained(tmp_path, rank, "resume")) == expected[rank][4:]


def test_a_late_callback_over_a_plain_loader_refuses_to_resume_at_position_0(mds_corpus, tmp_path):
    args = (mds_corpus, str(tmp_path))
    run("lightning_late_script.py", *args, "run", "1", "plain", "append", nproc=0)
    proc = run("lightning_late_script.py", *args, "resume", "1", "plain", "append", nproc=0, expect_fail=True)
    assert "StateError: fit(ckpt_path=" in proc.stderr
    assert "Return stream.dataloader() from train_dataloader()" in proc.stderr
    assert trained(tmp_path, 0, "resume") == []
