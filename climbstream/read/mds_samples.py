"""Samples of MDS shards: the header read once per shard, then one read per sample.

Parsed headers are kept for the most recently read MAX_HEADERS shards: a header costs
about 8 bytes per sample once parsed (uint64 offsets), and a range reader of 1,000
languages on many nodes touches a few new shards every global batch, so a process that
reads for weeks would otherwise grow without bound (the same bound as the sample sums,
read/range_sums.py).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from climbstream.read.byte_sources import HEADER, ByteSource
from climbstream.formats.manifest import ShardInfo
from climbstream.formats.mds import MdsHeader, decode_column, header_prefix_bytes, parse_header
from climbstream.read.read_modes import stored_bytes


MAX_HEADERS = 4096


class MdsSamples:
    """`read(info, index, source, columns) -> (tokens, {column: value})` for MDS shards."""

    def __init__(self, tokens_field: str):
        self.tokens_field = tokens_field
        self.forget()

    def forget(self) -> None:
        """Drop the headers read so far (a new process re-reads what it needs)."""
        self._headers = OrderedDict()
        self._lock = threading.Lock()  # read/range_batch.py reads headers of several shards at once

    def read(self, info: ShardInfo, index: int, source: ByteSource,
             columns: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
        header = self._header_of(info, source)
        start, end = header.sample_range(index)
        sample, where = source.read(start, end, index), f"{info.where} sample {index}"
        extra = {name: column_value(decode_column(sample, header, name, where)) for name in columns}
        return decode_column(sample, header, self.tokens_field, where).reshape(-1), extra

    def cached_urls(self) -> list[str]:
        """The shards whose parsed headers this process keeps, least recently used first."""
        with self._lock:
            return list(self._headers)

    def __getstate__(self) -> dict:
        return {"tokens_field": self.tokens_field}  # headers and lock are per process

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.forget()

    def locate(self, info: ShardInfo, index: int, source: ByteSource) -> tuple[int, int]:
        """Bytes [start, end) of sample `index` in the shard (reading its header if need be)."""
        return self._header_of(info, source).sample_range(index)

    def _header_of(self, info: ShardInfo, source: ByteSource) -> MdsHeader:
        with self._lock:
            header = self._headers.get(info.url)
            if header is not None:
                self._headers.move_to_end(info.url)
                return header
        header = self._header(info, source)
        with self._lock:
            self._headers[info.url] = header
            while len(self._headers) > MAX_HEADERS:
                self._headers.popitem(last=False)
        return header

    @staticmethod
    def _header(info: ShardInfo, source: ByteSource) -> MdsHeader:
        stored = stored_bytes(info)
        size = info.extra.get("header_bytes") or header_prefix_bytes(info.samples) + 4096
        head = source.read(0, min(size, stored), HEADER)
        first = int(np.frombuffer(head[4:8], np.uint32)[0]) if len(head) >= 8 else 0
        if len(head) < first <= stored:
            head = source.read(0, first, HEADER)
        return parse_header(head, info.where, info.samples, stored)


def column_value(value: np.ndarray):
    """A decoded MDS column as a sample field: scalars and strings as Python values, arrays
    as their own copy (the decoded array is a view on a buffer that is reused)."""
    if value.ndim == 0:
        return value.item()
    return np.array(value)
