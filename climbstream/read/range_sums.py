"""What a range reader checks its reads against: each shard's sample sums and MDS header.

A range reader checks every sample against its shard's sums (formats/sample_sums.py). For
a version-2 sidecar (its manifest entry lists `head_sha256`), the reader fetches the head
(32 bytes + 4 per block of 64 samples) once, checks it against the manifest's
head_sha256, and then fetches the sums by block (256 bytes, one range request) on first
need, checking each against the head's crc32 of it. Why: a node that reads one or two
samples of each of ~1,000 shards (1,000 languages on 128 nodes, a short run) fetched
8 KB of whole sums per 2,000-sample shard, more than its samples; by block, what it fetches
for sums is proportional to the samples it reads (a first read of one sample of such a
shard: 160 + 256 bytes of sums instead of 8,028, one more request). A version-1 sidecar
(no head in the manifest: written before blocks) is fetched whole, checked against the
manifest's sha256, as before. A mismatch is fetched again like a corrupted download, and
on every attempt is an IntegrityError naming the shard, the sums URL (and the block).

Bounds: the decoded sums are kept for the most recently read MAX_SHARDS shards and, of
version-2 sidecars, the most recently read MAX_BLOCKS blocks (256 bytes each, 16 MiB), so
a process that reads for weeks does not grow without bound. An MDS shard's header (its
offset table, about 4 bytes per sample) is fetched by range and checked against the
sums' header sum.

With a node-local cache (a `cache_dir`), the whole sums (version 1), the head (version 2)
and the header are fetched once per node, not once per process: they are entries of the
ShardCache (the sums under their own URL, the head under the sums' URL + SUMS_HEAD_KEY,
the header under the shard's URL + HEADER_KEY), so every rank and DataLoader worker of
the node shares one download through the cache's locks, and each process checks what it
reads from the cache again (sha256 of the sums or head, crc32 of the header:
microseconds for a few KiB). Per process they cost a node 8 ranks x its workers times
the bytes and requests: at K = 1,000 on 8 nodes, 44 index requests per node per global
batch against 13 once per node (benchmarks/scaleout.py). Blocks are per process, in
memory, never cache files: 256 bytes are not worth a cache entry's locks and files.
Without a cache_dir everything is fetched once per process.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import OrderedDict
from typing import Callable, Iterator

import numpy as np

from climbstream.errors import ManifestError
from climbstream.formats import sample_sums
from climbstream.formats.manifest import SAMPLE_SUMS_KEY, ShardInfo
from climbstream.storage.retry import IntegrityError, ObjectNotFoundError, SuspectBytes
from climbstream.storage.urls import join_url

MAX_SHARDS = 4096
MAX_BLOCKS = 65536
HEADER_KEY = "#header"  # a shard's header in the cache: the shard's URL with this suffix
SUMS_HEAD_KEY = "#head.sums"  # a version-2 sidecar's head in the cache: the sums' URL with this suffix


class BlockSums:
    """A version-2 shard's sums: `header_bytes`, `header_sum` and `sample(index)`, whose block
    is fetched by range (and checked) on first need, through `sums` (the RangeSums)."""

    def __init__(self, sums: "RangeSums", info: ShardInfo, url: str, head: sample_sums.SumsHead):
        self._sums, self.info, self.url, self.head = sums, info, url, head
        self.header_bytes, self.header_sum = head.header_bytes, head.header_sum

    def block_key(self, index: int) -> tuple[str, int]:
        """Which block of sums `index` is checked against (read/range_batch.py fetches each once)."""
        return self.url, index // self.head.block

    def sample(self, index: int) -> int:
        block = self._sums.block(self, index // self.head.block)
        return int(block[index % self.head.block])


class RangeSums:
    """`get(info) -> SampleSums | BlockSums | None` (None: the manifest lists no sums for the
    shard) and `header(info, sums, fetch) -> bytes`; through `cache` (a ShardCache) when one
    is given."""

    def __init__(self, store, root: str, count=lambda n: None, cache=None):
        self.store, self.root, self.count, self.cache = store, root, count, cache
        self._sums: OrderedDict[str, sample_sums.SampleSums | BlockSums] = OrderedDict()
        self._blocks: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # the two LRUs, shared by the prefetch threads

    def get(self, info: ShardInfo) -> sample_sums.SampleSums | BlockSums | None:
        entry = info.extra.get(SAMPLE_SUMS_KEY)
        if entry is None:
            return None
        with self._lock:
            sums = self._sums.get(info.url)
            if sums is not None:
                self._sums.move_to_end(info.url)
                return sums
        sums = self._fetch_head(info, entry) if "head_sha256" in entry else self._fetch(info, entry)
        with self._lock:
            self._sums[info.url] = sums
            while len(self._sums) > MAX_SHARDS:
                self._sums.popitem(last=False)
        return sums

    def header(self, info: ShardInfo, sums, fetch: Callable[[], bytes]) -> bytes:
        """The shard's header, bytes [0, sums.header_bytes): `fetch()` (which checks them), once per
        node through the cache when there is one."""
        if self.cache is None:
            return fetch()
        data, path = self._cached(info.url + HEADER_KEY, fetch, sums.header_bytes)
        got = sample_sums.checksum(data)
        if got != sums.header_sum:
            raise IntegrityError(f"{info.where} header: the node cache's copy {path} fails its checksum (crc32 "
                                 f"expected {sums.header_sum:08x}, got {got:08x}); the disk corrupted it: "
                                 f"delete it and read again")
        return data

    def block(self, sums: BlockSums, b: int) -> np.ndarray:
        """Block b of a version-2 shard's sums: from memory, or fetched by range and checked
        against the head's crc32 of it (retried like a corrupted download)."""
        key = (sums.url, b)
        with self._lock:
            values = self._blocks.get(key)
            if values is not None:
                self._blocks.move_to_end(key)
                return values
        start, end = sums.head.block_range(b)
        expected = int(sums.head.table[b])

        def attempt() -> bytes:
            data = self.store.read_bytes(sums.url, start, end)
            self.count(len(data))
            got = sample_sums.checksum(data)
            if len(data) != end - start or got != expected:
                raise SuspectBytes(IntegrityError(
                    f"{sums.info.where}: sample sums {sums.url} block {b}: checksum mismatch in bytes {start}.."
                    f"{end} (crc32 expected {expected:08x}, got {got:08x} of {len(data)} bytes); the store or "
                    f"the network corrupts the answer, or the sums changed after the manifest was written "
                    f"(then rerun 'climbstream manifest')"))
            return data

        with _named(sums.info, sums.url):
            data = self.store.retried("read", sums.url, attempt)
        values = np.frombuffer(data, "<u4")
        with self._lock:
            self._blocks[key] = values
            while len(self._blocks) > MAX_BLOCKS:
                self._blocks.popitem(last=False)
        return values

    def _fetch_head(self, info: ShardInfo, entry: dict) -> BlockSums:
        """A version-2 shard's sums: its head fetched (once per node through the cache) and checked
        against the manifest's head_sha256 (its form checked when the manifest loaded); the
        blocks come later, by `block`."""
        url = join_url(self.root, entry["path"])
        size = entry["head_bytes"]
        data = self._verified(info, url, size, entry["head_sha256"], url + SUMS_HEAD_KEY, " (its head)")
        head = sample_sums.decode_head(data, url, info.samples)
        if head.head_bytes != size:
            raise ManifestError(f"{info.where}: sample sums {url}: its head is {head.head_bytes} bytes, the "
                                f"manifest says {size}; rerun 'climbstream manifest'")
        return BlockSums(self, info, url, head)

    def _fetch(self, info: ShardInfo, entry: dict) -> sample_sums.SampleSums:
        """A version-1 shard's sums: the whole sidecar, checked against the manifest's sha256."""
        url = join_url(self.root, entry["path"])
        return sample_sums.decode(self._verified(info, url, entry["bytes"], entry["sha256"], url), url, info.samples)

    def _verified(self, info: ShardInfo, url: str, size: int, sha256: str, cache_key: str, part: str = "") -> bytes:
        """Bytes [0, size) of `url` (the whole sums, or `part` of them), their sha256 checked and a
        mismatch retried like a corrupted download; once per node under `cache_key` with a cache,
        checked again when read from it."""

        def attempt() -> bytes:
            data = self.store.read_bytes(url, 0, size)
            self.count(len(data))
            got = hashlib.sha256(data).hexdigest()
            if got != sha256:
                raise SuspectBytes(IntegrityError(
                    f"{info.where}: sample sums: download {url} bytes 0..{size}{part}: sha256 mismatch "
                    f"(expected {sha256[:12]}..., got {got[:12]}...); the store or the network corrupts it, or "
                    f"it changed after the manifest was written (then rerun 'climbstream manifest')"))
            return data

        def fetch() -> bytes:
            return self.store.retried("read", url, attempt)

        with _named(info, url):
            if self.cache is None:
                return fetch()
            data, path = self._cached(cache_key, fetch, size)
            if hashlib.sha256(data).hexdigest() != sha256:
                raise IntegrityError(f"{info.where}: sample sums {url}{part}: the node cache's copy {path} fails "
                                     f"its sha256; the disk corrupted it: delete it and read again")
            return data

    def _cached(self, key: str, fetch: Callable[[], bytes], size: int) -> tuple[bytes, str]:
        """(bytes, path) of the cache entry `key`, filled with `fetch()`'s answer (which counts its
        own bytes) by whichever process of the node asks first."""
        entry = self.cache.open_fetched(key, fetch, size)
        try:
            with open(entry.path, "rb") as f:
                data = f.read()
        finally:
            entry.release()
        return data, entry.path


@contextlib.contextmanager
def _named(info: ShardInfo, url: str) -> Iterator[None]:
    """A missing sums file as a ManifestError, and the shard named in an IntegrityError raised
    without it (the store's download errors name only the URL)."""
    try:
        yield
    except ObjectNotFoundError:
        raise ManifestError(f"{info.where}: its sample sums {url} are missing; restore them or rerun "
                            f"'climbstream manifest'") from None
    except IntegrityError as err:
        if str(err).startswith(info.where):
            raise
        raise IntegrityError(f"{info.where}: sample sums: {err}") from None
