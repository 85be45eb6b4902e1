"""Compressed shards, decompressed once per machine into the shard cache.

A sample cannot be cut out of a compressed shard without decompressing what precedes it,
so compressed shards (MDS written with `compression="zstd"` and the other codecs
`MDSWriter` offers) are read only through the cache: the download is checked against
the manifest's size and sha256 of the compressed file, then decompressed next to it; the
cache entry is the raw shard (its size is what counts against the cache limit), and
every reader of the machine reads that. Decompression is mosaicml-streaming's own
`decompress`, so every codec its writer writes is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from climbstream.errors import ConfigError
from climbstream.storage.store import TEMP_MARKER
from climbstream.storage.retry import IntegrityError


@dataclass(frozen=True)
class Unpack:
    """How a cached shard is made from its download: `algorithm`, and its raw size."""

    algorithm: str
    raw_bytes: int

    def into(self, packed_path: str, dest_path: str, url: str) -> None:
        """Decompress `packed_path` to `dest_path` (atomically); IntegrityError on a bad size."""
        with open(packed_path, "rb") as f:
            packed = f.read()
        try:
            raw = decompress(self.algorithm, packed)
        except ConfigError:
            raise
        except Exception as err:  # each codec raises its own error type
            raise IntegrityError(f"read {url}: cannot decompress ({self.algorithm}: {err}); the shard "
                                 f"is corrupted, rewrite it or rebuild the manifest") from None
        if len(raw) != self.raw_bytes:
            raise IntegrityError(f"read {url}: decompresses to {len(raw)} bytes, the manifest lists "
                                 f"{self.raw_bytes}; rebuild the manifest with 'climbstream manifest'")
        temp = dest_path + TEMP_MARKER + "unpack"
        with open(temp, "wb") as f:
            f.write(raw)
        os.replace(temp, dest_path)


def decompress(algorithm: str, data: bytes) -> bytes:
    """`data` decompressed with one of mosaicml-streaming's codecs (zstd, gz, bz2, br, snappy)."""
    from climbstream.extras import require

    compression = require("streaming.base.compression", f"reading {algorithm}-compressed MDS shards")
    if not compression.is_compression(algorithm):
        raise ConfigError(f"compression {algorithm!r} is not one mosaicml-streaming knows "
                          f"({', '.join(sorted(compression.get_compressions()))})")
    return compression.decompress(algorithm, data)
