"""examples/sweep_ray.py on a local Ray instance: N sweep parts as Ray tasks, then the merge."""

from __future__ import annotations

import os
import sys

import pytest

from climbstream.cli import main
from climbstream.train.sweep import SweepConfig, run_sweep
from tests.workflow.examples import ROOT, load_example

ray = pytest.importorskip("ray")


def test_sweep_parts_run_as_ray_tasks_merge_into_the_single_machine_table(mds_corpus, tmp_path, monkeypatch):
    design = str(tmp_path / "design.yaml")
    assert main(["design", "--langs", "aa,bb,cc,dd", "--runs", "7", "--method", "dirichlet", "--seed", "2",
                 "--out", design]) == 0
    script = tmp_path / "trainer.py"
    script.write_text(
        "import json, sys\n"
        "mix, run = json.load(open(sys.argv[1])), int(sys.argv[3])\n"
        "json.dump({'tokens': [64, 128], 'loss': {n: [3.0 - r + run / 100, 2.5 - r] for n, r in mix.items()}},"
        " open(sys.argv[2], 'w'))\n"
    )
    trainer = f"{sys.executable} {script} {{mixture}} {{out}} {{run}}"
    monkeypatch.setenv("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "ray" / "runs.csv"
    assert load_example("sweep_ray").run(design, mds_corpus, str(out), 3, ["--trainer", trainer]) == 0
    assert len(list(out.parent.glob("runs.part-*-of-00003.csv"))) == 3
    single = tmp_path / "one.csv"
    run_sweep(SweepConfig(design=design, corpus=mds_corpus, runs_out=str(single), trainer=trainer))
    assert out.read_bytes() == single.read_bytes()
