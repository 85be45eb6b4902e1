"""Changed, truncated or corrupted shards give errors naming the shard and what to do."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from climbstream.errors import ManifestError
from climbstream.formats.mds import ShardFormatError
from climbstream.read.reader import open_reader


def _flip_byte(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_changed_shard_gives_sha256_mismatch_naming_the_shard(copy_of):
    fmt, manifest = copy_of
    shard = manifest.shards("aa")[1]
    _flip_byte(shard.url, shard.bytes - 600)  # inside a sample's data, size unchanged
    reader = open_reader(manifest)
    reader.read("aa", "train", 0, 0)  # other shards still read
    with pytest.raises(ManifestError, match=rf"languages\.aa\.train\[1\] \({shard.url}\): sha256 mismatch "
                                            r"\(expected [0-9a-f]{12}\.\.\., got [0-9a-f]{12}\.\.\.\).*"
                                            r"climbstream manifest"):
        reader.read("aa", "train", 1, 0)


def test_truncated_shard_is_named_with_both_sizes(copy_of):
    fmt, manifest = copy_of
    shard = manifest.shards("bb")[0]
    os.truncate(shard.url, shard.bytes - 100)
    with pytest.raises(ShardFormatError, match=rf"languages\.bb\.train\[0\] \({shard.url}\): shard has "
                                               rf"{shard.bytes - 100} bytes but the manifest lists {shard.bytes}"):
        open_reader(manifest).read("bb", "train", 0, 0)


def test_missing_shard_file_is_named(copy_of):
    _, manifest = copy_of
    shard = manifest.shards("cc")[0]
    os.remove(shard.url)
    with pytest.raises(ManifestError, match=r"languages\.cc\.train\[0\].*shard file is missing"):
        open_reader(manifest).read("cc", "train", 0, 0)


def test_corrupted_mds_header_is_caught_even_without_hashing(copy_of):
    fmt, manifest = copy_of
    if fmt != "mds":
        pytest.skip("MDS header")
    shard = manifest.shards("aa")[0]
    with open(shard.url, "r+b") as f:
        f.write(np.uint32(shard.samples + 5).tobytes())
    with pytest.raises(ShardFormatError, match=rf"languages\.aa\.train\[0\].*header says {shard.samples + 5} "
                                               rf"samples but the manifest lists {shard.samples}"):
        open_reader(manifest, verify="size").read("aa", "train", 0, 3)


def test_out_of_range_shard_or_sample_is_named(prepared):
    _, manifest = prepared
    reader = open_reader(manifest)
    n = len(manifest.shards("aa"))
    with pytest.raises(ManifestError, match=rf"languages\.aa\.train has {n} shards, no shard {n}"):
        reader.read("aa", "train", n, 0)
    with pytest.raises(ManifestError, match=r"sample 40 out of range \(shard has 40\)"):
        reader.read("aa", "train", 0, 40)


def test_a_shard_symlinked_outside_the_corpus_is_refused(copy_of, tmp_path):
    fmt, manifest = copy_of
    shard = manifest.shards("aa", "train")[0]
    outside = tmp_path / "elsewhere.bin"
    shutil.copyfile(shard.url, outside)  # same bytes: only the link gives it away
    os.remove(shard.url)
    os.symlink(outside, shard.url)
    with pytest.raises(ManifestError, match=rf"{shard.path}.*resolves to {outside}, outside the corpus folder"):
        open_reader(manifest).read("aa", "train", 0, 0)
    inside = os.path.join(manifest.root, "aa", "copy.bin")  # a link within the corpus is fine
    shutil.move(str(outside), inside)
    os.remove(shard.url)
    os.symlink(inside, shard.url)
    assert open_reader(manifest).read("aa", "train", 0, 0).shape == (manifest.seq_len,)


def test_the_default_verify_hashes_local_shards(copy_of):
    fmt, manifest = copy_of
    shard = manifest.shards("aa", "train")[0]
    _flip_byte(shard.url, shard.bytes - 3)  # in the last sample's tokens: headers still parse
    with pytest.raises(ManifestError, match="sha256 mismatch"):
        open_reader(manifest).read("aa", "train", 0, 0)
