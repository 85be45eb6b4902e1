"""examples/train_tiny_lm.py runs as written, re-solves, and resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_example(out, steps):
    proc = subprocess.run([sys.executable, os.path.join(REPO, "examples", "train_tiny_lm.py"), "--out", str(out),
                           "--steps", str(steps), "--resolve-every", "16", "--global-batch", "8",
                           "--num-workers", "0"],
                          capture_output=True, text=True, timeout=600, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": REPO, "NUMBA_THREADING_LAYER": "workqueue"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_written_out_loop_trains_resolves_and_resumes(tmp_path):
    first = run_example(tmp_path, 32)
    assert "step 16: keep" in first and f"done: 32 steps, position {32 * 8}" in first
    second = run_example(tmp_path, 80)
    assert "resumed at step 32, position 256" in second and "done: 80 steps, position 640" in second
    verdicts = [line for line in second.splitlines() if line.startswith("step ")]
    assert [v.split(":")[0] for v in verdicts] == ["step 48", "step 64"]
    records = [json.loads(line) for line in (tmp_path / "losses.jsonl").read_text().splitlines()]
    language = [r for r in records if r.get("kind") == "language"]
    steps = [r["step"] for r in language if r["lang"] == language[0]["lang"]]
    assert steps == sorted(set(steps)) and steps[-1] == 80  # nothing logged twice across the resume
    last = [r for r in language if r["step"] == 80]
    assert sum(r["tokens_total"] for r in last) == 80 * 8 * 127  # every step counted once (seq_len 128)
    assert len([r for r in records if r.get("kind") == "heldout"]) == 10 * 8  # every 8 steps, 8 languages
