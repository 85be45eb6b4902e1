"""MDS shards (mosaicml-streaming's joint format): header parsing and sample decoding.

The layout, as written by `streaming.MDSWriter` (uncompressed):

    num_samples: uint32 | offsets: uint32[num_samples + 1] | config JSON | samples

`offsets[j]..offsets[j+1]` is sample j, so sample j can be read with one byte-range
request once the header is known, without touching the samples before it. A sample is
`uint32 size per dynamic column` followed by each column's bytes; token columns use the
`ndarray[:dtype[:shape]]` encoding, decoded here directly (no copy beyond the int64 cast)
and through streaming's own decoders for any other encoding.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass

import numpy as np

from climbstream.errors import ManifestError

# streaming's NDArray encoding: integer codes for value and shape dtypes.
_VALUE_DTYPES = {8: "uint8", 9: "int8", 16: "uint16", 17: "int16", 18: "float16", 32: "uint32",
                 33: "int32", 34: "float32", 64: "uint64", 65: "int64", 66: "float64"}
_SHAPE_DTYPES = {0: "uint8", 1: "uint16", 2: "uint32", 3: "uint64"}


class ShardFormatError(ManifestError):
    """A shard's bytes do not match the MDS or tar layout (truncated or corrupted)."""


@dataclass(frozen=True)
class MdsHeader:
    """The parsed header of one MDS shard: sample offsets and column layout."""

    num_samples: int
    offsets: np.ndarray  # uint64[num_samples + 1], absolute byte offsets in the shard
    column_names: list
    column_encodings: list
    column_sizes: list
    header_bytes: int  # where the first sample starts

    def sample_range(self, index: int) -> tuple[int, int]:
        return int(self.offsets[index]), int(self.offsets[index + 1])


def header_prefix_bytes(num_samples: int) -> int:
    """Bytes of num_samples + offsets (the part before the config JSON)."""
    return 4 + 4 * (num_samples + 1)


def parse_header(head: bytes, where: str, expected_samples: int | None = None,
                 file_bytes: int | None = None) -> MdsHeader:
    """Parse the header from the first bytes of a shard (at least up to the first sample).

    Raises ShardFormatError naming `where` for a truncated or inconsistent header.
    """
    if len(head) < 8:
        raise ShardFormatError(f"{where}: shard is truncated ({len(head)} bytes); re-download or "
                               f"rewrite it and rebuild the manifest")
    n = int(np.frombuffer(head[:4], np.uint32)[0])
    if expected_samples is not None and n != expected_samples:
        raise ShardFormatError(
            f"{where}: shard header says {n} samples but the manifest lists {expected_samples}; "
            f"the shard is corrupted or changed after the manifest was written, rebuild it with "
            f"'climbstream manifest'"
        )
    end = header_prefix_bytes(n)
    if len(head) < end:
        raise ShardFormatError(f"{where}: shard is truncated inside its offset table; "
                               f"re-download or rewrite it")
    offsets = np.frombuffer(head[4:end], np.uint32).astype(np.uint64)
    first = int(offsets[0])
    if first < end or np.any(np.diff(offsets.astype(np.int64)) < 0) or (
            file_bytes is not None and int(offsets[-1]) != file_bytes):
        raise ShardFormatError(
            f"{where}: corrupted MDS offset table (first sample at {first}, last end at "
            f"{int(offsets[-1])}, file has {file_bytes} bytes); re-download or rewrite the shard"
        )
    if len(head) < first:
        raise ShardFormatError(f"{where}: shard is truncated inside its config; re-download it")
    try:
        config = json.loads(bytes(head[end:first]))
        names, encodings = list(config["column_names"]), list(config["column_encodings"])
        sizes = list(config["column_sizes"])
    except (ValueError, KeyError, TypeError) as err:
        raise ShardFormatError(f"{where}: corrupted MDS config block ({err}); re-download or "
                               f"rewrite the shard") from None
    return MdsHeader(n, offsets, names, encodings, sizes, first)


def decode_column(sample: bytes | memoryview, header: MdsHeader, column: str, where: str):
    """Return column `column` of one encoded sample (numpy array for ndarray columns)."""
    if column not in header.column_names:
        raise ManifestError(
            f"{where}: MDS shard has no column {column!r} (columns: {header.column_names}); "
            f"name one of those (the token column with 'manifest --column', others in columns=)"
        )
    sizes, pos = [], 0
    for size in header.column_sizes:
        if size:
            sizes.append(int(size))
        else:
            if pos + 4 > len(sample):
                raise ShardFormatError(f"{where}: sample is truncated; the shard is corrupted")
            sizes.append(int(np.frombuffer(sample[pos:pos + 4], np.uint32)[0]))
            pos += 4
    for name, encoding, size in zip(header.column_names, header.column_encodings, sizes):
        if name == column:
            if pos + size > len(sample):
                raise ShardFormatError(f"{where}: sample is truncated; the shard is corrupted")
            return _decode_value(encoding, sample[pos:pos + size], where)
        pos += size
    raise AssertionError("unreachable")  # column was found above


UNSAFE_ENCODINGS = ("pkl",)  # decoding runs code chosen by whoever wrote the shard


def _decode_value(encoding: str, data, where: str):
    if encoding == "ndarray" or encoding.startswith("ndarray:"):
        return decode_ndarray(encoding, data, where)
    if encoding in UNSAFE_ENCODINGS:
        raise ShardFormatError(
            f"{where}: the column is pickle-encoded ('{encoding}'), and unpickling runs code from the "
            f"shard; climbstream refuses it. Rewrite the shard with an ndarray column "
            f"(MDSWriter(columns={{'tokens': 'ndarray:uint16'}}))"
        )
    from climbstream.extras import require

    mds_decode = require("streaming.base.format.mds.encodings", f"{where}: decoding an MDS '{encoding}' column").mds_decode
    return np.asarray(mds_decode(encoding, bytes(data)))


@functools.lru_cache(maxsize=64)
def _ndarray_encoding(encoding: str) -> tuple[str | None, tuple[int, ...] | None]:
    parts = encoding.split(":")
    dtype = parts[1] if len(parts) > 1 and parts[1] else None
    shape = tuple(int(x) for x in parts[2].split(",")) if len(parts) > 2 else None
    return dtype, shape


def decode_ndarray(encoding: str, data, where: str) -> np.ndarray:
    """Decode streaming's `ndarray[:dtype[:shape]]` encoding; a view on `data` (no copy)."""
    dtype, shape = _ndarray_encoding(encoding)
    pos = 0
    try:
        if dtype is None:
            dtype = _VALUE_DTYPES[data[0]]
            pos = 1
        if shape is None:
            byte = data[pos]
            ndim, shape_dtype = byte >> 2, _SHAPE_DTYPES[byte % 4]
            width = np.dtype(shape_dtype).itemsize
            shape = tuple(np.frombuffer(data[pos + 1:pos + 1 + ndim * width], shape_dtype).tolist())
            pos += 1 + ndim * width
        count = math.prod(shape)
        arr = np.frombuffer(data, dtype, count=count, offset=pos)
    except (KeyError, IndexError, ValueError) as err:
        raise ShardFormatError(f"{where}: cannot decode an ndarray sample ({err}); the shard is "
                               f"corrupted, re-download or rewrite it") from None
    return arr.reshape(shape)
