"""Local shards are opened, checked and hashed once per process, not once per sample."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import climbstream.read.reader as reader_module
from climbstream.errors import ManifestError
from climbstream.read.reader import max_open_files, open_reader


def test_descriptors_cover_every_languages_window_within_the_process_limit(monkeypatch):
    assert max_open_files(3) == 128
    assert max_open_files(100) >= 100 * 4  # K languages x a window of 4 shards each, all read per batch
    monkeypatch.setattr(reader_module, "_descriptor_limit", lambda: 1024)
    assert max_open_files(1000) == 512  # half the soft limit stays free for the rest of the process
    monkeypatch.setattr(reader_module, "_descriptor_limit", lambda: 20)
    assert max_open_files(1000) == 16


def test_descriptors_follow_the_streams_window(prepared, monkeypatch):
    """K x (window + 1): each language's window of shards and one more as it moves to the next."""
    from climbstream import ClimbStream

    monkeypatch.setattr(reader_module, "_descriptor_limit", lambda: 1 << 16)
    assert max_open_files(100, 8) == 900 and max_open_files(100, 2) == 300 and max_open_files(10, 2) == 128
    manifest = prepared[1]
    stream = ClimbStream(manifest.root, {n: 1.0 for n in manifest.languages}, global_batch=8, rank=0, world_size=1,
                         window_shards=50)
    reader = stream.readers.get(0).readers[0]
    assert reader.window_shards == 50 and reader.open_file_limit == len(manifest.languages) * 51 > 128
    stream.readers.close()


def test_a_reopened_shard_is_not_checked_again(copy_of, monkeypatch):
    _, manifest = copy_of
    checks, opens = [], []
    real_check, real_open = reader_module.inside_root, os.open
    monkeypatch.setattr(reader_module, "inside_root", lambda *a: checks.append(a[0]) or real_check(*a))
    monkeypatch.setattr(reader_module.os, "open", lambda p, *a: opens.append(p) or real_open(p, *a))
    reader = open_reader(manifest)
    reader.read("aa", "train", 0, 0)
    reader.open_file_limit = 1  # every switch between the two shards reopens one
    expected = [reader.read("aa", "train", s, 1).copy() for s in (0, 1)]
    for _ in range(5):
        for s in (0, 1):
            np.testing.assert_array_equal(reader.read("aa", "train", s, 1), expected[s])
    assert len(opens) == 12  # the descriptor was dropped and reopened ...
    assert sorted(set(checks)) == sorted(checks) and len(checks) == 2  # ... but each shard checked once
    reader.close()


def test_a_shard_swapped_for_an_outside_link_after_its_check_is_refused_in_a_new_process(copy_of, tmp_path):
    """The check is per process: a fresh reader (or worker) checks the link again."""
    _, manifest = copy_of
    shard = manifest.shards("aa", "train")[0]
    assert open_reader(manifest).read("aa", "train", 0, 0).shape == (manifest.seq_len,)
    outside = tmp_path / "elsewhere.bin"
    shutil.copyfile(shard.url, outside)
    os.remove(shard.url)
    os.symlink(outside, shard.url)
    with pytest.raises(ManifestError, match="outside the corpus folder"):
        open_reader(manifest).read("aa", "train", 0, 0)


def test_parsed_mds_headers_are_bounded_and_reparsed_when_dropped(prepared, monkeypatch):
    """A reader keeps the newest MAX_HEADERS parsed headers (a reader of many shards over weeks
    must not grow without bound); a dropped one is parsed again and reads the same sample."""
    import climbstream.read.mds_samples as mds_samples

    fmt, manifest = prepared
    if fmt != "mds":
        pytest.skip("tar shards have no header")
    name = max(manifest.languages, key=lambda n: len(manifest.shards(n, "train")))
    shards = len(manifest.shards(name, "train"))
    assert shards >= 3
    with open_reader(manifest) as reader:
        expected = [reader.read(name, "train", s, 0) for s in range(shards)]
    monkeypatch.setattr(mds_samples, "MAX_HEADERS", 2)
    with open_reader(manifest) as reader:
        got = [reader.read(name, "train", s, 0) for s in range(shards)]
        assert reader.samples.cached_urls() == [manifest.shards(name, "train")[s].url for s in (shards - 2, shards - 1)]
        again = reader.read(name, "train", 0, 0)
        assert manifest.shards(name, "train")[0].url in reader.samples.cached_urls() and len(reader.samples.cached_urls()) == 2
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again, expected[0])
