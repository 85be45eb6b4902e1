"""WebDataset tar shards: a one-pass scan that records where each sample's tokens live.

A tar stores each member's data at a fixed byte offset, so once the offsets of the
`<key>.tokens.npy` members (plus the .npy header length) are known, sample j is one
byte-range read of exactly `seq_len * itemsize` bytes, with nothing before it decoded.
The scan runs once, at `prepare` or `manifest` time, and the offsets go into the
manifest (`token_offsets`: a {start, stride, count} progression when the members are
evenly spaced, as `prepare` writes them, else an explicit list).
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from climbstream.errors import ManifestError
from climbstream.formats.mds import ShardFormatError


@dataclass(frozen=True)
class TarSample:
    key: str
    data_offset: int  # absolute offset of the first token value in the tar
    length: int  # number of tokens
    dtype: str  # numpy dtype string, e.g. "<u2"
    lang: str | None


def split_key(name: str) -> tuple[str, str]:
    """webdataset's rule: the key is the path up to the first dot of the basename."""
    head, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{head}/{stem}" if head else stem), ext


def scan_tar(fileobj: BinaryIO, where: str, tokens_ext: str = "tokens.npy") -> list[TarSample]:
    """Scan a tar once and return its samples in order.

    Every sample must have a `<key>.<tokens_ext>` member holding a 1-D integer .npy array.
    Raises ShardFormatError naming the shard (and sample key) otherwise.
    """
    samples: list[TarSample] = []
    pending: dict[str, dict] = {}
    order: list[str] = []
    end_of_members = 0
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as tar:
            size = _size(fileobj)
            for member in tar:
                end_of_members = member.offset_data + -(-member.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                if member.isfile() and member.offset_data + member.size > size:
                    raise ShardFormatError(f"{where}: member {member.name!r} runs past the end of the file; "
                                           f"the shard is truncated: re-copy or rewrite it")
                if not member.isfile():
                    continue
                key, ext = split_key(member.name)
                if key not in pending:
                    pending[key] = {}
                    order.append(key)
                if ext == tokens_ext:
                    pending[key]["tokens"] = _npy_location(tar, member, where)
                elif ext == "lang.txt":
                    pending[key]["lang"] = tar.extractfile(member).read().decode("utf-8").strip()
    except (tarfile.TarError, EOFError) as err:
        raise ShardFormatError(f"{where}: not a readable uncompressed tar ({err}); the shard is "
                               f"truncated or corrupted (compressed .tar.gz cannot be range-read: "
                               f"recompress as plain .tar)") from None
    _check_complete(fileobj, end_of_members, where)
    for key in order:
        entry = pending[key]
        if "tokens" not in entry:
            raise ShardFormatError(f"{where}: sample {key!r} has no '{tokens_ext}' member; pass "
                                   f"the token member's extension")
        offset, length, dtype = entry["tokens"]
        samples.append(TarSample(key, offset, length, dtype, entry.get("lang")))
    return samples


def _size(fileobj: BinaryIO) -> int:
    here = fileobj.tell()
    size = fileobj.seek(0, os.SEEK_END)
    fileobj.seek(here)
    return size


def _check_complete(fileobj: BinaryIO, end_of_members: int, where: str) -> None:
    """A tar ends with two zero blocks after its last member; tarfile stops quietly at a
    header cut short, so without this check a truncated shard lists fewer samples."""
    here = fileobj.tell()
    fileobj.seek(end_of_members)
    marker = fileobj.read(2 * tarfile.BLOCKSIZE)
    fileobj.seek(here)
    if len(marker) < 2 * tarfile.BLOCKSIZE or marker.strip(b"\0"):
        raise ShardFormatError(f"{where}: the tar has no end-of-archive marker after its last complete member "
                               f"(byte {end_of_members}); the shard is truncated: re-copy or rewrite it")


def _npy_location(tar: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> tuple[int, int, str]:
    f = tar.extractfile(member)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except ValueError as err:
        raise ShardFormatError(f"{where}: member {member.name!r} is not a valid .npy array "
                               f"({err}); the shard is corrupted") from None
    if len(shape) != 1 or dtype.kind not in "iu" or dtype.hasobject:
        raise ShardFormatError(f"{where}: member {member.name!r} holds a {dtype} array of shape "
                               f"{shape}; token arrays must be 1-D integers")
    header = f.tell()
    if header + shape[0] * dtype.itemsize != member.size:
        raise ShardFormatError(f"{where}: member {member.name!r} is truncated; the shard is corrupted")
    return member.offset_data + header, int(shape[0]), dtype.str


def encode_offsets(offsets: list[int]) -> dict | list[int]:
    """Compact form for the manifest: an arithmetic progression when possible."""
    if len(offsets) >= 2:
        stride = offsets[1] - offsets[0]
        if all(b - a == stride for a, b in zip(offsets, offsets[1:])):
            return {"start": offsets[0], "stride": stride, "count": len(offsets)}
    if len(offsets) == 1:
        return {"start": offsets[0], "stride": 0, "count": 1}
    return list(offsets)


def token_offset(encoded: dict | list, index: int, where: str) -> int:
    """The byte offset of sample `index`'s tokens from the manifest's `token_offsets`."""
    if isinstance(encoded, dict):
        if not 0 <= index < encoded["count"]:
            raise ManifestError(f"{where}: sample {index} out of range (shard has {encoded['count']})")
        return int(encoded["start"]) + index * int(encoded["stride"])
    if not 0 <= index < len(encoded):
        raise ManifestError(f"{where}: sample {index} out of range (shard has {len(encoded)})")
    return int(encoded[index])
