"""The dataset over a real S3 server process, through a proxy that fails requests."""

from __future__ import annotations

import pytest

from climbstream import ClimbStream
from climbstream.cli import main
from tests.corpora import SEQ_LEN, WEIGHTS
from tests.s3_server import flaky_proxy, s3_bucket, s3_env, s3_server  # noqa: F401  (fixtures)

from .helpers import by_position, read_batches

B = 16


@pytest.fixture
def s3_corpus(text_corpus, s3_bucket):  # noqa: F811
    url = f"{s3_bucket.url}/corpus"
    assert main(["prepare", text_corpus, "--out", url, "--format", "mds", "--seq-len", str(SEQ_LEN),
                 "--shard-samples", "16", "--heldout-frac", "0.1", "--endpoint-url", s3_bucket.endpoint_url,
                 "--quiet"]) == 0
    return url


@pytest.mark.parametrize("read_mode", ["shard", "range"])
def test_s3_stream_with_failing_requests_equals_the_local_stream(
        mds_corpus, s3_corpus, s3_bucket, flaky_proxy, tmp_path, read_mode):  # noqa: F811
    local = by_position(read_batches(ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=2, rank=0,
                                                 world_size=1), 10))
    flaky_proxy.configure(fail_first=6, status=503)  # throttling: retried with backoff
    remote = ClimbStream(s3_corpus, WEIGHTS, global_batch=B, seed=2, rank=0, world_size=1,
                         storage=s3_bucket.options(endpoint_url=flaky_proxy.url, retry_base_s=0.01),
                         cache_dir=str(tmp_path / "cache"), read_mode=read_mode)
    got = by_position(read_batches(remote, 10, num_workers=2))
    assert got == local
    assert flaky_proxy.failed == 6
    metrics = remote.metrics()
    assert metrics["bytes_downloaded"] > 0
    if read_mode == "shard":  # whole shards land in the node cache once
        assert any((tmp_path / "cache").rglob("*"))


def test_missing_s3_corpus_error_names_the_url(s3_bucket):  # noqa: F811
    from climbstream.errors import ClimbstreamError

    with pytest.raises(ClimbstreamError, match=f"{s3_bucket.url}/nothing-here"):
        ClimbStream(f"{s3_bucket.url}/nothing-here", WEIGHTS, global_batch=B, rank=0, world_size=1,
                    storage=s3_bucket.options())


def test_cache_capacity_counts_every_worker_that_shares_it(s3_corpus, s3_bucket, tmp_path):  # noqa: F811
    from climbstream.formats.manifest import Manifest

    manifest = Manifest.load(s3_corpus, storage=s3_bucket.options())
    largest = max(s.bytes for n in manifest.languages for sp in ("train", "heldout") for s in manifest.shards(n, sp))
    one_worker = len(manifest.languages) * (2 * 2 + 1) * largest  # K x (2 depth + 1) shards of the largest size
    stream = ClimbStream(s3_corpus, WEIGHTS, global_batch=B, rank=0, world_size=1, storage=s3_bucket.options(),
                         cache_dir=str(tmp_path / "cache"), cache_limit_bytes=one_worker, read_mode="shard")
    assert len(read_batches(stream, 2, num_workers=0)) == 2
    from climbstream.errors import ConfigError

    with pytest.raises(ConfigError, match=f"= {2 * one_worker} bytes"):  # raised in a worker, re-raised here
        read_batches(stream, 2, num_workers=2)
