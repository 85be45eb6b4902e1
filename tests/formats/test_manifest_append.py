"""`climbstream manifest --append`: the grown manifest keeps the old entries and adds the new shards after them."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from climbstream.cli import main
from climbstream.errors import ManifestError
from climbstream.formats.manifest import MANIFEST_NAME, to_json
from climbstream.prepare.append import append_manifest


def truncated_copy(src: str, dest: str, keep: dict[str, int]) -> dict:
    """A copy of the corpus `src` whose manifest lists only the first keep[lang] train shards (0: no language)."""
    shutil.copytree(src, dest)
    path = os.path.join(dest, MANIFEST_NAME)
    with open(path) as f:
        full = json.load(f)
    data = json.loads(json.dumps(full))
    data.pop("content_sha256")
    for lang, n in keep.items():
        if n == 0:
            del data["languages"][lang]
            continue
        entry = data["languages"][lang]
        entry["train"] = entry["train"][:n]
        entry["samples"] = sum(s["samples"] for s in entry["train"])
        entry["tokens"] = entry["samples"] * data["seq_len"]
    with open(path, "w") as f:
        f.write(to_json(data))
    return full


def test_append_lists_old_shards_first_as_they_were_then_the_new_ones(mds_corpus, tmp_path):
    root = str(tmp_path / "corpus")
    full = truncated_copy(mds_corpus, root, {"aa": 20, "bb": 10, "dd": 0})
    with open(os.path.join(root, MANIFEST_NAME)) as f:
        data = json.load(f)
    data.pop("content_sha256")
    data["languages"]["aa"]["train"][0]["kept"] = "as listed"  # an old entry is not read or rewritten
    with open(os.path.join(root, MANIFEST_NAME), "w") as f:
        f.write(to_json(data))
    assert main(["manifest", root, "--append", "--quiet"]) == 0
    with open(os.path.join(root, MANIFEST_NAME)) as f:
        grown = json.load(f)
    assert grown["languages"]["aa"]["train"][0].pop("kept") == "as listed"
    for lang in ("aa", "bb", "cc", "dd"):  # aa, bb grown; cc unchanged; dd added
        assert grown["languages"][lang]["train"] == full["languages"][lang]["train"]
        assert grown["languages"][lang]["samples"] == full["languages"][lang]["samples"]
    assert grown["tokenizer"] == full["tokenizer"]


def test_append_refuses_a_language_that_lost_some_shards_and_retires_one_that_lost_all(mds_corpus, tmp_path,
                                                                                      capsys):
    root = str(tmp_path / "corpus")
    shutil.copytree(mds_corpus, root)
    os.remove(os.path.join(root, "bb", "train", "shard.00003.mds"))
    with pytest.raises(ManifestError, match=r"languages\.bb\.train: 1 of its 19 shards are gone "
                                            r"\(bb/train/shard\.00003\.mds\)"):
        append_manifest(root)
    assert main(["manifest", root, "--append", "--quiet"]) != 0
    assert "ManifestError" in capsys.readouterr().err
    shutil.rmtree(os.path.join(root, "bb"))
    assert main(["manifest", root, "--append", "--quiet"]) == 0
    with open(os.path.join(root, MANIFEST_NAME)) as f:
        grown = json.load(f)
    assert grown["languages"]["bb"]["train"] == [] and grown["languages"]["bb"]["samples"] == 0
