"""choose_read_mode is a function of the manifest and the settings: no store is touched."""

from __future__ import annotations

import logging

import pytest

from climbstream.errors import ConfigError
from climbstream.formats.manifest import Manifest
from climbstream.read.read_modes import choose_read_mode, largest_stored_bytes


@pytest.fixture(scope="module")
def remote(prepared):
    """The prepared corpus's manifest as if it lived in a bucket nobody can reach."""
    local = prepared[1]
    return Manifest.from_dict(local.data, "s3://no-such-bucket/corpus", "s3://no-such-bucket/corpus/m.json")


def test_modes_follow_from_the_manifest_and_settings(prepared, remote, caplog):
    local = prepared[1]
    largest = largest_stored_bytes(remote)
    in_use = 3 * len(remote.languages) * 5
    assert choose_read_mode(local, "auto", "auto", None, None, in_use) == "local"
    assert choose_read_mode(remote, "auto", "auto", "/cache", None, in_use) == "shard"
    assert choose_read_mode(remote, "auto", "auto", "/cache", largest * in_use, in_use) == "shard"
    with caplog.at_level(logging.INFO):
        assert choose_read_mode(remote, "auto", "size", "/cache", largest * in_use - 1, in_use) == "range"
    assert "exceed the cache limit" in caplog.text
    assert choose_read_mode(remote, "auto", "size", None, None, in_use) == "range"
    assert choose_read_mode(remote, "range", "size", "/cache", None, in_use) == "range"
    with pytest.raises(ConfigError, match="verify='sha256' cannot check byte-range reads"):
        choose_read_mode(remote, "auto", "sha256", None, None, in_use)
    with pytest.raises(ConfigError, match="read_mode='shard' needs a cache_dir"):
        choose_read_mode(remote, "shard", "auto", None, None, in_use)
    with pytest.raises(ConfigError, match="read_mode must be one of"):
        choose_read_mode(remote, "fast", "auto", None, None, in_use)


def test_compressed_shards_count_their_raw_size_and_need_the_cache(remote):
    data = dict(remote.data)
    lang = remote.languages[0]
    entry = dict(data["languages"][lang])
    entry["train"] = [dict(s, compression="zstd", raw_bytes=s["bytes"] * 10) for s in entry["train"]]
    data["languages"] = {**data["languages"], lang: entry}
    packed = Manifest.from_dict(data, "s3://no-such-bucket/corpus")
    assert largest_stored_bytes(packed) == 10 * max(s["bytes"] for s in remote.data["languages"][lang]["train"])
    assert choose_read_mode(packed, "auto", "auto", "/cache", None, 1) == "shard"
    with pytest.raises(ConfigError, match=r"shards are compressed \(zstd\)"):
        choose_read_mode(packed, "auto", "auto", None, None, 1)
