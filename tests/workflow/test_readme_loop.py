"""The README's training loop runs verbatim on the corpus `climbstream prepare --from-gettext` makes,
and its checkpoint resumes the stream where the loop stopped."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import torch

from climbstream import ClimbStream

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def readme_loop() -> str:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text[text.index("## Drop it into a training loop"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_loop_runs_as_written_and_its_checkpoint_resumes_the_stream(tmp_path):
    cli = [sys.executable, "-m", "climbstream"]
    subprocess.run([*cli, "prepare", "--from-gettext", "--max-bytes-per-lang", "60000", "--out", "corpus/"],
                   cwd=tmp_path, check=True, capture_output=True, timeout=300)
    loop = readme_loop()
    assert "mark_consumed" not in loop
    script = tmp_path / "loop.py"
    script.write_text("if __name__ == '__main__':\n" + "".join(f"    {line}\n" for line in loop.splitlines()))
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = torch.load(tmp_path / "ckpt.pt")["data"]  # weights_only: the state is plain data
    assert data["position"] == 301 * 32  # saved after step 300, the 301st batch
    # the resume line of the README, then the next batch is the one after the checkpoint
    os.chdir(tmp_path)
    try:
        stream = ClimbStream("corpus/", weights={"method": "temperature", "alpha": 0.3}, global_batch=32, seed=0,
                             rank=0, world_size=1)
        loader = stream.dataloader(num_workers=0)
        loader.load_state_dict(torch.load("ckpt.pt")["data"])
        assert next(iter(loader))["position"].tolist() == list(range(301 * 32, 302 * 32))
    finally:
        os.chdir(ROOT)
