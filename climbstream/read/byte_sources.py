"""Where a sample's bytes come from: a file read in place, a held cached shard, or ranges.

Each source reads bytes [start, end) of one shard and raises ShardFormatError naming the
shard when fewer come back. The reader picks one per read (formats/read_modes.py says
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


class ByteSource:
    info: ShardInfo

    def read(self, start: int, end: int) -> bytes:
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

    def read(self, start: int, end: int) -> bytes:
        return self._whole(start, end, self.view[start:end])


class FileSource(ByteSource):
    """A local file read in place; opens `path` per call when no descriptor is given."""

    def __init__(self, path: str, info: ShardInfo, fd: int | None = None):
        self.path, self.info, self.fd = path, info, fd

    def read(self, start: int, end: int) -> bytes:
        if self.fd is None:
            with open(self.path, "rb", buffering=0) as f:
                data = os.pread(f.fileno(), end - start, start)
        else:
            data = os.pread(self.fd, end - start, start)
        return self._whole(start, end, data)


class RangeSource(ByteSource):
    """Byte-range requests to the store; `count(n)` is told of the bytes each one fetched."""

    def __init__(self, store, info: ShardInfo, count: Callable[[int], None]):
        self.store, self.info, self.count = store, info, count

    def read(self, start: int, end: int) -> bytes:
        data = self.store.read_bytes(self.info.url, start, end)
        self.count(len(data))
        if len(data) != end - start:
            raise ShardFormatError(f"{self.info.where}: shard is truncated (wanted bytes "
                                   f"{start}..{end}, got {len(data)}); rewrite it")
        return data
