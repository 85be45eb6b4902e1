"""Samples of tar shards: one read of exactly seq_len tokens at the offset the manifest lists."""

from __future__ import annotations

import numpy as np

from climbstream.errors import ConfigError, ManifestError
from climbstream.read.byte_sources import ByteSource
from climbstream.formats.manifest import ShardInfo
from climbstream.formats.wds import token_offset


class TarSamples:
    """`read(info, index, source, columns) -> (tokens, {})` for tar shards (tokens only)."""

    def __init__(self, seq_len: int):
        self.seq_len = seq_len

    def forget(self) -> None:
        """Nothing is kept between reads."""

    def read(self, info: ShardInfo, index: int, source: ByteSource,
             columns: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
        if columns:
            raise ConfigError(f"{info.where}: columns {list(columns)} asked for, but tar shards are indexed "
                              f"by their token member only; extra columns need MDS shards")
        start, end = self.locate(info, index, source)
        return np.frombuffer(source.read(start, end, index), np.dtype(info.extra.get("tokens_dtype", "<u2"))), {}

    def locate(self, info: ShardInfo, index: int, source: ByteSource | None = None) -> tuple[int, int]:
        """Bytes [start, end) of sample `index`'s tokens in the shard, from the manifest."""
        offsets = info.extra.get("token_offsets")
        if offsets is None:
            raise ManifestError(f"{info.where}: tar shard lists no token_offsets; rebuild the "
                                f"manifest with 'climbstream manifest --format wds'")
        start = token_offset(offsets, index, info.where)
        return start, start + self.seq_len * np.dtype(info.extra.get("tokens_dtype", "<u2")).itemsize
