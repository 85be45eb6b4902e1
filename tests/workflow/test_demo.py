"""The README's main command: the demo runs end to end; a rerun reuses the finished run."""

from __future__ import annotations

import json
import os

import pytest
import torch

from climbstream.train.demo import run_demo
from climbstream.errors import StateError


def _loss_lines(out: str) -> list[dict]:
    """The loss log without the loader's timing lines (those differ from run to run)."""
    with open(os.path.join(out, "train", "losses.jsonl")) as f:
        records = [json.loads(line) for line in f]
    return [r for r in records if r.get("kind") != "loader"]


def test_demo_runs_end_to_end_and_a_rerun_reuses_the_finished_run(tmp_path):
    out = str(tmp_path / "demo")
    first = run_demo(out, steps=24, resolve_every=12, num_workers=0, progress=False)
    assert first["steps"] == 24 and len(first["stages"]) >= 1
    assert sorted(os.path.basename(p) for p in first["report_files"]) == [
        "loss_by_language.png", "mixture.png", "tokens_by_language.png"]
    losses = _loss_lines(out)
    again = run_demo(out, steps=24, resolve_every=12, num_workers=0, progress=False)
    assert _loss_lines(out) == losses  # resumed at its end: nothing trained or logged twice
    for key in ("tokens_per_language", "final_heldout_loss", "stages", "report_text"):
        assert again[key] == first[key]

    # A checkpoint whose re-solving state an earlier version wrote fails clearly, naming it.
    checkpoint = os.path.join(out, "train", "checkpoint.pt")
    state = torch.load(checkpoint, weights_only=True)
    del state["reweighter"]["history"]
    torch.save(state, checkpoint)
    with pytest.raises(StateError, match=r"checkpoint\.pt: reweighter: the re-solving state lacks \['history'\].*--fresh"):
        run_demo(out, steps=24, resolve_every=12, num_workers=0, progress=False)
