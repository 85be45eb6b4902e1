"""Samples of MDS shards: the header read once per shard, then one read per sample."""

from __future__ import annotations

import numpy as np

from climbstream.read.byte_sources import HEADER, ByteSource
from climbstream.formats.manifest import ShardInfo
from climbstream.formats.mds import MdsHeader, decode_column, header_prefix_bytes, parse_header
from climbstream.read.read_modes import stored_bytes


class MdsSamples:
    """`read(info, index, source, columns) -> (tokens, {column: value})` for MDS shards."""

    def __init__(self, tokens_field: str):
        self.tokens_field = tokens_field
        self._headers: dict[str, MdsHeader] = {}

    def forget(self) -> None:
        """Drop the headers read so far (a new process re-reads what it needs)."""
        self._headers = {}

    def read(self, info: ShardInfo, index: int, source: ByteSource,
             columns: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
        header = self._headers.get(info.url)
        if header is None:
            header = self._headers[info.url] = self._header(info, source)
        start, end = header.sample_range(index)
        sample, where = source.read(start, end, index), f"{info.where} sample {index}"
        extra = {name: column_value(decode_column(sample, header, name, where)) for name in columns}
        return decode_column(sample, header, self.tokens_field, where).reshape(-1), extra

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
