"""Loader counters for the loss log: how long the consumer waited and what the cache saved.

One `StorageMetrics` per Prefetcher (one per DataLoader worker). The dataset sums the
counts of its workers (stream/state/control.py); `cache_hit_rate` is derived from the summed
counts by `hit_rate`, never averaged, so workers with few lookups do not skew it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

# The one list of loader counter names: what readers count (summed over workers by the
# stream's SharedControl), and what the loss log's "loader" line carries (formats/loss_log.py).
COUNTERS = ("wait_s", "bytes_downloaded", "cache_hits", "cache_misses")
LOADER_METRICS = ("wait_s", "cache_hit_rate", "bytes_downloaded")


@dataclass
class StorageMetrics:
    """Thread-safe counters. `wait_s` is consumer time blocked on bytes, in seconds."""

    wait_s: float = 0.0
    cache_hits: int = 0
    cache_misses: int = 0
    bytes_downloaded: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_wait(self, seconds: float) -> None:
        with self._lock:
            self.wait_s += seconds

    def add_lookup(self, hit: bool, bytes_downloaded: int = 0) -> None:
        with self._lock:
            if hit:
                self.cache_hits += 1
            else:
                self.cache_misses += 1
            self.bytes_downloaded += bytes_downloaded

    def snapshot(self) -> dict:
        """`{wait_s, cache_hit_rate, bytes_downloaded, cache_hits, cache_misses}`.

        cache_hit_rate is hits / lookups, 0.0 before the first lookup.
        """
        with self._lock:
            return summarize(self.wait_s, self.cache_hits, self.cache_misses, self.bytes_downloaded)


def hit_rate(cache_hits: float, cache_misses: float) -> float:
    """Hits / lookups, 0.0 before the first lookup: the one definition of the cache hit rate."""
    lookups = cache_hits + cache_misses
    return cache_hits / lookups if lookups else 0.0


def summarize(wait_s: float, cache_hits: int, cache_misses: int, bytes_downloaded: int) -> dict:
    """The counts, and the hit rate derived from them (LOADER_METRICS plus the two lookup counts)."""
    return {
        "wait_s": wait_s,
        "cache_hit_rate": hit_rate(cache_hits, cache_misses),
        "bytes_downloaded": bytes_downloaded,
        "cache_hits": cache_hits,
        "cache_misses": cache_misses,
    }
