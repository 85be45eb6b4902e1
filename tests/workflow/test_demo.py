"""The README's main command: the demo runs end to end, and a rerun starts over identically."""

from __future__ import annotations

import json
import os

from climbstream.demo import run_demo


def _loss_lines(out: str) -> list[dict]:
    """The loss log without the loader's timing lines (those differ from run to run)."""
    with open(os.path.join(out, "train", "losses.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if r.get("kind") != "loader"]


def test_demo_runs_end_to_end_and_a_rerun_trains_again_from_step_zero(tmp_path):
    out = str(tmp_path / "demo")
    first = run_demo(out, steps=24, resolve_every=12, num_workers=0, progress=False)
    assert first["steps"] == 24 and len(first["stages"]) >= 1
    assert sorted(os.path.basename(p) for p in first["report_files"]) == [
        "loss_by_language.png", "mixture.png", "tokens_by_language.png"]
    losses = _loss_lines(out)
    assert losses and losses[0]["step"] <= 12
    again = run_demo(out, steps=24, resolve_every=12, num_workers=0, progress=False)
    assert _loss_lines(out) == losses  # trained again from step 0, not resumed or appended
    for key in ("tokens_per_language", "final_heldout_loss", "stages"):
        assert again[key] == first[key]
