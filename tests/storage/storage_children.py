"""Functions run in child processes (fork and spawn) by the storage tests.

They live in a module of their own so that spawned children can import them by name.
"""

from __future__ import annotations

import os
import time

from climbstream.storage.cache import ShardCache
from climbstream.storage.options import StorageOptions
from climbstream.storage.registry import open_store


def acquire_once(root, limit, url, size, options, barrier, results):
    """Wait for the others, acquire `url`, report (pid, hit, bytes_downloaded, content length)."""
    store = open_store(url, StorageOptions(**options))
    cache = ShardCache(root, limit)
    barrier.wait(timeout=30)
    shard = cache.open(url, store, size=size)
    with shard as path:
        with open(path, "rb") as f:
            results.put((os.getpid(), int(shard.hit), shard.bytes_downloaded, len(f.read())))


def hold(root, limit, url, size, options, holding, release):
    """Acquire `url`, signal `holding`, keep it until `release` is set (or the process is killed)."""
    store = open_store(url, StorageOptions(**options))
    cache = ShardCache(root, limit)
    with cache.acquire(url, store, size=size):
        holding.set()
        release.wait(timeout=60)


def download_slowly(root, url, size, options, started, limit=None):
    """Start a download that is slow (the proxy adds latency) and signal once it is under way."""
    store = open_store(url, StorageOptions(**options))
    cache = ShardCache(root, limit)
    started.set()
    with cache.acquire(url, store, size=size):
        time.sleep(60)


def read_in_child(store, url, results):
    """Use a store built (and used) by the parent; report whether a new client was made."""
    data = store.read_bytes(url)
    results.put((id(store.client), store.clients_created, len(data)))


def read_direct_in_child(store, url, results):
    """Read `url` in a forked child; report (connections the child opened, bytes read)."""
    from climbstream.storage.s3 import split_s3_url

    data = store.read_bytes(url)
    getter = store.direct_getter(split_s3_url(url)[0])
    results.put((getter.connections_opened, len(data)))
