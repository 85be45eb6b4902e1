"""Where a sample's bytes come from: a file read in place, a held cached shard, or ranges.

Each source reads bytes [start, end) of one shard and raises ShardFormatError naming the
shard when fewer come back. The reader picks one per read (read/read_modes.py says
which mode a corpus is read in); the sample formats (mds_samples.py, tar_samples.py) only
ever see this interface.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from typing import Callable

from climbstream.formats.manifest import ShardInfo
from climbstream.formats.mds import ShardFormatError
from climbstream.formats.sample_sums import SampleSums, checksum
from climbstream.storage.retry import IntegrityError, SuspectBytes


HEADER = -1  # `sample` of a read that fetches an MDS shard's header


class ByteSource:
    info: ShardInfo

    def read(self, start: int, end: int, sample: int | None = None) -> bytes:
        """Bytes [start, end) of the shard; `sample` says which sample they are (or HEADER),
        so a source that can check them against the shard's sample sums does."""
        raise NotImplementedError

    def _whole(self, start: int, end: int, data: bytes) -> bytes:
        """`data`, or a ShardFormatError when the shard ended before `end`."""
        if len(data) != end - start:
            raise ShardFormatError(f"{self.info.where}: shard is truncated (wanted bytes "
                                   f"{start}..{end}); restore it or rebuild the manifest")
        return data


class HeldSource(ByteSource):
    """A cached shard held for a batch, read into memory or mapped: a sample read is a copy, no syscall.

    Why not pread per sample: each syscall gives up the GIL, and with the prefetch
    threads busy (HTTP, cache bookkeeping) the reading thread waited up to a switch
    interval to get it back, once per sample: pread and open were a fifth of a worker's
    time over S3. Shards up to WHOLE_READ_BYTES are read whole (one syscall); larger
    ones are mapped (mapping and unmapping a small shard for one sample cost more than
    reading it). Cached shards are replaced atomically and unlinked, never truncated in
    place, so a mapping stays valid while it is held.
    """

    WHOLE_READ_BYTES = 1 << 20

    def __init__(self, view, info: ShardInfo):
        self.view, self.info = view, info

    @classmethod
    def open(cls, path: str, info: ShardInfo, stack: contextlib.ExitStack) -> "HeldSource":
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            if size <= cls.WHOLE_READ_BYTES:
                return cls(f.read(), info)
            view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        stack.callback(view.close)
        return cls(view, info)

    def read(self, start: int, end: int, sample: int | None = None) -> bytes:
        return self._whole(start, end, self.view[start:end])


class FileSource(ByteSource):
    """A local file read in place; opens `path` per call when no descriptor is given."""

    def __init__(self, path: str, info: ShardInfo, fd: int | None = None):
        self.path, self.info, self.fd = path, info, fd

    def read(self, start: int, end: int, sample: int | None = None) -> bytes:
        if self.fd is None:
            with open(self.path, "rb", buffering=0) as f:
                data = os.pread(f.fileno(), end - start, start)
        else:
            data = os.pread(self.fd, end - start, start)
        return self._whole(start, end, data)


class RangeSource(ByteSource):
    """Byte-range requests to the store; `count(n)` is told of the bytes each one fetched.

    With the shard's `sums` (formats/sample_sums.py), a read of a sample or of the header
    is checked against them; a mismatch or a short answer is fetched again under the
    store's retry policy, like a corrupted download, and one on every attempt is an
    IntegrityError naming the shard and the sample. A header read returns the header,
    bytes [0, sums.header_bytes) (at most `end` of them), through `index`
    (read/range_sums.py: once per node with a cache). Without sums, bytes are returned as
    they came (the reader warns about unverified ranges once per corpus).
    """

    def __init__(self, store, info: ShardInfo, count: Callable[[int], None], sums: SampleSums | None = None,
                 index=None):
        self.store, self.info, self.count, self.sums, self.index = store, info, count, sums, index

    def read(self, start: int, end: int, sample: int | None = None) -> bytes:
        if self.sums is None or sample is None:
            return self._fetch(start, end)
        if sample != HEADER:
            return self._checked(start, end, sample)
        if start != 0:
            raise ValueError("a header read starts at byte 0")
        def fetch() -> bytes:
            return self._checked(0, self.sums.header_bytes, HEADER)

        head = fetch() if self.index is None else self.index.header(self.info, self.sums, fetch)
        return head[:end]

    def _checked(self, start: int, end: int, sample: int) -> bytes:
        """Bytes [start, end), checked against the sums (`sample`: its index, or HEADER)."""
        if sample == HEADER:
            expected, what = self.sums.header_sum, "header"
        else:
            expected, what = self.sums.sample(sample), f"sample {sample}"

        def attempt() -> bytes:
            try:
                data = self._fetch(start, end)
            except ShardFormatError as err:  # cut short in transit
                raise SuspectBytes(IntegrityError(str(err))) from None
            got = checksum(data)
            if got != expected:
                raise SuspectBytes(IntegrityError(
                    f"{self.info.where} {what}: checksum mismatch in bytes {start}..{end} "
                    f"(crc32 expected {expected:08x}, got {got:08x}); the store or the network corrupts "
                    f"the answer, or the shard changed after the manifest was written (then rerun "
                    f"'climbstream manifest')"))
            return data

        return self.store.retried("read", self.info.url, attempt)

    def _fetch(self, start: int, end: int) -> bytes:
        data = self.store.read_bytes(self.info.url, start, end)
        self.count(len(data))
        if len(data) != end - start:
            raise ShardFormatError(f"{self.info.where}: shard is truncated (wanted bytes "
                                   f"{start}..{end}, got {len(data)}); rewrite it")
        return data


class FetchedSource(ByteSource):
    """A sample's bytes fetched already (read/range_batch.py); any other read goes to `source`."""

    def __init__(self, source: ByteSource, index: int, data: bytes):
        self.source, self.info, self.index, self.data = source, source.info, index, data

    def read(self, start: int, end: int, sample: int | None = None) -> bytes:
        if sample == self.index and end - start == len(self.data):
            return self.data
        return self.source.read(start, end, sample)
