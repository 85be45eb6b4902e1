"""Fetch the shards a worker will need next, in the order it will need them.

The schedule knows the future, so the reader tells the Prefetcher which shards come next
(`want`), and background threads bring them into the ShardCache ahead of time. Promises:

- shards are started in the order wanted, and at most `depth` wanted shards are fetched
  ahead and held (not evictable) at once, plus the ones the consumer holds through `get`;
  so one Prefetcher keeps at most depth + (shards held by the consumer) shards resident;
- a failed fetch is kept and raised by `get` when the consumer asks for that shard (the
  StorageError names the URL); nothing is dropped silently;
- `get` on a shard that was not wanted (or not started yet) fetches it directly;
- `wait_s` counts every second the consumer spent blocked in `get`.

Create one Prefetcher inside each DataLoader worker (threads do not survive a fork).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from climbstream.errors import ConfigError, StorageError
from climbstream.storage.cache import CachedShard, ShardCache
from climbstream.storage.metrics import StorageMetrics
from climbstream.storage.store import ObjectStore
from climbstream.storage.unpack import Unpack

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    url: str
    size: int | None
    sha256: str | None
    unpack: Unpack | None = None
    state: str = "planned"  # planned -> running -> ready | failed
    shard: CachedShard | None = None
    error: BaseException | None = None


class Prefetcher:
    """Background fetching of wanted shards into a ShardCache, `depth` shards ahead."""

    def __init__(self, cache: ShardCache, store: ObjectStore, depth: int = 2, threads: int = 4) -> None:
        if depth < 0:
            raise ConfigError(f"prefetch depth must be >= 0, got {depth}")
        if threads < 1:
            raise ConfigError(f"prefetch threads must be >= 1, got {threads}")
        self.cache = cache
        self.store = store
        self.depth = depth
        self.num_threads = min(threads, depth)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        # One lock, two conditions: fetch threads wait for work, the consumer for a fetch to
        # finish. With one condition every finished fetch woke all 8 threads, and every freed
        # slot woke the consumer: that churn was 6% of a worker's time over S3.
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._pid = os.getpid()
        self._metrics = StorageMetrics()

    # -- consumer side -------------------------------------------------------------------
    def want(self, items: Iterable[tuple], replace: bool = False) -> None:
        """Plan `(url, size, sha256[, unpack])` items in the order they will be needed.

        Items already planned or fetched are kept where they are. With `replace=True` the
        plan becomes exactly `items`: entries not in it are dropped (and released).
        """
        self._check_process()
        items = [(str(item[0]), item[1], item[2], item[3] if len(item) > 3 else None) for item in items]
        dropped: list[_Entry] = []
        with self._lock:
            if self._closed:
                raise StorageError("Prefetcher.want after close(); create a new Prefetcher")
            if replace:
                keep = {item[0] for item in items}
                for url in [u for u in self._entries if u not in keep]:
                    entry = self._entries.pop(url)
                    if entry.state != "running":  # a running fetch is released by its thread when done
                        dropped.append(entry)
            for url, size, sha256, unpack in items:
                if url not in self._entries:
                    self._entries[url] = _Entry(url, size, sha256, unpack)
            self._start_threads()
            self._work.notify(self.num_threads)
        for entry in dropped:
            self._discard(entry)

    @contextlib.contextmanager
    def get(self, url: str, size: int | None = None, sha256: str | None = None,
            unpack: Unpack | None = None) -> Iterator[str]:
        """The local path of `url`, resident inside the with-block; blocks until it is there."""
        self._check_process()
        started = time.perf_counter()
        with self._lock:
            entry = self._entries.get(url)
            while entry is not None and entry.state == "running":
                self._done.wait()
                entry = self._entries.get(url)  # may be gone, or planned anew by a later want()
            if entry is not None:
                del self._entries[url]
                self._work.notify()  # a slot in the window is free
                if entry.state == "planned":
                    entry = None  # not started: fetching it here is quicker than queueing
        try:
            if entry is None:
                shard = self.cache.open(url, self.store, size, sha256, unpack)
                self._metrics.add_lookup(shard.hit, shard.bytes_downloaded)
            elif entry.state == "failed":
                if isinstance(entry.error, StorageError):
                    raise entry.error
                raise StorageError(f"prefetch {url}: {type(entry.error).__name__}: {entry.error}") from entry.error
            else:
                shard = entry.shard
        finally:
            self._metrics.add_wait(time.perf_counter() - started)
        try:
            yield shard.path
        finally:
            shard.release()

    def metrics(self) -> dict:
        """`{wait_s, cache_hit_rate, bytes_downloaded, cache_hits, cache_misses}` so far."""
        return self._metrics.snapshot()

    def close(self) -> None:
        """Stop the threads and release every shard fetched but not consumed."""
        with self._lock:
            self._closed = True
            self._work.notify_all()
            self._done.notify_all()
        for thread in self._threads:
            thread.join()
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            self._discard(entry)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- background side -------------------------------------------------------------------
    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise ConfigError(
                f"Prefetcher created in process {self._pid} is used in process {os.getpid()}; its threads "
                f"do not survive a fork: create the Prefetcher inside each DataLoader worker"
            )

    def _start_threads(self) -> None:
        while len(self._threads) < self.num_threads:
            thread = threading.Thread(target=self._run, name=f"climbstream-prefetch-{len(self._threads)}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def _next_planned(self) -> _Entry | None:
        active = sum(1 for e in self._entries.values() if e.state != "planned")
        if active >= self.depth:
            return None
        return next((e for e in self._entries.values() if e.state == "planned"), None)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed and (entry := self._next_planned()) is None:
                    self._work.wait()
                if self._closed:
                    return
                entry.state = "running"
            try:
                shard, error = self.cache.open(entry.url, self.store, entry.size, entry.sha256,
                                               entry.unpack), None
                self._metrics.add_lookup(shard.hit, shard.bytes_downloaded)
            except Exception as exc:  # kept for the consumer; raised by get()
                shard, error = None, exc
                log.debug("prefetch %s failed: %s", entry.url, exc)
            with self._lock:
                entry.shard, entry.error = shard, error
                entry.state = "failed" if error is not None else "ready"
                orphan = self._entries.get(entry.url) is not entry  # dropped by want(replace=True)
                self._done.notify_all()
            if orphan:
                self._discard(entry)

    def _discard(self, entry: _Entry) -> None:
        if entry.shard is not None:
            entry.shard.release()
            entry.shard = None
        if entry.state == "failed":
            log.warning("prefetch of %s failed and it was never read: %s", entry.url, entry.error)
