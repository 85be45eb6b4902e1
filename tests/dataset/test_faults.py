"""Faults between the loader and a real S3 server: every sample delivered, byte for byte.

A moto S3 server process behind FlakyProxy, which damages the first answers on the way
back: 503 (throttling), a TCP reset, a body cut short under its full Content-Length, a
flipped byte, a stall longer than the read timeout. Two DataLoader workers read the corpus
through whole-shard downloads (verified by sha256) and through byte ranges; the samples
must equal the local corpus's at every position (the first damaged answers include the
manifest's own GET, which is checked by its content_sha256 and fetched again). A
corrupted byte in a range read is caught by the shard's sample sums (a crc32 per sample,
in a sidecar the manifest lists with its sha256) and fetched again; a manifest written
before sample sums cannot catch it, so `verify="auto"` warns when it reads its ranges and
`verify="sha256"` refuses them.
"""

from __future__ import annotations

import logging
import random

import pytest

from climbstream import ClimbStream
from climbstream.errors import ConfigError
from tests.corpora import WEIGHTS
from tests.s3_server import FlakyProxy, flaky_proxy, s3_bucket, s3_env, s3_server  # noqa: F401  (fixtures)

from .helpers import by_position, read_batches
from .test_s3 import B, s3_corpus  # noqa: F401  (fixture)

FAULTS = [("status", "shard"), ("status", "range"), ("reset", "shard"), ("reset", "range"),
          ("truncate", "shard"), ("truncate", "range"), ("corrupt", "shard"), ("stall", "shard"),
          ("stall", "range")]


@pytest.fixture
def local_samples(mds_corpus):
    return by_position(read_batches(ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1),
                                    8))


@pytest.mark.parametrize("fault,read_mode", FAULTS)
def test_a_damaged_answer_is_retried_and_every_sample_arrives_intact(
        local_samples, s3_corpus, s3_bucket, flaky_proxy, tmp_path, fault, read_mode):  # noqa: F811
    flaky_proxy.configure(fail_first=4, fault=fault, stall_s=2.0)
    options = s3_bucket.options(endpoint_url=flaky_proxy.url, retry_base_s=0.01, read_timeout_s=0.5)
    remote = ClimbStream(s3_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1, storage=options,
                         cache_dir=str(tmp_path / "cache"), read_mode=read_mode, verify="size")
    got = by_position(read_batches(remote, 8, num_workers=2))
    assert got == local_samples
    assert flaky_proxy.failed == 4, "every planned fault must have hit a request"


def test_a_shard_corrupted_on_every_download_is_a_named_data_error(
        s3_corpus, s3_bucket, flaky_proxy, tmp_path):  # noqa: F811
    from climbstream.storage.retry import IntegrityError

    flaky_proxy.configure(fail_first=10**6, fault="corrupt", only=".mds")
    options = s3_bucket.options(endpoint_url=flaky_proxy.url, retry_base_s=0.0, retry_max_s=0.0, max_retries=2)
    remote = ClimbStream(s3_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1, storage=options,
                         cache_dir=str(tmp_path / "cache"), read_mode="shard")
    with pytest.raises(IntegrityError, match=r"sha256 mismatch .* or the store or network corrupts it "
                                             r"\(the same on all 3 attempts\)"):
        read_batches(remote, 1)


def test_range_reads_are_refused_under_verify_sha256_and_warned_about_under_auto_without_sums(
        s3_corpus, s3_bucket, tmp_path, caplog):  # noqa: F811
    with pytest.raises(ConfigError, match="verify='sha256' cannot check byte-range reads .*give a cache_dir"):
        read_batches(ClimbStream(s3_corpus, WEIGHTS, global_batch=B, rank=0, world_size=1,
                                 storage=s3_bucket.options(), verify="sha256"), 1)
    with caplog.at_level(logging.WARNING, logger="climbstream.read"):
        read_batches(ClimbStream(s3_corpus, WEIGHTS, global_batch=B, rank=0, world_size=1,
                                 storage=s3_bucket.options()), 1)
    assert "not hashed" not in caplog.text  # the corpus has sample sums: its ranges are checked
    old = _without_sample_sums(s3_corpus, s3_bucket)
    with caplog.at_level(logging.WARNING, logger="climbstream.read"):
        got = read_batches(ClimbStream(old, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1,
                                       storage=s3_bucket.options()), 2)
    assert "byte-range reads are not hashed: this manifest lists no per-sample checksums" in caplog.text
    want = read_batches(ClimbStream(s3_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1,
                                    storage=s3_bucket.options()), 2)
    assert got == want  # a manifest from before sample sums still reads, and the same stream


def _without_sample_sums(url: str, bucket) -> str:
    """A copy of the corpus's manifest as written before sample sums, beside the shards."""
    import json

    from climbstream.formats.manifest import Manifest, to_json
    from climbstream.storage.registry import open_store

    data = json.loads(Manifest.load(url, storage=bucket.options()).to_json())
    data.pop("content_sha256")
    for entry in data["languages"].values():
        for split in ("train", "heldout"):
            for shard in entry[split]:
                shard.pop("sample_sums")
    manifest_url = f"{url}/old-manifest.json"
    open_store(url, bucket.options()).put_bytes(to_json(data).encode(), manifest_url)
    return manifest_url


class RandomlyCorruptingProxy(FlakyProxy):
    """FlakyProxy that flips a byte in a seeded fraction `rate` of the GET answers for shards
    (samples, MDS headers and sample sums alike)."""

    def __init__(self, upstream_url: str, rate: float, seed: int = 0):
        super().__init__(upstream_url)
        self.rate, self.rng = rate, random.Random(seed)
        self.configure(fault="corrupt", fail_first=0, only=".mds")

    def _forward(self, handler) -> None:
        with self._lock:
            if handler.command == "GET" and ".mds" in handler.path and self.rng.random() < self.rate:
                self.fail_first = self.failed + 1  # damage this answer (or one beside it)
        super()._forward(handler)


@pytest.mark.parametrize("rate,seed,cached", [(0.01, 0, False), (0.05, 1, False), (0.05, 2, True)])
def test_corrupted_range_answers_are_caught_by_sample_sums_and_fetched_again(
        s3_corpus, s3_bucket, s3_server, tmp_path, rate, seed, cached):  # noqa: F811
    """With 1% (and 5%) of answers corrupted, no corrupted sample reaches the loop (before
    sample sums: 4 of 352 samples did, before a format error ended the run); also with a
    cache_dir, where the sums and headers are fetched once for both workers, into the cache."""
    batches = 22  # 352 samples
    want = by_position(read_batches(ClimbStream(s3_corpus, WEIGHTS, global_batch=B, seed=3, rank=0,
                                                world_size=1, storage=s3_bucket.options()), batches))
    with RandomlyCorruptingProxy(s3_server.endpoint_url, rate, seed) as proxy:
        options = s3_bucket.options(endpoint_url=proxy.url, retry_base_s=0.001, retry_max_s=0.01)
        remote = ClimbStream(s3_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1, storage=options,
                             read_mode="range", cache_dir=str(tmp_path / "cache") if cached else None)
        got = by_position(read_batches(remote, batches, num_workers=2))
        assert proxy.failed >= 2, "the corruption must have hit some answers"
    assert got == want and len(got) == batches * B
    if cached:
        names = [p.name for p in (tmp_path / "cache" / "data").iterdir()]
        assert names and all(n.endswith((".sums", "_header")) for n in names), names  # no whole shard
        assert sum(n.endswith(".sums") for n in names) == sum(n.endswith("_header") for n in names)


class HeaderCorruptingProxy(FlakyProxy):
    """FlakyProxy that flips a byte in every answer to a range read from byte 0 of a shard (an
    MDS header), or with `only=".sums"` in every answer for a sample-sums file."""

    def __init__(self, upstream_url: str, only: str):
        super().__init__(upstream_url)
        self.configure(fault="corrupt", fail_first=0, only=only)
        self.damage_if = self._damaged  # decided per request: the reader's GETs overlap

    def _damaged(self, handler) -> bool:
        header = handler.path.endswith(".mds") and handler.headers.get("Range", "").startswith("bytes=0-")
        return header or self.only == ".sums"


@pytest.mark.parametrize("damaged,what", [(".sums", r"sample sums: download .*sha256 mismatch"),
                                          (".mds", r"header: checksum mismatch")])
def test_sums_or_a_header_corrupted_on_every_answer_is_a_named_error_with_a_node_cache(
        s3_corpus, s3_bucket, s3_server, tmp_path, damaged, what):  # noqa: F811
    """Fetched once per node into the cache, the sums are still checked by their sha256 and the
    header by its sum: corrupted on every attempt, neither reaches the cache or the loop."""
    from climbstream.storage.retry import IntegrityError

    with HeaderCorruptingProxy(s3_server.endpoint_url, damaged) as proxy:
        options = s3_bucket.options(endpoint_url=proxy.url, retry_base_s=0.0, retry_max_s=0.0, max_retries=2)
        remote = ClimbStream(s3_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1, storage=options,
                             read_mode="range", cache_dir=str(tmp_path / "cache"))
        with pytest.raises(IntegrityError, match=rf"languages\.\w+\.train\[\d+\] \(.*\).* {what}"):
            read_batches(remote, 1)
        assert proxy.failed >= 3
    data = tmp_path / "cache" / "data"
    entry = ".sums" if damaged == ".sums" else "_header"  # the damaged kind never reaches the cache
    assert not data.exists() or not any(p.name.endswith(entry) for p in data.iterdir())


def test_a_sample_corrupted_in_the_store_is_an_error_naming_the_shard_and_sample(
        s3_corpus, s3_bucket, caplog):  # noqa: F811
    from climbstream.formats.manifest import Manifest
    from climbstream.storage.retry import IntegrityError

    manifest = Manifest.load(s3_corpus, storage=s3_bucket.options())
    shard = manifest.shards("aa")[0]
    client = s3_bucket.client()
    key = shard.url[len(s3_bucket.url) + 1:]
    data = bytearray(client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read())
    data[shard.extra["header_bytes"] + 20] ^= 0xFF  # inside sample 0, same size
    client.put_object(Bucket=s3_bucket.name, Key=key, Body=bytes(data))
    options = s3_bucket.options(retry_base_s=0.0, retry_max_s=0.0, max_retries=2)
    stream = ClimbStream(s3_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1, storage=options,
                         read_mode="range")
    with pytest.raises(IntegrityError, match=rf"languages\.aa\.train\[0\] \({shard.url}\) sample 0: checksum "
                                             r"mismatch .*\(the same on all 3 attempts\)"):
        read_batches(stream, 60)
