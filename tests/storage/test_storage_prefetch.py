"""Prefetcher: order, bounded depth, errors surfaced to the consumer, metrics."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from climbstream.errors import ConfigError, StorageError
from climbstream.storage.cache import ShardCache
from climbstream.storage.prefetch import Prefetcher
from climbstream.storage.registry import open_store
from climbstream.storage.retry import IntegrityError, ObjectNotFoundError

N_SHARDS = 6
SHARD_BYTES = 4096


@pytest.fixture
def corpus(s3_bucket):
    """N_SHARDS shards on S3: list of (url, data)."""
    client = s3_bucket.client()
    out = []
    for i in range(N_SHARDS):
        data = bytes([i + 1]) * SHARD_BYTES
        client.put_object(Bucket=s3_bucket.name, Key=f"de/shard-{i:06d}.mds", Body=data)
        out.append((f"{s3_bucket.url}/de/shard-{i:06d}.mds", data))
    return out


@pytest.fixture
def prefetcher_factory(s3_bucket, flaky_proxy, tmp_path):
    made = []

    def make(depth=2, threads=2, limit=None, **options):
        store = open_store(s3_bucket.url, s3_bucket.options(endpoint_url=flaky_proxy.url, **options))
        pf = Prefetcher(ShardCache(tmp_path / "cache", limit), store, depth=depth, threads=threads)
        made.append(pf)
        return pf

    yield make
    for pf in made:
        pf.close()


def fetched_order(proxy) -> list[str]:
    return [p.split("/")[-1] for p in proxy.paths if p.startswith("GET ")]


def wait_for_gets(proxy, n: int) -> None:
    deadline = time.monotonic() + 30
    while len(fetched_order(proxy)) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # time for a faulty prefetcher to run further ahead, or for the last to finish


def test_shards_are_fetched_in_the_order_wanted_and_read_back_exactly(corpus, prefetcher_factory, flaky_proxy):
    pf = prefetcher_factory(depth=N_SHARDS, threads=1)
    order = [corpus[i] for i in (3, 0, 5, 1, 4, 2)]
    pf.want([(url, len(data), None) for url, data in order])
    wait_for_gets(flaky_proxy, N_SHARDS)  # one thread, nothing consumed yet: request order = start order
    assert fetched_order(flaky_proxy) == [url.split("/")[-1] for url, _ in order]
    for url, data in order:
        with pf.get(url, len(data)) as path:
            with open(path, "rb") as f:
                assert f.read() == data
    assert len(fetched_order(flaky_proxy)) == N_SHARDS
    m = pf.metrics()
    assert m["bytes_downloaded"] == N_SHARDS * SHARD_BYTES
    assert m["cache_misses"] == N_SHARDS and m["cache_hit_rate"] == 0.0


class GatedStore:
    """The real store, but each download waits for `open` and is counted when it starts."""

    def __init__(self, inner):
        self.inner = inner
        self.open = threading.Event()
        self.started: list[str] = []

    def download(self, url, *args, **kwargs):
        self.started.append(url)
        self.open.wait(timeout=60)
        return self.inner.download(url, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def prefetch_threads_parked(count: int, before: set) -> bool:
    """True when `count` prefetch threads started since `before` (a set of threads) and each is
    waiting (in the gate, or for work). Other prefetchers' threads in this process do not count."""
    frames = sys._current_frames()
    threads = [t for t in threading.enumerate() if t.name.startswith("climbstream-prefetch-") and t not in before]
    return len(threads) == count and all(
        frames.get(t.ident) is not None and frames[t.ident].f_code.co_name == "wait" for t in threads)


def wait_until(condition) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_depth_bounds_how_far_ahead_shards_are_fetched(corpus, s3_bucket, tmp_path):
    gate = GatedStore(open_store(s3_bucket.url, s3_bucket.options()))
    pf = Prefetcher(ShardCache(tmp_path / "cache", None), gate, depth=2, threads=4)
    try:
        before = set(threading.enumerate())
        pf.want([(url, len(data), None) for url, data in corpus])
        wait_until(lambda: prefetch_threads_parked(2, before) and len(gate.started) >= 2)  # min(threads, depth)
        assert sorted(gate.started) == [corpus[0][0], corpus[1][0]]  # every thread parked: nothing further ahead
        gate.open.set()
        with pf.get(corpus[0][0]):  # consuming one frees one slot of the window
            wait_until(lambda: len(gate.started) >= 3 and prefetch_threads_parked(2, before))
            assert sorted(gate.started[:2]) == [corpus[0][0], corpus[1][0]] and gate.started[2:] == [corpus[2][0]]
    finally:
        gate.open.set()
        pf.close()


def test_fetch_errors_surface_when_the_consumer_needs_that_shard(corpus, prefetcher_factory, s3_bucket):
    pf = prefetcher_factory(depth=3)
    missing = f"{s3_bucket.url}/de/shard-999999.mds"
    (u0, d0), (u1, d1) = corpus[0], corpus[1]
    pf.want([(u0, len(d0), None), (missing, 10, None), (u1, len(d1), "0" * 64)])
    with pf.get(u0, len(d0)) as path:
        assert open(path, "rb").read() == d0
    with pytest.raises(ObjectNotFoundError) as info:
        with pf.get(missing, 10):
            pass
    assert missing in str(info.value)
    with pytest.raises(IntegrityError, match="sha256 mismatch") as info:
        with pf.get(u1, len(d1), "0" * 64):
            pass
    assert u1 in str(info.value)


def test_retries_inside_prefetch_still_deliver_every_byte(corpus, prefetcher_factory, flaky_proxy):
    pf = prefetcher_factory(depth=2, max_retries=8, retry_base_s=0.001, retry_max_s=0.01)
    flaky_proxy.configure(fail_first=5, status=503)
    pf.want([(url, len(data), None) for url, data in corpus])
    for url, data in corpus:
        with pf.get(url, len(data)) as path:
            assert open(path, "rb").read() == data
    assert flaky_proxy.failed == 5


def test_get_of_a_shard_not_wanted_fetches_it_and_counts_wait_and_hits(corpus, prefetcher_factory, flaky_proxy):
    pf = prefetcher_factory(depth=1)
    url, data = corpus[2]
    flaky_proxy.configure(latency_s=0.2)
    with pf.get(url, len(data)) as path:
        assert open(path, "rb").read() == data
    with pf.get(url, len(data)):
        pass
    m = pf.metrics()
    assert (m["cache_hits"], m["cache_misses"], m["cache_hit_rate"]) == (1, 1, 0.5)
    assert m["bytes_downloaded"] == SHARD_BYTES
    assert m["wait_s"] >= 0.2  # the consumer blocked on the slow download


def test_replacing_the_plan_releases_shards_no_longer_wanted(corpus, prefetcher_factory, flaky_proxy):
    pf = prefetcher_factory(depth=2, limit=2 * SHARD_BYTES)
    pf.want([(url, len(data), None) for url, data in corpus[:2]])
    wait_for_gets(flaky_proxy, 2)
    pf.want([(url, len(data), None) for url, data in corpus[2:4]], replace=True)
    for url, data in corpus[2:4]:
        with pf.get(url, len(data)) as path:
            assert open(path, "rb").read() == data
    assert pf.cache.usage_bytes() <= 2 * SHARD_BYTES  # the dropped shards were evictable


def test_invalid_settings_and_use_after_close_are_errors(tmp_path):
    cache, store = ShardCache(tmp_path, None), open_store(str(tmp_path))
    with pytest.raises(ConfigError, match="depth"):
        Prefetcher(cache, store, depth=-1)
    with pytest.raises(ConfigError, match="threads"):
        Prefetcher(cache, store, threads=0)
    pf = Prefetcher(cache, store)
    pf.close()
    with pytest.raises(StorageError, match="after close"):
        pf.want([("x", None, None)])


def test_local_shards_pass_through_in_place(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"shard-{i}.mds"
        p.write_bytes(b"a" * (i + 1))
        paths.append(str(p))
    with Prefetcher(ShardCache(tmp_path / "cache", None), open_store(str(tmp_path)), depth=2) as pf:
        pf.want([(p, i + 1, None) for i, p in enumerate(paths)])
        for p in paths:
            with pf.get(p) as path:
                assert path == p
        assert pf.metrics()["bytes_downloaded"] == 0
