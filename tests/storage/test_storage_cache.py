"""ShardCache across real processes, against the real S3 server and local disk."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal

import pytest
import storage_children

from climbstream.errors import ConfigError
from climbstream.storage.cache import ShardCache
from climbstream.storage.registry import open_store
from climbstream.storage.retry import IntegrityError, ObjectNotFoundError

SHARD_BYTES = 10_000


@pytest.fixture
def shards(s3_bucket):
    """Five shards of SHARD_BYTES each on S3: {url: bytes}."""
    client = s3_bucket.client()
    out = {}
    for i in range(5):
        data = bytes([i]) * SHARD_BYTES
        client.put_object(Bucket=s3_bucket.name, Key=f"fr/shard-{i:06d}.mds", Body=data)
        out[f"{s3_bucket.url}/fr/shard-{i:06d}.mds"] = data
    return out


def options_dict(bucket, endpoint_url=None) -> dict:
    opts = bucket.options(endpoint_url=endpoint_url, max_retries=2, retry_base_s=0.001)
    return {k: getattr(opts, k) for k in ("endpoint_url", "region", "access_key_id", "secret_access_key",
                                          "max_retries", "retry_base_s")}


def gets(proxy, url) -> int:
    key_path = "/" + url.split("://", 1)[1]
    return sum(1 for p in proxy.paths if p == f"GET {key_path}")


def test_local_sources_are_read_in_place_not_copied(tmp_path):
    shard = tmp_path / "corpus" / "fr" / "shard-000000.mds"
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b"x" * 100)
    cache = ShardCache(tmp_path / "cache", limit_bytes=10)
    store = open_store(str(shard))
    with cache.acquire(str(shard), store, size=100) as path:
        assert path == str(shard)
    with cache.acquire("file://" + str(shard), store) as path:
        assert path == str(shard)
    assert cache.usage_bytes() == 0 and os.listdir(tmp_path / "cache" / "data") == []
    with pytest.raises(IntegrityError, match="size mismatch") as info:
        cache.open(str(shard), store, size=99)
    assert str(shard) in str(info.value)
    with pytest.raises(ObjectNotFoundError, match="no such file"):
        cache.open(str(tmp_path / "missing.mds"), store)


def test_second_acquire_is_a_hit_without_download(s3_bucket, shards, flaky_proxy, tmp_path):
    url, data = next(iter(shards.items()))
    store = open_store(url, s3_bucket.options(endpoint_url=flaky_proxy.url))
    cache = ShardCache(tmp_path / "cache", None)
    first = cache.open(url, store, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    first.release()
    assert (first.hit, first.bytes_downloaded) == (False, len(data))
    second = cache.open(url, store, size=len(data))
    with second as path:
        with open(path, "rb") as f:
            assert f.read() == data
        assert path.endswith("shard-000000.mds")
    assert (second.hit, second.bytes_downloaded) == (True, 0)  # what the prefetcher counts
    assert gets(flaky_proxy, url) == 1


def test_size_is_asked_of_the_store_when_not_given(s3_bucket, shards, tmp_path):
    url, data = next(iter(shards.items()))
    cache = ShardCache(tmp_path / "cache", None)
    with cache.acquire(url, open_store(url, s3_bucket.options())) as path:
        assert os.path.getsize(path) == len(data)
    assert cache.usage_bytes() == len(data)


def test_changed_sha256_forces_a_fresh_download(s3_bucket, shards, tmp_path):
    url, data = next(iter(shards.items()))
    store = open_store(url, s3_bucket.options())
    cache = ShardCache(tmp_path / "cache", None)
    with cache.acquire(url, store, size=len(data), sha256=hashlib.sha256(data).hexdigest()):
        pass
    new = b"z" * len(data)
    store.put_bytes(new, url)
    with cache.acquire(url, store, size=len(new), sha256=hashlib.sha256(new).hexdigest()) as path:
        with open(path, "rb") as f:
            assert f.read() == new


def test_failed_download_leaves_nothing_in_the_cache(s3_bucket, shards, tmp_path):
    url, data = next(iter(shards.items()))
    cache = ShardCache(tmp_path / "cache", None)
    with pytest.raises(IntegrityError, match="sha256 mismatch") as info:
        cache.open(url, open_store(url, s3_bucket.options()), size=len(data), sha256="0" * 64)
    assert url in str(info.value)
    assert os.listdir(tmp_path / "cache" / "data") == [] and os.listdir(tmp_path / "cache" / "index") == []


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_concurrent_processes_download_a_shard_exactly_once(s3_bucket, shards, flaky_proxy, tmp_path, method):
    url, data = next(iter(shards.items()))
    flaky_proxy.configure(latency_s=0.3)  # keeps the first download in flight while the others arrive
    ctx = multiprocessing.get_context(method)
    n = 3
    barrier, results = ctx.Barrier(n), ctx.Queue()
    args = (str(tmp_path / "cache"), None, url, len(data), options_dict(s3_bucket, flaky_proxy.url), barrier, results)
    children = [ctx.Process(target=storage_children.acquire_once, args=args) for _ in range(n)]
    for child in children:
        child.start()
    reports = [results.get(timeout=120) for _ in range(n)]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert gets(flaky_proxy, url) == 1
    assert sorted(r[2] for r in reports) == [0] * (n - 1) + [len(data)]
    assert sorted(r[1] for r in reports) == [0] + [1] * (n - 1)
    assert all(r[3] == len(data) for r in reports)


def test_eviction_is_lru_skips_shards_in_use_by_other_processes_and_spares_foreign_files(s3_bucket, shards, tmp_path):
    urls = list(shards)
    root = tmp_path / "cache"
    cache = ShardCache(root, limit_bytes=3 * SHARD_BYTES)
    (root / "foreign.bin").write_bytes(b"f" * 5 * SHARD_BYTES)
    (root / "data" / "someone-elses.mds").write_bytes(b"s" * 5 * SHARD_BYTES)
    store = open_store(urls[0], s3_bucket.options())

    ctx = multiprocessing.get_context("fork")
    holding, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=storage_children.hold, args=(
        str(root), 3 * SHARD_BYTES, urls[0], SHARD_BYTES, options_dict(s3_bucket), holding, release))
    holder.start()
    try:
        assert holding.wait(timeout=60)
        for url in urls[1:3]:  # cache now holds 0 (in use elsewhere), 1, 2: full
            with cache.acquire(url, store, size=SHARD_BYTES):
                pass
        with cache.acquire(urls[1], store, size=SHARD_BYTES):  # 1 is now more recent than 2
            pass
        with cache.acquire(urls[3], store, size=SHARD_BYTES):  # must evict: 0 is oldest but in use -> 2
            pass
        resident = sorted(e["url"] for e in cache.entries())
        assert resident == [urls[0], urls[1], urls[3]]  # exactly one eviction, of shard 2
        assert sorted(os.listdir(root / "data")) == sorted([*(cache.key(u) for u in resident), "someone-elses.mds"])
        assert cache.usage_bytes() <= 3 * SHARD_BYTES
    finally:
        release.set()
        holder.join(timeout=60)
    with cache.acquire(urls[4], store, size=SHARD_BYTES):  # 0 released: now the LRU one goes
        pass
    assert sorted(e["url"] for e in cache.entries()) == [urls[1], urls[3], urls[4]]
    assert (root / "foreign.bin").stat().st_size == 5 * SHARD_BYTES
    assert (root / "data" / "someone-elses.mds").stat().st_size == 5 * SHARD_BYTES


def test_cache_goes_over_its_limit_rather_than_deadlock_when_everything_is_in_use(s3_bucket, shards, tmp_path):
    urls = list(shards)
    cache = ShardCache(tmp_path / "cache", limit_bytes=SHARD_BYTES)
    store = open_store(urls[0], s3_bucket.options())
    with cache.acquire(urls[0], store, size=SHARD_BYTES), cache.acquire(urls[1], store, size=SHARD_BYTES):
        assert cache.usage_bytes() == 2 * SHARD_BYTES
    with cache.acquire(urls[2], store, size=SHARD_BYTES):
        pass
    assert cache.usage_bytes() == SHARD_BYTES


def test_capacity_check_counts_every_shard_that_can_be_in_use(tmp_path):
    cache = ShardCache(tmp_path, limit_bytes=5_000_000)
    cache.check_capacity(largest_shard_bytes=1_000_000, shards_in_use=5)
    with pytest.raises(ConfigError) as info:
        cache.check_capacity(largest_shard_bytes=1_000_000, shards_in_use=6)
    message = str(info.value)
    assert str(tmp_path) in message and "5000000" in message and "6000000" in message
    assert "6 shards in use" in message and "prefetch" in message
    ShardCache(tmp_path, None).check_capacity(10**15, 10**6)
    with pytest.raises(ConfigError, match="positive"):
        ShardCache(tmp_path, 0)


def test_process_killed_while_reading_does_not_block_eviction(s3_bucket, shards, tmp_path):
    urls = list(shards)
    root = tmp_path / "cache"
    ctx = multiprocessing.get_context("fork")
    holding, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=storage_children.hold, args=(
        str(root), SHARD_BYTES, urls[0], SHARD_BYTES, options_dict(s3_bucket), holding, release))
    holder.start()
    assert holding.wait(timeout=60)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(timeout=60)
    cache = ShardCache(root, limit_bytes=SHARD_BYTES)
    with cache.acquire(urls[1], open_store(urls[1], s3_bucket.options()), size=SHARD_BYTES):
        pass
    assert [e["url"] for e in cache.entries()] == [urls[1]]  # the dead holder's shard was evicted
    assert sorted(os.listdir(root / "data")) == [cache.key(urls[1])]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("limit", [None, 10 * SHARD_BYTES], ids=["no-limit", "limit"])  # no reservation / one
def test_process_killed_mid_download_does_not_block_the_next_one(s3_bucket, shards, flaky_proxy, tmp_path, limit):
    url, data = next(iter(shards.items()))
    root = tmp_path / "cache"
    flaky_proxy.configure(latency_s=30)
    ctx = multiprocessing.get_context("fork")
    started = ctx.Event()
    child = ctx.Process(target=storage_children.download_slowly, args=(
        str(root), url, len(data), options_dict(s3_bucket, flaky_proxy.url), started, limit))
    child.start()
    assert started.wait(timeout=60)
    while not flaky_proxy.requests:  # the child holds the shard's exclusive lock from here on
        assert child.is_alive()
        os.sched_yield()
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=60)
    cache = ShardCache(root, limit)
    shard = cache.open(url, open_store(url, s3_bucket.options()), size=len(data))
    with shard as path:
        with open(path, "rb") as f:
            assert f.read() == data
    assert (shard.hit, shard.bytes_downloaded) == (False, len(data))  # downloaded anew, not waited for
    assert sorted(os.listdir(root / "data")) == [cache.key(url)]



def test_a_process_that_saw_a_shard_missing_does_not_wait_for_its_readers_once_it_is_there(
        s3_bucket, shards, tmp_path):
    """Two workers sharing a cache each hold the shards of their batch while they read the
    next. A worker that looked for a shard just before the other finished downloading it
    must not then need it free of readers: with one lock per shard it asked for that lock
    exclusively, and the two workers deadlocked (about one benchmark run in twenty)."""
    import threading

    url, data = next(iter(shards.items()))
    store = open_store(url, s3_bucket.options())
    cache = ShardCache(tmp_path / "cache", None)
    held = cache.open(url, store, size=len(data))  # downloaded and kept by the other worker
    looked_early = ShardCache(tmp_path / "cache", None)
    really_complete = looked_early.is_complete
    looks = []

    def first_look_misses(*args):  # its first look came just before the download finished
        looks.append(args)
        return len(looks) > 1 and really_complete(*args)

    looked_early.is_complete = first_look_misses
    got: dict = {}
    waiter = threading.Thread(target=lambda: got.update(shard=looked_early.open(url, store, size=len(data))),
                              daemon=True)
    waiter.start()
    waiter.join(15)
    assert not waiter.is_alive(), "it waits for the other worker to release a shard it holds for its batch"
    assert got["shard"].hit and open(got["shard"].path, "rb").read() == data
    got["shard"].release()
    held.release()


def test_a_shard_evicted_and_fetched_again_by_another_cache_is_read_from_its_new_file(s3_bucket, shards, tmp_path):
    # ShardCache remembers the files it found complete; that memory must not outlive the file.
    urls = list(shards)
    store = open_store(urls[0], s3_bucket.options())
    reader = ShardCache(tmp_path / "cache", None)
    other = ShardCache(tmp_path / "cache", limit_bytes=SHARD_BYTES)
    old_sha = hashlib.sha256(shards[urls[0]]).hexdigest()
    hits = []
    for _ in range(2):  # a download, then a hit on the remembered file
        shard = reader.open(urls[0], store, size=SHARD_BYTES, sha256=old_sha)
        shard.release()
        hits.append(shard.hit)
    with other.acquire(urls[1], store, size=SHARD_BYTES):  # evicts shard 0
        pass
    new = b"n" * SHARD_BYTES
    store.put_bytes(new, urls[0])
    new_sha = hashlib.sha256(new).hexdigest()
    with other.acquire(urls[0], store, size=SHARD_BYTES, sha256=new_sha):  # evicts 1, fetches 0 anew
        pass
    shard = reader.open(urls[0], store, size=SHARD_BYTES, sha256=new_sha)
    with shard as path:
        with open(path, "rb") as f:
            assert f.read() == new
    assert hits + [shard.hit] == [False, True, True]


def test_a_fetched_entry_is_fetched_once_sized_and_evicted_like_a_shard(tmp_path):
    """open_fetched: the caller's fetch runs once per cache (a second open is a hit), a wrong
    size is an error naming the entry and leaves nothing behind, and eviction treats the
    entry as any other."""
    calls = []

    def fetch(data: bytes):
        def run() -> bytes:
            calls.append(data)
            return data
        return run

    cache = ShardCache(tmp_path / "cache", limit_bytes=250)
    first = cache.open_fetched("s3://b/fr/a.mds#header", fetch(b"h" * 100), 100)
    assert not first.hit and first.bytes_downloaded == 100 and open(first.path, "rb").read() == b"h" * 100
    first.release()
    again = ShardCache(tmp_path / "cache", limit_bytes=250).open_fetched("s3://b/fr/a.mds#header",
                                                                         fetch(b"x" * 100), 100)
    assert again.hit and again.bytes_downloaded == 0 and len(calls) == 1
    again.release()
    with pytest.raises(IntegrityError, match=r"fetch s3://b/fr/b.mds#header: 99 bytes, expected 100"):
        cache.open_fetched("s3://b/fr/b.mds#header", fetch(b"y" * 99), 100)
    assert cache.usage_bytes() == 100  # the failed entry left nothing
    cache.open_fetched("s3://b/fr/c.mds#header", fetch(b"z" * 100), 100).release()
    cache.open_fetched("s3://b/fr/d.mds#header", fetch(b"w" * 100), 100).release()
    assert cache.usage_bytes() == 200  # over the limit: the least recently used entry (a) went
    assert not cache.open_fetched("s3://b/fr/a.mds#header", fetch(b"h" * 100), 100).hit
