"""The sample sums of the shards a range reader is reading, fetched once per shard per process.

A range reader checks every sample against its shard's sums (formats/sample_sums.py); the
sums come in one small GET per shard, are checked against the sha256 the manifest lists
for them (fetched again like a corrupted download when they fail it), and are kept for
the most recently read MAX_SHARDS shards: 4 bytes per sample, so a process that reads
for weeks does not grow without bound.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from climbstream.errors import ManifestError
from climbstream.formats import sample_sums
from climbstream.formats.manifest import SAMPLE_SUMS_KEY, ShardInfo
from climbstream.storage.retry import IntegrityError, ObjectNotFoundError, SuspectBytes
from climbstream.storage.urls import join_url

MAX_SHARDS = 4096


class RangeSums:
    """`get(info) -> SampleSums | None` (None: the manifest lists no sums for the shard)."""

    def __init__(self, store, root: str, count=lambda n: None):
        self.store, self.root, self.count = store, root, count
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
            data = self.store.retried("read", url, attempt)
        except ObjectNotFoundError:
            raise ManifestError(f"{info.where}: its sample sums {url} are missing; restore them or rerun "
                                f"'climbstream manifest'") from None
        return sample_sums.decode(data, url, info.samples)
