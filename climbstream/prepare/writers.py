"""Shard writers for one (language, split): the peers' own writers, plus manifest entries.

MDS goes through `streaming.MDSWriter` and tar through `webdataset.ShardWriter`, so their
readers read our shards. Each writer cuts shards by sample count (fixed-length samples
make a byte budget an exact sample count) and, when finished, returns the manifest's
SHARD entries with sha256, the byte offsets that range reads need and the per-sample
checksums that verify them (`<shard>.sums`, formats/sample_sums.py).

Layout under the corpus root: `<lang>/<split>/shard.00000.mds` + `index.json` (MDS) or
`<lang>/<split>/shard-000000.tar` (tar), with tar keys `<lang>-<split>-<shard:06d>-<index:07d>`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np

from climbstream.errors import ConfigError
from climbstream.formats.mds import parse_header
from climbstream.formats.wds import encode_offsets, scan_tar


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab <= 65535), else int32."""
    return np.dtype(np.uint16) if vocab_size <= 65535 else np.dtype(np.int32)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


class SplitWriter:
    """Writes the samples of one (lang, split) into shards; `finish()` returns SHARD entries."""

    def __init__(self, root: str, lang: str, split: str, seq_len: int, dtype: np.dtype, shard_samples: int):
        if shard_samples < 1:
            raise ConfigError(f"shard_samples must be >= 1, got {shard_samples}")
        self.root, self.lang, self.split = root, lang, split
        self.seq_len, self.dtype, self.shard_samples = seq_len, np.dtype(dtype), shard_samples
        self.rel = f"{lang}/{split}"
        self.folder = os.path.join(root, lang, split)
        self.count = 0

    def write(self, tokens: np.ndarray) -> None:
        raise NotImplementedError

    def finish(self) -> list[dict]:
        raise NotImplementedError


class MdsSplitWriter(SplitWriter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._writer = None

    def write(self, tokens: np.ndarray) -> None:
        if self._writer is None:
            from climbstream.extras import require

            MDSWriter = require("streaming", "writing MDS shards (--format mds)").MDSWriter
            columns = {"tokens": f"ndarray:{self.dtype.name}", "lang": "str"}
            self._writer = MDSWriter(out=self.folder, columns=columns, size_limit=None)
        elif self.count % self.shard_samples == 0:
            self._cut_shard()
        self._writer.write({"tokens": np.ascontiguousarray(tokens, self.dtype), "lang": self.lang})
        self.count += 1

    def _cut_shard(self) -> None:
        """End the current shard: the same two calls MDSWriter makes at its size limit."""
        self._writer.flush_shard()
        self._writer._reset_cache()

    def finish(self) -> list[dict]:
        if self._writer is None:
            return []
        if self._writer.new_samples:  # what finish() would do first, done before the drain
            self._cut_shard()
        _drain_uploads(self._writer)
        self._writer.finish()
        return mds_shard_entries(self.folder, self.rel, self.seq_len)


def _drain_uploads(writer, timeout_s: float = 600.0) -> None:
    """Wait, a millisecond at a time, for MDSWriter's upload queue to empty.

    MDSWriter hands every finished shard to a thread pool (a no-op upload when writing
    locally), and `finish()` sleeps a whole second whenever that queue is not empty yet,
    which it never is right after the last shard is flushed (the pool's thread is still
    waiting for the GIL): one process preparing 16 languages (32 writers) lost about 12 s
    of 15.9 to those sleeps.
    """
    queue = getattr(getattr(writer, "executor", None), "_work_queue", None)
    deadline = time.monotonic() + timeout_s
    while queue is not None and queue.qsize() > 0 and time.monotonic() < deadline:
        time.sleep(0.001)


def mds_shard_entries(folder: str, rel: str, seq_len: int) -> list[dict]:
    """SHARD entries for an MDS folder (index.json + shards), with header_bytes for range reads."""
    with open(os.path.join(folder, "index.json")) as f:
        index = json.load(f)
    entries = []
    for shard in index["shards"]:
        name = shard["raw_data"]["basename"]
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            head = f.read(4 + 4 * (shard["samples"] + 1))
            first = int(np.frombuffer(head[4:8], np.uint32)[0])
            head += f.read(max(0, first - len(head)))
        size = os.path.getsize(path)
        header = parse_header(head, path, shard["samples"], size)
        ranges = [header.sample_range(j) for j in range(header.num_samples)]
        entries.append({"path": f"{rel}/{name}", "samples": shard["samples"],
                        "tokens": shard["samples"] * seq_len, "bytes": size,
                        "sha256": file_sha256(path), "header_bytes": header.header_bytes,
                        "sample_sums": write_sample_sums(path, f"{rel}/{name}", ranges, header.header_bytes)})
    return entries


def write_sample_sums(path: str, rel: str, ranges: list[tuple[int, int]], header_bytes: int = 0) -> dict:
    """Write `<path>.sums` (formats/sample_sums.py: what verifies range reads); its manifest entry."""
    from climbstream.formats import sample_sums

    with open(path, "rb") as f:
        blob = sample_sums.of_ranges(f.read(), ranges, header_bytes)
    with open(path + sample_sums.SUFFIX, "wb") as f:
        f.write(blob)
    return sample_sums.sidecar_entry(rel, blob)


class WdsSplitWriter(SplitWriter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._writer = None
        self._paths: list[str] = []

    def write(self, tokens: np.ndarray) -> None:
        if self._writer is None:
            import webdataset as wds

            os.makedirs(self.folder, exist_ok=True)
            pattern = os.path.join(self.folder, "shard-%06d.tar")
            # mtime fixed so that the same corpus gives byte-identical shards (same sha256); an int,
            # since a float mtime makes tarfile add a 1 KiB pax header to every member.
            self._writer = wds.ShardWriter(pattern, maxcount=self.shard_samples, maxsize=float("inf"),
                                           verbose=0, mtime=0, post=self._paths.append)
        shard, index = divmod(self.count, self.shard_samples)
        key = f"{self.lang}-{self.split}-{shard:06d}-{index:07d}"
        arr = np.ascontiguousarray(tokens, self.dtype)
        self._writer.write({"__key__": key, "tokens.npy": arr, "lang.txt": self.lang})
        self.count += 1

    def finish(self) -> list[dict]:
        if self._writer is None:
            return []
        self._writer.close()
        return [tar_shard_entry(path, f"{self.rel}/{os.path.basename(path)}", self.seq_len)
                for path in sorted(self._paths)]


def tar_shard_entry(path: str, rel: str, seq_len: int, tokens_ext: str = "tokens.npy") -> dict:
    """The SHARD entry of one tar: scans it once for token offsets, checks lengths, hashes it."""
    from climbstream.formats.mds import ShardFormatError

    with open(path, "rb") as f:
        samples = scan_tar(f, path, tokens_ext)
    dtypes = {s.dtype for s in samples}
    if len(dtypes) > 1:
        raise ShardFormatError(f"{path}: token arrays mix dtypes {sorted(dtypes)}; use one dtype per shard")
    for i, s in enumerate(samples):
        if s.length != seq_len:
            raise ShardFormatError(f"{path}: sample {i} ({s.key!r}) has {s.length} tokens, expected "
                                   f"seq_len {seq_len}; every sample must be packed to seq_len")
    ranges = [(s.data_offset, s.data_offset + s.length * np.dtype(s.dtype).itemsize) for s in samples]
    return {"path": rel, "samples": len(samples), "tokens": len(samples) * seq_len,
            "bytes": os.path.getsize(path), "sha256": file_sha256(path),
            "tokens_dtype": dtypes.pop() if dtypes else "<u2",
            "token_offsets": encode_offsets([s.data_offset for s in samples]),
            "sample_sums": write_sample_sums(path, rel, ranges)}


def open_split_writer(fmt: str, root: str, lang: str, split: str, seq_len: int, dtype: np.dtype,
                      shard_samples: int) -> SplitWriter:
    if fmt == "mds":
        return MdsSplitWriter(root, lang, split, seq_len, dtype, shard_samples)
    if fmt == "wds":
        return WdsSplitWriter(root, lang, split, seq_len, dtype, shard_samples)
    raise ConfigError(f"format must be 'mds' or 'wds', got {fmt!r}")
