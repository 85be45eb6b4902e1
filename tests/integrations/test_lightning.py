"""Lightning on 1 device and DDP (2 gloo processes): with ClimbCallback the steps are the stream and
fit(ckpt_path=) continues at the next position, whatever the loader; without it the stream is refused."""

from __future__ import annotations

import pytest

from tests.corpora import WEIGHTS
from tests.integrations.runner import as_steps, expected_steps, run, trained

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("devices,loader,workers", [(1, "stream", 0), (2, "stream", 2), (2, "plain", 0)])
def test_callback_makes_steps_and_resume_exact(mds_corpus, tmp_path, devices, loader, workers):
    env = {"WORKERS": str(workers)}
    args = (mds_corpus, str(tmp_path))
    run("lightning_script.py", *args, "run", str(devices), loader, nproc=0, env=env)
    expected = expected_steps(mds_corpus, WEIGHTS, 6, world=devices)
    for rank in range(devices):
        assert as_steps(trained(tmp_path, rank, "run")) == expected[rank]
    run("lightning_script.py", *args, "resume", str(devices), loader, nproc=0, env=env)
    for rank in range(devices):  # the checkpoint at step 3 holds the end of global batch 2, not 3
        assert as_steps(trained(tmp_path, rank, "resume")) == expected[rank][3:]


def test_without_the_callback_the_stream_is_refused_naming_it(mds_corpus, tmp_path):
    proc = run("lightning_script.py", mds_corpus, str(tmp_path), "run", "1", "stream", "nocallback", nproc=0,
               expect_fail=True)
    assert "ConfigError: Lightning fetches each batch one step before it trains on it" in proc.stderr
    assert "ClimbCallback(stream)" in proc.stderr
    assert "Please call `iter(combined_loader)` first" not in proc.stderr  # Lightning's teardown once replaced it
    last_error = [line for line in proc.stderr.splitlines() if "Error: " in line][-1]
    assert last_error.startswith("climbstream.errors.ConfigError: Lightning fetches each batch")
    assert trained(tmp_path, 0) == []
