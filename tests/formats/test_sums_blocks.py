"""Sample sums by block (sidecar version 2): a range reader fetches the sidecar's verified head
once, then only the blocks of sums its samples fall in, each checked against the head; a
corpus whose manifest lists version-1 sums is still read (its sums whole) and verified."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest

from climbstream.errors import ManifestError
from climbstream.formats import sample_sums
from climbstream.formats.manifest import Manifest
from climbstream.prepare.prepare import prepare
from climbstream.read.reader import open_reader
from climbstream.storage.retry import IntegrityError
from tests.formats.conftest import HELDOUT_FRAC, SEQ_LEN
from tests.s3_server import FlakyProxy

SHARD_SAMPLES = 150  # "aa" gets a shard of 150 samples: three blocks of sums


def _v1(sums: sample_sums.SampleSums) -> bytes:
    """A version-1 sidecar, in the layout written before blocks."""
    n = len(sums.samples)
    return (struct.pack("<8sIIIII", b"CLMBSUMS", 1, 1, n, sums.header_bytes, sums.header_sum)
            + np.asarray(sums.samples, "<u4").tobytes())


def test_version_2_round_trips_and_version_1_still_decodes():
    values = [(i * 2654435761) & 0xFFFFFFFF for i in range(130)]
    blob = sample_sums.encode(values, header_bytes=520, header_sum=7)
    head_bytes = 32 + 4 * 3  # ceil(130 / 64) = 3 blocks
    assert len(blob) == head_bytes + 4 * 130
    decoded = sample_sums.decode(blob, "x.sums", 130)
    assert decoded.samples.tolist() == values and (decoded.header_bytes, decoded.header_sum) == (520, 7)
    head = sample_sums.decode_head(blob[:head_bytes], "x.sums", 130)
    assert (head.block, head.head_bytes) == (sample_sums.BLOCK, head_bytes)
    assert [head.block_range(b) for b in range(3)] == [(44, 300), (300, 556), (556, 564)]
    for b in range(3):
        start, end = head.block_range(b)
        assert sample_sums.checksum(blob[start:end]) == head.table[b]
    entry = sample_sums.sidecar_entry("aa/s.mds", blob)
    assert entry == {"path": "aa/s.mds.sums", "bytes": len(blob), "sha256": hashlib.sha256(blob).hexdigest(),
                     "head_bytes": head_bytes, "head_sha256": hashlib.sha256(blob[:head_bytes]).hexdigest()}

    old = _v1(decoded)
    assert len(old) == 28 + 4 * 130
    assert sample_sums.decode(old, "x.sums", 130).samples.tolist() == values
    assert sample_sums.sidecar_entry("aa/s.mds", old).keys() == {"path", "bytes", "sha256"}
    with pytest.raises(ManifestError, match=r"x\.sums: a version-1 sample-sums file has no head"):
        sample_sums.decode_head(old, "x.sums", 130)

    damaged = bytearray(blob)
    damaged[head_bytes + 4 * 70] ^= 1  # a sum in block 1, the table left as it was
    with pytest.raises(ManifestError, match=r"x\.sums: block 1 of the sums \(bytes 300\.\.556\) fails its crc32"):
        sample_sums.decode(bytes(damaged), "x.sums", 130)


@pytest.fixture
def remote(s3_bucket, folder_corpus):
    """(manifest, bucket, shard) of the corpus prepared on S3, and a shard of several blocks."""
    url = f"{s3_bucket.url}/corpora/blocks"
    prepare(folder_corpus, url, fmt="mds", seq_len=SEQ_LEN, heldout_frac=HELDOUT_FRAC,
            shard_samples=SHARD_SAMPLES, storage=s3_bucket.options())
    manifest = Manifest.load(url, storage=s3_bucket.options())
    shard = manifest.shards("aa")[0]
    assert shard.samples > 2 * sample_sums.BLOCK
    return manifest, s3_bucket, shard


class _SumsProxy(FlakyProxy):
    """Counts GETs and damages, on demand, the first `damage` answers for a sums file's range
    starting at byte `start` (a block, or 0: the head)."""

    def __init__(self, upstream_url: str):
        super().__init__(upstream_url)
        self.gets: list[tuple[str, str]] = []
        self.start, self.damage = None, 0

    def _forward(self, handler) -> None:
        with self._lock:
            if handler.command == "GET":
                self.gets.append((handler.path, handler.headers.get("Range", "")))
                hit = (self.start is not None and handler.path.endswith(".sums")
                       and handler.headers.get("Range", "").startswith(f"bytes={self.start}-"))
                if hit and self.damage > 0:
                    self.damage -= 1
                    self.fault, self.fail_first = "corrupt", self.failed + 1
        super()._forward(handler)


def _reader(manifest, bucket, proxy, **retry):
    options = bucket.options(endpoint_url=proxy.url, retry_base_s=0.0, retry_max_s=0.0, **retry)
    return open_reader(manifest, storage=options, read_mode="range")


def test_a_range_read_of_one_sample_fetches_the_head_and_one_block_not_the_whole_sums(remote, s3_server):
    manifest, bucket, shard = remote
    entry = shard.extra["sample_sums"]
    header = shard.extra["header_bytes"]
    index = sample_sums.BLOCK + 3  # in block 1
    with _SumsProxy(s3_server.endpoint_url) as proxy:
        reader = _reader(manifest, bucket, proxy)
        got = reader.read("aa", "train", 0, index)
        sample = reader.metrics()["bytes_downloaded"] - entry["head_bytes"] - 4 * sample_sums.BLOCK - header
        assert 0 < sample <= SEQ_LEN * 2 + 16
        assert reader.metrics()["bytes_downloaded"] < entry["bytes"] + header + sample  # not the whole sums
        sums_gets = [rng for path, rng in proxy.gets if path.endswith(".sums")]
        block = (entry["head_bytes"] + 4 * sample_sums.BLOCK, entry["head_bytes"] + 8 * sample_sums.BLOCK)
        assert sums_gets == [f"bytes=0-{entry['head_bytes'] - 1}", f"bytes={block[0]}-{block[1] - 1}"]
        assert len(proxy.gets) == 4  # head, block, MDS header, sample
        before = reader.metrics()["bytes_downloaded"]
        reader.read("aa", "train", 0, index + 1)  # same block: only the sample
        assert reader.metrics()["bytes_downloaded"] - before == sample and len(proxy.gets) == 5
        reader.close()
    direct = open_reader(manifest, storage=bucket.options(), read_mode="range")
    np.testing.assert_array_equal(got, direct.read("aa", "train", 0, index))
    direct.close()


def test_a_corrupted_block_is_fetched_again_and_corrupted_every_time_is_an_error_naming_shard_and_block(
        remote, s3_server):
    manifest, bucket, shard = remote
    entry = shard.extra["sample_sums"]
    with _SumsProxy(s3_server.endpoint_url) as proxy:
        proxy.start, proxy.damage = entry["head_bytes"], 1  # block 0's first answer
        reader = _reader(manifest, bucket, proxy, max_retries=2)
        want = open_reader(manifest, storage=bucket.options(), read_mode="range").read("aa", "train", 0, 5)
        np.testing.assert_array_equal(reader.read("aa", "train", 0, 5), want)
        assert proxy.failed == 1
        assert sum(path.endswith(".sums") for path, _ in proxy.gets) == 3  # head, block 0 twice
        reader.close()

        proxy.start, proxy.damage = entry["head_bytes"], 10**6
        reader = _reader(manifest, bucket, proxy, max_retries=2)
        sums_url = f"{manifest.root}/{entry['path']}"
        with pytest.raises(IntegrityError, match=rf"languages\.aa\.train\[0\] \({shard.url}\): sample sums "
                                                 rf"{sums_url} block 0: checksum mismatch .*\(the same on all 3 "
                                                 r"attempts\)"):
            reader.read("aa", "train", 0, 5)
        reader.close()


def test_a_sums_head_that_fails_its_sha256_is_fetched_again_then_an_error_naming_the_sums_url(
        remote, s3_server):
    manifest, bucket, shard = remote
    entry = shard.extra["sample_sums"]
    sums_url = f"{manifest.root}/{entry['path']}"
    with _SumsProxy(s3_server.endpoint_url) as proxy:
        proxy.start, proxy.damage = 0, 1
        reader = _reader(manifest, bucket, proxy, max_retries=2)
        reader.read("aa", "train", 0, 0)
        assert proxy.failed == 1
        reader.close()
    # the sums file in the store no longer matches the manifest's head_sha256
    client, key = bucket.client(), sums_url[len(bucket.url) + 1:]
    blob = bytearray(client.get_object(Bucket=bucket.name, Key=key)["Body"].read())
    blob[20] ^= 0xFF  # the header sum
    client.put_object(Bucket=bucket.name, Key=key, Body=bytes(blob))
    reader = open_reader(manifest, storage=bucket.options(retry_base_s=0.0, retry_max_s=0.0, max_retries=2),
                         read_mode="range")
    with pytest.raises(IntegrityError, match=rf"languages\.aa\.train\[0\] .*sample sums: download {sums_url} bytes "
                                             rf"0\.\.{entry['head_bytes']} \(its head\): sha256 mismatch .*\(the "
                                             r"same on all 3 attempts\)"):
        reader.read("aa", "train", 0, 0)
    assert reader.metrics()["bytes_downloaded"] == 3 * entry["head_bytes"]
    reader.close()


def test_a_manifest_listing_version_1_sums_still_reads_verified_ranges(remote):
    manifest, bucket, shard = remote
    client = bucket.client()
    fresh = open_reader(manifest, storage=bucket.options(), read_mode="range")
    want = fresh.read("aa", "train", 0, 70)
    fresh.close()
    data = json.loads(manifest.to_json())
    data.pop("content_sha256", None)
    for info, listed in zip(manifest.shards("aa"), data["languages"]["aa"]["train"]):
        key = info.url[len(bucket.url) + 1:] + ".sums"  # rewritten as version 1, listed as before blocks
        old = _v1(sample_sums.decode(client.get_object(Bucket=bucket.name, Key=key)["Body"].read(), key,
                                     info.samples))
        client.put_object(Bucket=bucket.name, Key=key, Body=old)
        listed["sample_sums"] = {"path": info.path + ".sums", "bytes": len(old),
                                 "sha256": hashlib.sha256(old).hexdigest()}
    old_manifest = Manifest.from_dict(data, manifest.root)
    reader = open_reader(old_manifest, storage=bucket.options(), read_mode="range")
    got = reader.read("aa", "train", 0, 70)
    header = shard.extra["header_bytes"]
    sample = reader.metrics()["bytes_downloaded"] - (28 + 4 * shard.samples) - header
    assert 0 < sample <= SEQ_LEN * 2 + 16  # the whole version-1 sums, the header, the sample
    np.testing.assert_array_equal(got, want)
    reader.close()

    # still verified: a sample corrupted in the store is caught against the version-1 sums
    key = shard.url[len(bucket.url) + 1:]
    body = bytearray(client.get_object(Bucket=bucket.name, Key=key)["Body"].read())
    body[header + 20] ^= 0xFF  # inside sample 0, same size
    client.put_object(Bucket=bucket.name, Key=key, Body=bytes(body))
    reader = open_reader(old_manifest, storage=bucket.options(retry_base_s=0.0, retry_max_s=0.0, max_retries=1),
                         read_mode="range")
    with pytest.raises(IntegrityError, match=rf"languages\.aa\.train\[0\] \({shard.url}\) sample 0: checksum"):
        reader.read("aa", "train", 0, 0)
    reader.close()


def test_with_a_node_cache_the_head_is_fetched_once_per_node_and_checked_again_from_the_cache(
        remote, tmp_path):
    """The head is a cache entry (named like the sums), shared by the node's processes; blocks
    are per process, in memory. A head corrupted on the node's disk is caught when read."""
    import os

    manifest, bucket, shard = remote
    entry, header = shard.extra["sample_sums"], shard.extra["header_bytes"]
    cache = str(tmp_path / "cache")
    readers = [open_reader(manifest, storage=bucket.options(), read_mode="range", cache_dir=cache) for _ in range(2)]
    for reader in readers:
        reader.read("aa", "train", 0, 3)
    got = [r.metrics()["bytes_downloaded"] for r in readers]
    sample = got[1] - 4 * sample_sums.BLOCK  # the second: its own block and the sample
    assert got[0] == entry["head_bytes"] + 4 * sample_sums.BLOCK + header + sample, (got, entry, header)
    names = sorted(os.listdir(os.path.join(cache, "data")))
    assert len(names) == 2 and names[0].endswith("_header") != names[1].endswith("_header")
    head_path = os.path.join(cache, "data", next(n for n in names if n.endswith(".sums")))
    assert os.path.getsize(head_path) == entry["head_bytes"]
    for reader in readers:
        reader.close()

    with open(head_path, "r+b") as f:
        f.seek(entry["head_bytes"] - 1)
        last = f.read(1)
        f.seek(entry["head_bytes"] - 1)
        f.write(bytes([last[0] ^ 0xFF]))
    reader = open_reader(manifest, storage=bucket.options(), read_mode="range", cache_dir=cache)
    with pytest.raises(IntegrityError, match=rf"languages\.aa\.train\[0\] .*sample sums .*\(its head\): the node "
                                             rf"cache's copy {head_path} fails its sha256"):
        reader.read("aa", "train", 0, 3)
    reader.close()
