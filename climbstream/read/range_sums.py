"""What a range reader checks its reads against: each shard's sample sums and MDS header.

A range reader checks every sample against its shard's sums (formats/sample_sums.py); the
sums come in one small GET per shard, are checked against the sha256 the manifest lists
for them (fetched again like a corrupted download when they fail it), and are kept for
the most recently read MAX_SHARDS shards: 4 bytes per sample, so a process that reads
for weeks does not grow without bound. An MDS shard's header (its offset table, about 4
bytes per sample) is fetched by range and checked against the sums' header sum.

With a node-local cache (a `cache_dir`), both are fetched once per node, not once per
process: they are entries of the ShardCache (the sums under their own URL, the header
under the shard's URL + HEADER_KEY), so every rank and DataLoader worker of the node
shares one download through the cache's locks, and each process checks what it reads
from the cache again (sha256 of the sums, crc32 of the header: microseconds for a few
KiB). Per process they cost a node 8 ranks x its workers times the bytes and requests:
at K = 1,000 on 8 nodes, 44 index requests per node per global batch against 13 once
per node (benchmarks/scaleout.py). Fetching only the entries a node needs by range
(12 bytes a sample) would save bytes but cost two requests per sample read, and could
not be checked: the manifest's sha256 covers the whole sums file, the header sum the
whole header. Without a cache_dir they are fetched once per process, as before.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Callable

from climbstream.errors import ManifestError
from climbstream.formats import sample_sums
from climbstream.formats.manifest import SAMPLE_SUMS_KEY, ShardInfo
from climbstream.storage.retry import IntegrityError, ObjectNotFoundError, SuspectBytes
from climbstream.storage.urls import join_url

MAX_SHARDS = 4096
HEADER_KEY = "#header"  # a shard's header in the cache: the shard's URL with this suffix


class RangeSums:
    """`get(info) -> SampleSums | None` (None: the manifest lists no sums for the shard) and
    `header(info, sums, fetch) -> bytes`; through `cache` (a ShardCache) when one is given."""

    def __init__(self, store, root: str, count=lambda n: None, cache=None):
        self.store, self.root, self.count, self.cache = store, root, count, cache
        self._sums: OrderedDict[str, sample_sums.SampleSums] = OrderedDict()

    def get(self, info: ShardInfo) -> sample_sums.SampleSums | None:
        entry = info.extra.get(SAMPLE_SUMS_KEY)
        if entry is None:
            return None
        sums = self._sums.get(info.url)
        if sums is None:
            sums = self._sums[info.url] = self._fetch(info, entry)
            while len(self._sums) > MAX_SHARDS:
                self._sums.popitem(last=False)
        else:
            self._sums.move_to_end(info.url)
        return sums

    def header(self, info: ShardInfo, sums: sample_sums.SampleSums, fetch: Callable[[], bytes]) -> bytes:
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

    def _fetch(self, info: ShardInfo, entry: dict) -> sample_sums.SampleSums:
        url = join_url(self.root, entry["path"])

        def attempt() -> bytes:
            data = self.store.read_bytes(url, 0, entry["bytes"])
            self.count(len(data))
            got = hashlib.sha256(data).hexdigest()
            if got != entry["sha256"]:
                raise SuspectBytes(IntegrityError(
                    f"{info.where}: sample sums {url}: sha256 mismatch (expected {entry['sha256'][:12]}..., got "
                    f"{got[:12]}...); the store or the network corrupts it, or it changed after the manifest "
                    f"was written (then rerun 'climbstream manifest')"))
            return data

        try:
            if self.cache is None:
                data = self.store.retried("read", url, attempt)
            else:  # downloaded whole, its sha256 checked (and retried) by the store, once per node
                data, path = self._cached(url, None, entry["bytes"], entry["sha256"])
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise IntegrityError(f"{info.where}: sample sums {url}: the node cache's copy {path} fails "
                                         f"its sha256; the disk corrupted it: delete it and read again")
        except ObjectNotFoundError:
            raise ManifestError(f"{info.where}: its sample sums {url} are missing; restore them or rerun "
                                f"'climbstream manifest'") from None
        except IntegrityError as err:
            if str(err).startswith(info.where):
                raise
            raise IntegrityError(f"{info.where}: sample sums: {err}") from None
        return sample_sums.decode(data, url, info.samples)

    def _cached(self, url: str, fetch: Callable[[], bytes] | None, size: int,
                sha256: str | None = None) -> tuple[bytes, str]:
        """(bytes, path) of a cache entry: downloaded from `url` (sha256 checked; `count` is told of
        the bytes when this process downloaded it) or, with `fetch`, its answer (which counts its own)."""
        shard = (self.cache.open(url, self.store, size, sha256) if fetch is None
                 else self.cache.open_fetched(url, fetch, size))
        try:
            with open(shard.path, "rb") as f:
                data = f.read()
        finally:
            shard.release()
        if fetch is None:
            self.count(shard.bytes_downloaded)
        return data, shard.path
