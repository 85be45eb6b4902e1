"""`climbstream inspect` shows what the DataLoader will produce."""

from __future__ import annotations

import json

import yaml

from climbstream import ClimbStream
from climbstream.cli import main

from tests.corpora import WEIGHTS
from .helpers import read_batches


def test_inspect_matches_what_the_dataloader_yields(tmp_path, mds_corpus, capsys):
    config = tmp_path / "climbstream.yaml"
    config.write_text(yaml.safe_dump({"sources": [mds_corpus], "weights": WEIGHTS, "global_batch": 8, "seed": 4}))
    assert main(["inspect", str(config), "--positions", "0:32", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    stream = ClimbStream.from_config(str(config), rank=0, world_size=1)
    produced = [key for b in read_batches(stream, 4, num_workers=2) for key in b["keys"]]
    assert [(r["lang"], r["shard"], r["index"]) for r in rows] == \
        [(stream.languages[lang], stream.shard_path(lang, shard), index) for lang, shard, index, _ in produced]


def test_inspect_rejects_a_bad_range(tmp_path, mds_corpus, capsys):
    config = tmp_path / "climbstream.yaml"
    config.write_text(yaml.safe_dump({"sources": [mds_corpus], "weights": WEIGHTS, "global_batch": 8}))
    assert main(["inspect", str(config), "--positions", "9-3"]) == 2
    assert "--positions: expected A:B" in capsys.readouterr().err


class _RunsCode:
    """Pickles to a call of os.system: what a crafted checkpoint does when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_unread(tmp_path, mds_corpus, capsys):
    import torch

    config = tmp_path / "climbstream.yaml"
    config.write_text(yaml.safe_dump({"sources": [mds_corpus], "weights": WEIGHTS, "global_batch": 8}))
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"data": _RunsCode(marker)}, evil)
    assert main(["inspect", str(config), "--positions", "0:8", "--state", str(evil)]) == 2
    assert not marker.exists()
    err = capsys.readouterr().err
    assert "evil.pt holds objects other than tensors and plain data, refused unread" in err
    assert len(err.strip().splitlines()) == 1
