"""Parallel prepare: N worker processes, and N parts merged, write the bytes one process writes."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from climbstream.cli import main
from climbstream.errors import ConfigError, ManifestError
from climbstream.prepare.corpus import FolderCorpus
from climbstream.formats.manifest import MANIFEST_NAME, Manifest
from climbstream.prepare.parts import assign_parts, merge_parts, parse_part, part_manifest_name
from climbstream.prepare.prepare import prepare
from tests.formats.conftest import write_parallel_corpus

SIZES = {"aa": 300, "bb": 120, "cc": 60, "dd": 40, "ee": 25}


def tree(root: str) -> dict[str, str]:
    """sha256 of every file under root, by relative path."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            path = os.path.join(d, f)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return FolderCorpus(write_parallel_corpus(str(tmp_path_factory.mktemp("raw")), SIZES))


@pytest.mark.parametrize("fmt", ["mds", "wds"])
def test_two_and_three_workers_write_the_same_bytes_as_one(corpus, tmp_path, fmt):
    trees = {}
    for workers in (1, 2, 3):
        out = str(tmp_path / f"w{workers}")
        manifest = prepare(corpus, out, fmt=fmt, seq_len=32, shard_samples=16, workers=workers)
        assert manifest.languages == sorted(SIZES)
        trees[workers] = tree(out)
    assert len(trees[1]) > 2 * len(SIZES)  # shards of every language, both splits
    assert trees[2] == trees[1]
    assert trees[3] == trees[1]


def test_parts_merged_give_the_manifest_and_shards_of_one_run(corpus, tmp_path):
    whole = str(tmp_path / "whole")
    prepare(corpus, whole, seq_len=32, shard_samples=16)
    parted = str(tmp_path / "parted")
    written = []
    for index in (2, 1, 3):  # any order, as a scheduler runs them
        part = prepare(corpus, parted, seq_len=32, shard_samples=16, part=f"{index}/3")
        written += part.languages
        assert os.path.exists(os.path.join(parted, part_manifest_name(index, 3)))
    assert sorted(written) == sorted(SIZES)  # every language in exactly one part
    assert not os.path.exists(os.path.join(parted, MANIFEST_NAME))  # not a corpus until merged
    merged = merge_parts(parted)
    assert merged.languages == sorted(SIZES)
    with open(os.path.join(whole, MANIFEST_NAME), "rb") as a, open(os.path.join(parted, MANIFEST_NAME), "rb") as b:
        assert a.read() == b.read()
    def shards(root):
        return {k: v for k, v in tree(root).items() if not k.startswith("climbstream-manifest")}

    assert shards(parted) == shards(whole)


def test_parts_balance_input_bytes_and_do_not_depend_on_order():
    sizes = {"en": 100, "fr": 60, "de": 50, "sw": 5, "yo": 4, "zu": 3}
    parts = assign_parts(sizes, 2)
    assert parts == [["en", "sw", "yo", "zu"], ["de", "fr"]]  # 112 and 110 bytes
    assert assign_parts(dict(reversed(list(sizes.items()))), 2) == parts
    assert assign_parts(sizes, 8)[6:] == [[], []]  # more parts than languages: some are empty


def test_merge_names_missing_parts_and_parts_prepared_differently(corpus, tmp_path):
    out = str(tmp_path / "out")
    prepare(corpus, out, seq_len=32, shard_samples=16, part="1/3")
    with pytest.raises(ManifestError, match=r"parts \[2, 3\] of 3 are not written yet"):
        merge_parts(out)
    prepare(corpus, out, seq_len=64, shard_samples=16, part="2/3")
    prepare(corpus, out, seq_len=32, shard_samples=16, part="3/3")
    with pytest.raises(ManifestError, match=r"part 2 was prepared with other settings than part 1 \(.*seq_len"):
        merge_parts(out)
    prepare(corpus, out, seq_len=32, shard_samples=16, part="2/3", overwrite=True)
    prepare(corpus, out, seq_len=32, shard_samples=16, part="1/2", overwrite=True)
    with pytest.raises(ManifestError, match=r"different part counts \[2, 3\]"):
        merge_parts(out)
    os.remove(os.path.join(out, part_manifest_name(1, 2)))
    merge_parts(out)
    with pytest.raises(ConfigError, match="already exists; pass --overwrite"):
        merge_parts(out)
    assert Manifest.load(out).languages == sorted(SIZES)


def test_bad_part_and_worker_values_are_named_errors(corpus, tmp_path):
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(ConfigError, match="--part"):
            parse_part(bad)
    with pytest.raises(ConfigError, match="workers must be an integer"):
        prepare(corpus, str(tmp_path / "x"), workers=0)


def test_an_error_in_a_worker_process_is_the_one_line_error(tmp_path):
    raw = write_parallel_corpus(str(tmp_path / "raw"), {"aa": 50, "bb": 1})
    with pytest.raises(ConfigError, match="language 'bb': no training sample of 4096 tokens"):
        prepare(FolderCorpus(raw), str(tmp_path / "out"), seq_len=4096, workers=2)


def test_cli_runs_parts_as_separate_commands_and_merges_them(tmp_path, capsys):
    raw = write_parallel_corpus(str(tmp_path / "raw"), SIZES)
    out = str(tmp_path / "out")
    for index in (1, 2):
        assert main(["prepare", raw, "--out", out, "--seq-len", "32", "--part", f"{index}/2",
                     "--workers", "2", "--quiet"]) == 0
    assert main(["manifest", out, "--merge"]) == 0
    assert "5 languages" in capsys.readouterr().out
    with open(os.path.join(out, MANIFEST_NAME)) as f:
        assert "part" not in json.load(f)
    assert main(["manifest", out]) == 2
    assert "give --format mds or --format wds" in capsys.readouterr().err


def test_parts_prepared_to_s3_merge_there(corpus, tmp_path, s3_bucket):
    url = f"{s3_bucket.url}/parted"
    options = s3_bucket.options()
    for index in (1, 2):
        prepare(corpus, url, seq_len=32, shard_samples=16, part=f"{index}/2", storage=options)
    merged = merge_parts(url, options)
    whole = prepare(corpus, str(tmp_path / "whole"), seq_len=32, shard_samples=16)
    assert Manifest.load(url, storage=options).fingerprint() == whole.fingerprint() == merged.fingerprint()
