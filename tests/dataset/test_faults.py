"""Faults between the loader and a real S3 server: every sample delivered, byte for byte.

A moto S3 server process behind FlakyProxy, which damages the first answers on the way
back: 503 (throttling), a TCP reset, a body cut short under its full Content-Length, a
flipped byte, a stall longer than the read timeout. Two DataLoader workers read the corpus
through whole-shard downloads (verified by sha256) and through byte ranges; the samples
must equal the local corpus's at every position (the first damaged answers include the
manifest's own GET, which is checked by its content_sha256 and fetched again). A
corrupted byte in a range read cannot be detected (the manifest hashes whole shards), so
that case is the documented one:
`verify="sha256"` refuses range reads, and `verify="auto"` warns when it reads ranges.
"""

from __future__ import annotations

import logging

import pytest

from climbstream import ClimbStream
from climbstream.errors import ConfigError
from tests.corpora import WEIGHTS
from tests.s3_server import flaky_proxy, s3_bucket, s3_env, s3_server  # noqa: F401  (fixtures)

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


def test_range_reads_are_refused_under_verify_sha256_and_warned_about_under_auto(
        s3_corpus, s3_bucket, tmp_path, caplog):  # noqa: F811
    with pytest.raises(ConfigError, match="verify='sha256' cannot check byte-range reads .*give a cache_dir"):
        read_batches(ClimbStream(s3_corpus, WEIGHTS, global_batch=B, rank=0, world_size=1,
                                 storage=s3_bucket.options(), verify="sha256"), 1)
    with caplog.at_level(logging.WARNING, logger="climbstream.read.reader"):
        read_batches(ClimbStream(s3_corpus, WEIGHTS, global_batch=B, rank=0, world_size=1,
                                 storage=s3_bucket.options()), 1)
    assert "byte-range reads are not hashed" in caplog.text
