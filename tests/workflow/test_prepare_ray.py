"""examples/prepare_ray.py on a local Ray instance: N parts as Ray tasks, then the merge."""

from __future__ import annotations

import hashlib
import os

import pytest

from climbstream.prepare.corpus import FolderCorpus
from climbstream.prepare.prepare import prepare
from tests.formats.conftest import write_parallel_corpus
from tests.workflow.examples import ROOT, load_example

ray = pytest.importorskip("ray")


def _digests(root: str) -> dict[str, str]:
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            if not f.startswith("climbstream-manifest.part-"):
                with open(os.path.join(d, f), "rb") as fh:
                    out[os.path.relpath(os.path.join(d, f), root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def test_parts_run_as_ray_tasks_merge_into_the_single_process_corpus(tmp_path, monkeypatch):
    raw = write_parallel_corpus(str(tmp_path / "raw"), {"aa": 80, "bb": 40, "cc": 20, "dd": 10})
    monkeypatch.setenv("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = str(tmp_path / "out")
    assert load_example("prepare_ray").run(raw, out, 3, ["--seq-len", "32"]) == 0
    prepare(FolderCorpus(raw), str(tmp_path / "one"), seq_len=32)
    assert _digests(out) == _digests(str(tmp_path / "one"))
