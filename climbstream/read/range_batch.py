"""A batch's range reads, fetched concurrently before its samples are decoded.

Why: a sample read by range is one GET, and a batch read one sample after another waits
one round trip per sample. Under a partitioned order most of a node's samples can be
range reads (`read_whole_within`, read/node_reads.py): at K = 145 on 2 nodes a rank of 8
reads 64 samples of each global batch by range, about 1.3 s per batch per DataLoader
worker at a 20 ms round trip, against one round trip's worth when they overlap.

Three rounds, each concurrent over what it fetches and each fetching a thing once: each
new shard's sums head and MDS header (through the node cache, under its locks), then each
block of sums the batch's samples are checked against, then the samples' bytes with their
crc32 check (`RangeSource.read`). Without the first two rounds the samples' GETs would
wait, one after another, for a block of sums each (a sample rarely shares its 64-sample
block with another of the batch). What the threads share is locked: the sums' heads and
blocks (read/range_sums.py), the parsed headers (read/mds_samples.py), the byte counter;
the store keeps one keep-alive connection per thread (storage/s3_direct.py). The threads live as long as the reader's process (a new process, a
forked DataLoader worker, starts its own on first use). A read that failed in a thread
fails again, with the same error, when the batch reaches that sample, so errors surface
in sample order as without the threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial

THREADS = 16  # concurrent GETs per process: a DataLoader worker's batch slice rarely needs more


class RangeBatch:
    """`fetch(reads)` then `take(key)`: the bytes of the batch's range reads, by (url, index)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._got: dict = {}

    def run(self, calls: list) -> list:
        """Each of `calls` (no arguments) concurrently; their results in order, an error as its value."""
        if len(calls) < 2:
            return [_result(call) for call in calls]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="climbstream-range")
        return list(self._pool.map(_result, calls))

    def fetch(self, reads: list) -> None:
        """`reads`: (key, source, start, end, index), each distinct; fetches them concurrently and
        keeps the bytes (or the error) for `take`, replacing the previous batch's."""
        self._got = {}
        if len(reads) < 2:
            return  # nothing to overlap: the read itself fetches it
        results = self.run([partial(source.read, start, end, index) for _, source, start, end, index in reads])
        self._got = {read[0]: got for read, got in zip(reads, results)}

    def take(self, key) -> bytes | None:
        """The fetched bytes of `key`, None when it was not fetched; its error when the fetch failed."""
        got = self._got.get(key)
        if isinstance(got, Exception):
            raise got
        return got

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pool, self._got = None, {}


def _result(call):
    try:
        return call()
    except Exception as err:  # raised again where the batch reaches it
        return err
