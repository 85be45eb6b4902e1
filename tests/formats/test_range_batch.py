"""A batch's range reads are fetched together (read/range_batch.py), then decoded in order.

Real components: a corpus prepared on the moto S3 server, reached through a loopback
proxy that delays every request (so overlapping GETs are seen overlapping).
"""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest

from climbstream.formats.manifest import Manifest
from climbstream.prepare.prepare import prepare
from climbstream.read.reader import open_reader
from climbstream.storage.retry import IntegrityError
from tests.formats.conftest import HELDOUT_FRAC, SEQ_LEN
from tests.s3_server import FlakyProxy

INDEXES = [3, 70, 5, 140, 71, 3, 100, 9]  # several blocks of sums, one sample twice


@pytest.fixture
def remote(s3_bucket, folder_corpus):
    url = f"{s3_bucket.url}/corpora/batch"
    prepare(folder_corpus, url, fmt="mds", seq_len=SEQ_LEN, heldout_frac=HELDOUT_FRAC, shard_samples=150,
            storage=s3_bucket.options())
    manifest = Manifest.load(url, storage=s3_bucket.options())
    assert manifest.shards("aa")[0].samples > max(INDEXES)
    return manifest, s3_bucket


class _Proxy(FlakyProxy):
    """Holds each request LATENCY_S before forwarding it and counts the requests held at once:
    a client that waits for each answer before its next request never has two held (the
    count drops before the answer is even fetched), one that overlaps them does."""

    LATENCY_S = 0.05

    def __init__(self, upstream_url: str):
        super().__init__(upstream_url)
        self.in_flight = self.most_in_flight = self.gets = 0
        self._count = threading.Lock()

    def _forward(self, handler) -> None:
        with self._count:
            self.in_flight += 1
            self.gets += handler.command == "GET"
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.LATENCY_S)
        with self._count:
            self.in_flight -= 1
        super()._forward(handler)


def _reader(manifest, bucket, proxy):
    options = bucket.options(endpoint_url=proxy.url, retry_base_s=0.0, retry_max_s=0.0, max_retries=1)
    return open_reader(manifest, storage=options, read_mode="range")


def test_a_batchs_range_reads_are_fetched_together_then_read_from_memory(remote, s3_server):
    manifest, bucket = remote
    sequential = open_reader(manifest, storage=bucket.options(), read_mode="range")
    expected = [sequential.read("aa", "train", 0, i) for i in INDEXES]
    with _Proxy(s3_server.endpoint_url) as proxy:
        reader = _reader(manifest, bucket, proxy)
        reader.read("aa", "train", 0, 0)  # the header and the sums' head, read before the batch
        proxy.most_in_flight = 0
        reader.fetch_ranges([("aa", "train", 0, i, False) for i in INDEXES])
        assert proxy.most_in_flight >= 2  # the samples' GETs overlapped
        fetched, gets = reader.metrics()["bytes_downloaded"], proxy.gets
        got = [reader.read_with("aa", "train", 0, i, (), whole=False)[0] for i in INDEXES]
        assert (reader.metrics()["bytes_downloaded"], proxy.gets) == (fetched, gets)  # nothing fetched again
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)
        # the bytes of reading them one by one: sample 0 (read first here) in, the duplicate fetched once
        assert fetched == (sequential.metrics()["bytes_downloaded"] - _bytes_of(sequential, manifest, 3)
                           + _bytes_of(sequential, manifest, 0))
        reader.read_with("aa", "train", 0, 11, (), whole=False)  # not in the batch: read as before
        assert proxy.gets == gets + 1
        reader.close()
    sequential.close()


def _bytes_of(reader, manifest, index: int) -> int:
    """Bytes of sample `index` of shard aa/0 (read twice by the sequential reader)."""
    start, end = reader.samples.locate(manifest.shards("aa")[0], index, None)
    return end - start


def test_a_sample_whose_fetch_failed_in_a_thread_fails_at_its_turn_with_its_own_error(remote, s3_server):
    """One sample's bytes changed in the store (every attempt fails its check): the batch's
    fetch raises nothing, the samples before it read, and it fails when its turn comes."""
    manifest, bucket = remote
    shard = manifest.shards("aa")[0]
    with _Proxy(s3_server.endpoint_url) as proxy:
        reader = _reader(manifest, bucket, proxy)
        reader.read("aa", "train", 0, 0)
        start, end = reader.samples.locate(shard, 140, None)
        client, key = bucket.client(), shard.url[len(bucket.url) + 1:]
        data = bytearray(client.get_object(Bucket=bucket.name, Key=key)["Body"].read())
        data[(start + end) // 2] ^= 0xFF
        client.put_object(Bucket=bucket.name, Key=key, Body=bytes(data))
        reader.fetch_ranges([("aa", "train", 0, i, False) for i in INDEXES])  # no error yet
        for i in INDEXES[:3]:
            reader.read_with("aa", "train", 0, i, (), whole=False)  # the samples before it read fine
        with pytest.raises(IntegrityError, match=rf"{re.escape(shard.where)} sample 140: checksum mismatch"):
            reader.read_with("aa", "train", 0, 140, (), whole=False)
        reader.close()


def test_whole_shards_and_local_corpora_are_left_to_the_read(remote, s3_server, folder_corpus, tmp_path):
    manifest, bucket = remote
    with _Proxy(s3_server.endpoint_url) as proxy:
        reader = _reader(manifest, bucket, proxy)
        reader.fetch_ranges([("aa", "train", 0, 3, False)])  # one read: nothing to overlap
        assert proxy.gets == 3  # its header, sums head and block, as the read would; the sample is left to it
        reader.read_with("aa", "train", 0, 3, (), whole=False)
        assert proxy.gets == 4
        reader.close()
    with _Proxy(s3_server.endpoint_url) as proxy:  # whole shards go through the cache, not here
        reader = open_reader(manifest, storage=bucket.options(endpoint_url=proxy.url), read_mode="shard",
                             cache_dir=str(tmp_path / "cache"))
        reader.fetch_ranges([("aa", "train", 0, i, True) for i in (0, 1)])
        assert proxy.gets == 0
        reader.close()
    local = prepare(folder_corpus, str(tmp_path / "local"), fmt="mds", seq_len=SEQ_LEN, heldout_frac=HELDOUT_FRAC)
    with open_reader(local) as reader:
        reader.fetch_ranges([("aa", "train", 0, i, False) for i in (0, 1)])
        assert reader.metrics()["bytes_downloaded"] == 0


def test_the_stream_fetches_each_batchs_range_reads_together_and_yields_what_it_yields_one_by_one(
        remote, s3_server, monkeypatch):
    """Through ClimbStream (main process, read_mode "range"): the batch's GETs overlap, and the
    batches are those of the same stream with fetch_ranges turned off."""
    from climbstream import ClimbStream
    from climbstream.read.reader import SampleReader
    from tests.dataset.helpers import by_position, read_batches

    manifest, bucket = remote

    def stream(proxy):
        options = bucket.options(endpoint_url=proxy.url)
        return ClimbStream(manifest.root, {"method": "uniform"}, global_batch=16, seed=4, rank=0, world_size=1,
                           storage=options, read_mode="range")

    with _Proxy(s3_server.endpoint_url) as proxy:
        got = by_position(read_batches(stream(proxy), 3))
        assert proxy.most_in_flight >= 2, (proxy.most_in_flight, proxy.gets)
    monkeypatch.setattr(SampleReader, "fetch_ranges", lambda self, reads: None)
    with _Proxy(s3_server.endpoint_url) as proxy:
        want = by_position(read_batches(stream(proxy), 3))
        assert proxy.most_in_flight == 1, (proxy.most_in_flight, proxy.gets, proxy.paths)  # one after another
    assert got == want and len(got) == 3 * 16
