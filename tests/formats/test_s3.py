"""The same corpus on a real S3 server (moto_server): prepare uploads, reads by range or shard."""

from __future__ import annotations

import numpy as np
import pytest

from climbstream.errors import StorageError
from climbstream.formats.manifest import MANIFEST_NAME, Manifest
from climbstream.prepare.prepare import prepare
from climbstream.read.reader import open_reader
from tests.formats.conftest import HELDOUT_FRAC, SEQ_LEN, SHARD_SAMPLES, read_all


@pytest.mark.parametrize("fmt", ["mds", "wds"])
def test_prepare_to_s3_then_range_and_shard_reads_match_the_local_corpus(fmt, s3_bucket, folder_corpus, tmp_path):
    options = s3_bucket.options()
    url = f"{s3_bucket.url}/corpora/{fmt}"
    prepare(folder_corpus, url, fmt=fmt, seq_len=SEQ_LEN, heldout_frac=HELDOUT_FRAC,
            shard_samples=SHARD_SAMPLES, storage=options)
    local = prepare(folder_corpus, str(tmp_path / "local"), fmt=fmt, seq_len=SEQ_LEN,
                    heldout_frac=HELDOUT_FRAC, shard_samples=SHARD_SAMPLES)
    remote = Manifest.load(url, storage=options)
    assert remote.root == url and remote.fingerprint() == local.fingerprint()
    assert remote.shards("bb")[0].url == f"{url}/{remote.shards('bb')[0].path}"

    ranged = open_reader(remote, storage=options, read_mode="range")
    whole = open_reader(remote, storage=options, read_mode="shard", cache_dir=str(tmp_path / "cache"),
                        prefetch_depth=1)
    assert (ranged.mode, whole.mode) == ("range", "shard")
    expected = read_all(open_reader(local), local, "bb", "train")
    whole.hint([("bb", "train", s) for s in range(len(remote.shards("bb")))])
    np.testing.assert_array_equal(read_all(ranged, remote, "bb", "train"), expected)
    np.testing.assert_array_equal(read_all(whole, remote, "bb", "train"), expected)
    np.testing.assert_array_equal(ranged.read("aa", "heldout", 0, 1), open_reader(local).read("aa", "heldout", 0, 1))

    # Range reads fetch just the samples asked for (plus, once per shard, the MDS header and
    # the head of the sample sums, 32 bytes and 4 per block of 64 samples, then the blocks
    # of sums that verify the samples read: here the shard's one block, 4 bytes per sample).
    shard = remote.shards("bb")[1]
    few = open_reader(remote, storage=options, read_mode="range")
    for i in (0, 5, 9, 5):
        few.read("bb", "train", 1, i)
    # MDS: two column sizes, ndarray ndim byte + uint8 shape, tokens, "bb"
    sample_bytes = 8 + 1 + 1 + SEQ_LEN * 2 + 2 if fmt == "mds" else SEQ_LEN * 2
    header = shard.extra["header_bytes"] if fmt == "mds" else 0
    sums = shard.extra["sample_sums"]["bytes"]
    assert shard.samples <= 64 and shard.extra["sample_sums"]["head_bytes"] == 32 + 4
    assert sums == 32 + 4 + 4 * shard.samples  # head and the one block: what a range reader fetches of it
    assert few.metrics()["bytes_downloaded"] == sums + header + 4 * sample_bytes < shard.bytes / 3
    assert whole.metrics()["bytes_downloaded"] == sum(s.bytes for s in remote.shards("bb"))
    whole.close()


def test_auto_mode_reads_ranges_when_the_cache_cannot_hold_every_language(s3_bucket, folder_corpus, tmp_path):
    options = s3_bucket.options()
    manifest = prepare(folder_corpus, f"{s3_bucket.url}/c", fmt="mds", seq_len=SEQ_LEN,
                       heldout_frac=HELDOUT_FRAC, shard_samples=SHARD_SAMPLES, storage=options)
    largest = max(s.bytes for lang in manifest.languages for s in manifest.shards(lang))
    fits = 3 * (2 * 2 + 1) * largest  # K x (2 x depth + 1) shards
    cache = str(tmp_path / "cache")
    assert open_reader(manifest, storage=options).mode == "range"  # no cache dir
    assert open_reader(manifest, cache_dir=cache, cache_limit_bytes=fits, storage=options).mode == "shard"
    assert open_reader(manifest, cache_dir=cache, cache_limit_bytes=fits - 1, storage=options).mode == "range"


def test_a_changed_object_on_s3_fails_the_shard_download_naming_the_url(s3_bucket, folder_corpus, tmp_path):
    options = s3_bucket.options()
    url = f"{s3_bucket.url}/c"
    manifest = prepare(folder_corpus, url, fmt="wds", seq_len=SEQ_LEN, heldout_frac=HELDOUT_FRAC,
                       shard_samples=SHARD_SAMPLES, storage=options)
    shard = manifest.shards("cc")[0]
    client = s3_bucket.client()
    body = bytearray(client.get_object(Bucket=s3_bucket.name, Key=f"c/{shard.path}")["Body"].read())
    body[-2000] ^= 0xFF
    client.put_object(Bucket=s3_bucket.name, Key=f"c/{shard.path}", Body=bytes(body))
    reader = open_reader(Manifest.load(url, storage=options), storage=options, read_mode="shard",
                         cache_dir=str(tmp_path / "cache"))
    with pytest.raises(StorageError, match=rf"{shard.url}: sha256 mismatch"):
        reader.read("cc", "train", 0, 0)
    reader.close()


def test_manifest_command_builds_the_manifest_of_mds_shards_on_s3(s3_bucket, tmp_path):
    from streaming import MDSWriter

    from climbstream.prepare.scan import build_manifest

    arrays = [np.full(16, i, np.uint16) for i in range(30)]
    local = tmp_path / "fr" / "train"
    with MDSWriter(out=str(local), columns={"tokens": "ndarray:uint16"}, size_limit=300) as writer:
        for a in arrays:
            writer.write({"tokens": a})
    client = s3_bucket.client()
    for path in sorted(local.iterdir()):
        client.upload_file(str(path), s3_bucket.name, f"x/fr/train/{path.name}")
    options = s3_bucket.options()
    build_manifest(f"{s3_bucket.url}/x", "mds", storage=options)
    assert client.head_object(Bucket=s3_bucket.name, Key=f"x/{MANIFEST_NAME}")["ContentLength"] > 0
    manifest = Manifest.load(f"{s3_bucket.url}/x", storage=options)
    got = read_all(open_reader(manifest, storage=options, read_mode="range"), manifest, "fr", "train")
    np.testing.assert_array_equal(got, np.concatenate(arrays).astype(np.int64))


@pytest.mark.parametrize("whole_read_bytes", [None, 0], ids=["read-whole", "mapped"])
def test_holding_acquires_each_cached_shard_once_and_releases_all_at_the_end(
        s3_bucket, folder_corpus, tmp_path, monkeypatch, whole_read_bytes):
    from climbstream.read.byte_sources import HeldSource
    from climbstream.storage.cache import ShardCache

    if whole_read_bytes is not None:  # map every shard, as the large ones are
        monkeypatch.setattr(HeldSource, "WHOLE_READ_BYTES", whole_read_bytes)

    options = s3_bucket.options()
    manifest = prepare(folder_corpus, f"{s3_bucket.url}/h", fmt="mds", seq_len=SEQ_LEN,
                       heldout_frac=HELDOUT_FRAC, shard_samples=SHARD_SAMPLES, storage=options)
    local = prepare(folder_corpus, str(tmp_path / "local"), fmt="mds", seq_len=SEQ_LEN,
                    heldout_frac=HELDOUT_FRAC, shard_samples=SHARD_SAMPLES)
    cache_dir = str(tmp_path / "cache")
    reader = open_reader(manifest, storage=options, read_mode="shard", cache_dir=cache_dir, prefetch_depth=0)
    shards = manifest.shards("bb")
    wanted = [(s, i) for i in range(3) for s in range(len(shards))]  # interleaved, as a batch reads
    with reader.holding():
        got = [reader.read("bb", "train", s, i) for s, i in wanted]
        held = reader.metrics()
        cache = ShardCache(cache_dir)
        busy = [cache.in_use(s.url) for s in shards]
    assert busy == [True] * len(shards)  # in use (shared lock) for the whole block
    assert held["cache_misses"] + held["cache_hits"] == len(shards)  # one acquire per shard, not per sample
    assert not any(cache.in_use(s.url) for s in shards)  # all released at the end of the block
    expected = [open_reader(local).read("bb", "train", s, i) for s, i in wanted]
    np.testing.assert_array_equal(np.stack(got), np.stack(expected))
    reader.close()
