"""Random access to one sample of one shard: `open_reader(manifest).read(lang, split, shard, i)`.

Three ways to get the bytes, chosen per corpus by `read_mode`:

- local corpora are always read in place with `os.pread` (never copied);
- "range": a byte-range request for just the sample (MDS: offsets from the shard header,
  fetched once per shard; tar: token offsets recorded in the manifest). Block-exact mixing
  makes every worker read all K languages at once, so with hundreds of languages and big
  shards this is what scales;
- "shard": whole-shard downloads through the node-local cache and prefetcher (sha256
  verified on download), which wins when shards are small or read nearly whole.
- "auto": local in place; remote "shard" when the cache holds K x (2 x prefetch_depth + 1) of
  the largest shards, else "range".

Compressed MDS shards (local or remote) are always read in "shard" mode: decompressed once
per machine into the cache (storage/unpack.py), so they need a cache_dir.

A reader holds no boto3 client, file descriptor or thread until its first read, and drops
them when pickled or forked, so it can be created before DataLoader workers start and is
safe inside each of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

from climbstream.errors import ConfigError, ManifestError
from climbstream.formats.manifest import Manifest, ShardInfo, inside_root
from climbstream.storage.remote import is_remote, local_path
from climbstream.formats.mds import MdsHeader, ShardFormatError, decode_column, header_prefix_bytes, parse_header
from climbstream.formats.wds import token_offset
from climbstream.storage.unpack import Unpack

log = logging.getLogger(__name__)

READ_MODES = ("auto", "range", "shard")
VERIFY_MODES = ("auto", "size", "sha256")
_MAX_OPEN_FILES = 128


def open_reader(manifest: Manifest, cache_dir: str | None = None, cache_limit_bytes: int | None = None,
                prefetch_depth: int = 2, storage: Any = None, read_mode: str = "auto",
                verify: str = "auto", readers_sharing_cache: int = 1) -> "SampleReader":
    """A SampleReader for `manifest`; see the module docstring for the read modes.

    `verify`: "auto" hashes each local shard once per process before its first read
    (downloads are always hashed by the cache); byte-range reads cannot be hashed (the
    manifest has one sha256 per shard), so when "auto" ends up reading ranges it logs a
    warning saying how to get verified reads. "sha256" is the same but refuses range
    reads. "size" checks sizes and headers only. Hashing costs one sequential read of each
    shard per process (sha256 ran at 1.5 GB/s here), against training on its samples.
    `readers_sharing_cache`: how many readers of
    this machine (DataLoader workers x local ranks) use the same cache at once; the
    capacity check and the "auto" choice count all of their shards in use.
    """
    return SampleReader(manifest, cache_dir, cache_limit_bytes, prefetch_depth, storage, read_mode, verify,
                        readers_sharing_cache)


class SampleReader:
    """Reads fixed-length token samples: `read(lang, split, shard, index) -> int64[seq_len]`."""

    def __init__(self, manifest: Manifest, cache_dir: str | None, cache_limit_bytes: int | None,
                 prefetch_depth: int, storage: Any, read_mode: str, verify: str, readers_sharing_cache: int = 1):
        if read_mode not in READ_MODES:
            raise ConfigError(f"read_mode must be one of {list(READ_MODES)}, got {read_mode!r}")
        if verify not in VERIFY_MODES:
            raise ConfigError(f"verify must be one of {list(VERIFY_MODES)}, got {verify!r}")
        if prefetch_depth < 0:
            raise ConfigError(f"prefetch_depth must be >= 0, got {prefetch_depth}")
        self.manifest = manifest
        self.cache_dir = cache_dir
        self.cache_limit_bytes = cache_limit_bytes
        self.prefetch_depth = prefetch_depth
        self.readers_sharing_cache = max(1, int(readers_sharing_cache))
        self.storage = storage
        self.requested_mode = read_mode
        self.local = not is_remote(manifest.root)
        if _compressed(manifest):
            self.mode = _compressed_mode(manifest, read_mode, cache_dir)
        elif self.local:
            self.mode = "local"
        else:
            self.mode = _pick_remote_mode(manifest, read_mode, cache_dir, cache_limit_bytes, self._shards_in_use())
        if self.mode == "range" and verify != "size":
            _unverified_ranges(manifest, verify, read_mode)
        self.verify = "sha256" if verify == "auto" else verify
        self.tokens_field = manifest.data.get("tokens_field", "tokens")
        self._reset()

    # -- lifecycle: nothing opened before the first read, nothing carried across fork ------
    def _reset(self) -> None:
        self._pid = os.getpid()
        self._files: OrderedDict[str, int] = OrderedDict()
        self._verified: set[str] = set()
        self._headers: dict[str, MdsHeader] = {}
        self._store = None
        self._prefetcher = None
        self._held: dict[str, _Source] | None = None  # url -> the cached shard's bytes, inside holding()
        self._held_stack = contextlib.ExitStack()  # releases them when the block ends
        self._wait_s = 0.0
        self._range_bytes = 0
        self._reads = 0

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()

    def _check_process(self) -> None:
        if self._pid != os.getpid():  # forked: the parent's descriptors and clients are not ours
            self._reset()

    def close(self) -> None:
        """Close files and stop the prefetcher; the reader reopens lazily if used again."""
        if self._pid == os.getpid():
            for fd in self._files.values():
                os.close(fd)
            self._release_held()
            if self._prefetcher is not None and hasattr(self._prefetcher, "close"):
                self._prefetcher.close()
        self._reset()

    def __enter__(self) -> "SampleReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- public API ----------------------------------------------------------------------
    def read(self, lang: str, split: str, shard: int, index: int) -> np.ndarray:
        """Sample `index` of shard number `shard` of (lang, split) as int64[seq_len]."""
        return self.read_with(lang, split, shard, index, ())[0]

    def read_with(self, lang: str, split: str, shard: int, index: int,
                  columns: tuple[str, ...]) -> tuple[np.ndarray, dict]:
        """`read`, and the sample's other MDS `columns` by name (decoded from the same bytes)."""
        self._check_process()
        info = self._shard(lang, split, shard)
        if not 0 <= index < info.samples:
            raise ManifestError(f"{info.where}: sample {index} out of range (shard has {info.samples})")
        start = time.perf_counter()
        if self.mode == "shard" and self._held is not None:
            tokens, extra = self._read_sample(info, index, self._held_source(info), columns)
        elif self.mode == "shard":
            with self._get_prefetcher().get(info.url, info.bytes, info.sha256, _unpack(info)) as path:
                tokens, extra = self._read_sample(info, index, _FileSource(path, info), columns)
        else:
            tokens, extra = self._read_sample(info, index, self._source(info), columns)
        self._wait_s += time.perf_counter() - start
        self._reads += 1
        if tokens.shape != (self.manifest.seq_len,):
            raise ShardFormatError(
                f"{info.where}: sample {index} has {tokens.size} tokens, expected seq_len "
                f"{self.manifest.seq_len}; the shard does not match its manifest, rebuild it with "
                f"'climbstream manifest'"
            )
        return tokens.astype(np.int64), extra

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Inside the block, each cached shard is acquired once and kept open until it ends.

        Acquiring a cached shard takes a file lock and reads its index entry; doing that
        for every sample cost more than the read itself (a third of the read time over
        S3). A batch reads at most a few shards per language, so the dataset reads each
        batch inside one `holding()` block and releases them all at its end: nothing is
        held between batches, so what is pinned stays what the capacity check counts.
        """
        self._check_process()
        if self.mode != "shard" or self._held is not None:
            yield
            return
        self._held = {}
        try:
            yield
        finally:
            self._release_held()

    def hint(self, upcoming: list[tuple[str, str, int]]) -> None:
        """Shards needed next, in need order; downloads ahead in "shard" mode."""
        self._check_process()
        if self.mode != "shard" or not upcoming:
            return
        wanted = []
        for lang, split, shard in upcoming:
            info = self._shard(lang, split, shard)
            wanted.append((info.url, info.bytes, info.sha256, _unpack(info)))
        self._get_prefetcher().want(wanted, replace=True)

    def metrics(self) -> dict:
        """{wait_s, cache_hit_rate, bytes_downloaded, cache_hits, cache_misses, mode, reads}.

        `wait_s` is time spent inside `read` (fetching and decoding). Local reads count as
        cache hits; range reads are neither hits nor misses.
        """
        out = {"wait_s": self._wait_s, "cache_hit_rate": 1.0 if self.local and self._reads else 0.0,
               "bytes_downloaded": self._range_bytes, "cache_hits": self._reads if self.local else 0,
               "cache_misses": 0, "mode": self.mode, "reads": self._reads}
        if self._prefetcher is not None:
            pm = self._prefetcher.metrics()
            for key in ("cache_hit_rate", "cache_hits", "cache_misses"):
                out[key] = pm[key]
            out["bytes_downloaded"] += int(pm["bytes_downloaded"])
        return out

    # -- internals -----------------------------------------------------------------------
    def _shard(self, lang: str, split: str, shard: int) -> ShardInfo:
        shards = self.manifest.shards(lang, split)
        if not 0 <= shard < len(shards):
            raise ManifestError(f"{self.manifest.where}: languages.{lang}.{split} has "
                                f"{len(shards)} shards, no shard {shard}")
        return shards[shard]

    def _read_sample(self, info: ShardInfo, index: int, source: "_Source",
                     columns: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
        if self.manifest.format == "mds":
            header = self._headers.get(info.url)
            if header is None:
                header = self._headers[info.url] = self._read_mds_header(info, source)
            start, end = header.sample_range(index)
            sample, where = source.read(start, end), f"{info.where} sample {index}"
            extra = {name: column_value(decode_column(sample, header, name, where)) for name in columns}
            return decode_column(sample, header, self.tokens_field, where).reshape(-1), extra
        if columns:
            raise ConfigError(f"{info.where}: columns {list(columns)} asked for, but tar shards are indexed "
                              f"by their token member only; extra columns need MDS shards")
        offsets = info.extra.get("token_offsets")
        dtype = np.dtype(info.extra.get("tokens_dtype", "<u2"))
        if offsets is None:
            raise ManifestError(f"{info.where}: tar shard lists no token_offsets; rebuild the "
                                f"manifest with 'climbstream manifest --format wds'")
        start = token_offset(offsets, index, info.where)
        data = source.read(start, start + self.manifest.seq_len * dtype.itemsize)
        return np.frombuffer(data, dtype), {}

    def _read_mds_header(self, info: ShardInfo, source: "_Source") -> MdsHeader:
        stored = _stored_bytes(info)
        size = info.extra.get("header_bytes") or header_prefix_bytes(info.samples) + 4096
        head = source.read(0, min(size, stored))
        first = int(np.frombuffer(head[4:8], np.uint32)[0]) if len(head) >= 8 else 0
        if len(head) < first <= stored:
            head = source.read(0, first)
        return parse_header(head, info.where, info.samples, stored)

    def _held_source(self, info: ShardInfo) -> "_Source":
        source = self._held.get(info.url)
        if source is None:
            path = self._held_stack.enter_context(
                self._get_prefetcher().get(info.url, info.bytes, info.sha256, _unpack(info)))
            source = self._held[info.url] = _HeldSource.open(path, info, self._held_stack)
        return source

    def _release_held(self) -> None:
        self._held = None
        self._held_stack.close()  # closes the files, then releases the shards, newest first

    def _source(self, info: ShardInfo) -> "_Source":
        if self.local:
            fd = self._files.get(info.url)
            if fd is None:
                fd = self._open_local(info)
            else:
                self._files.move_to_end(info.url)
            return _FileSource(local_path(info.url), info, fd)
        return _RangeSource(self._get_store(), info, self)

    def _open_local(self, info: ShardInfo) -> int:
        path = inside_root(local_path(info.url), self.manifest.root, info.where)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise ManifestError(f"{info.where}: shard file is missing; restore it or rebuild the "
                                f"manifest with 'climbstream manifest'") from None
        size = os.fstat(fd).st_size
        if size != info.bytes:
            os.close(fd)
            raise ShardFormatError(
                f"{info.where}: shard has {size} bytes but the manifest lists {info.bytes}; it is "
                f"truncated or changed, restore it or rebuild the manifest with 'climbstream manifest'"
            )
        if self.verify == "sha256" and info.url not in self._verified:
            try:
                check_sha256(fd, info)
            except ManifestError:
                os.close(fd)
                raise
            self._verified.add(info.url)
        self._files[info.url] = fd
        while len(self._files) > _MAX_OPEN_FILES:
            _, old = self._files.popitem(last=False)
            os.close(old)
        return fd

    def _get_store(self):
        if self._store is None:
            from climbstream.storage.remote import open_store

            self._store = open_store(self.manifest.root, self.storage)
        return self._store

    def _shards_in_use(self) -> int:
        """Shards pinned at once on this machine: readers x K x (2 x depth + 1).

        A batch is read inside one `holding()` block, so its shards (every worker reads all
        K languages at once; K x (depth + 1) are allowed for) are in use while it is read,
        and the prefetcher keeps K x depth more fetched ahead.
        """
        return self.readers_sharing_cache * len(self.manifest.languages) * (2 * self.prefetch_depth + 1)

    def _get_prefetcher(self):
        if self._prefetcher is None:
            from climbstream.storage.cache import ShardCache
            from climbstream.storage.prefetch import Prefetcher

            cache = ShardCache(self.cache_dir, limit_bytes=self.cache_limit_bytes)
            cache.check_capacity(_largest_shard_bytes(self.manifest), self._shards_in_use())
            window = len(self.manifest.languages) * self.prefetch_depth  # every batch reads all K languages
            self._prefetcher = Prefetcher(cache, self._get_store(), depth=window, threads=min(8, max(1, window)))
        return self._prefetcher


def column_value(value: np.ndarray):
    """A decoded MDS column as a sample field: scalars and strings as Python values, arrays
    as their own copy (the decoded array is a view on a buffer that is reused)."""
    if value.ndim == 0:
        return value.item()
    return np.array(value)


def check_sha256(fd: int, info: ShardInfo) -> None:
    """Hash a whole shard (read in 4 MiB chunks) and compare with the manifest."""
    digest, offset = hashlib.sha256(), 0
    while True:
        chunk = os.pread(fd, 1 << 22, offset)
        if not chunk:
            break
        digest.update(chunk)
        offset += len(chunk)
    got = digest.hexdigest()
    if got != info.sha256:
        raise ManifestError(
            f"{info.where}: sha256 mismatch (expected {info.sha256[:12]}..., got {got[:12]}...); "
            f"the shard changed after the manifest was written; restore it or rerun "
            f"'climbstream manifest'"
        )


class _Source:
    info: ShardInfo

    def read(self, start: int, end: int) -> bytes:
        raise NotImplementedError

    def _whole(self, start: int, end: int, data: bytes) -> bytes:
        """`data`, or a ShardFormatError when the shard ended before `end`."""
        if len(data) != end - start:
            raise ShardFormatError(f"{self.info.where}: shard is truncated (wanted bytes "
                                   f"{start}..{end}); restore it or rebuild the manifest")
        return data


class _HeldSource(_Source):
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
    def open(cls, path: str, info: ShardInfo, stack: contextlib.ExitStack) -> "_HeldSource":
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            if size <= cls.WHOLE_READ_BYTES:
                return cls(f.read(), info)
            view = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        stack.callback(view.close)
        return cls(view, info)

    def read(self, start: int, end: int) -> bytes:
        return self._whole(start, end, self.view[start:end])


class _FileSource(_Source):
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


class _RangeSource(_Source):
    def __init__(self, store, info: ShardInfo, reader: SampleReader):
        self.store, self.info, self.reader = store, info, reader

    def read(self, start: int, end: int) -> bytes:
        data = self.store.read_bytes(self.info.url, start, end)
        self.reader._range_bytes += len(data)
        if len(data) != end - start:
            raise ShardFormatError(f"{self.info.where}: shard is truncated (wanted bytes "
                                   f"{start}..{end}, got {len(data)}); rewrite it")
        return data


_WARNED_RANGES: set[str] = set()


def _unverified_ranges(manifest: Manifest, verify: str, read_mode: str) -> None:
    """Refuse (verify="sha256") or warn once per corpus (verify="auto") about unhashed range reads."""
    why = "read_mode='range'" if read_mode == "range" else "read_mode 'auto' chose byte ranges (no cache_dir, " \
                                                           "or a cache_limit below what the shards in use need)"
    if verify == "sha256":
        raise ConfigError(f"{manifest.where}: verify='sha256' cannot check byte-range reads ({why}); give a cache_dir "
                          f"with room for whole shards (read_mode='shard', hashed on download), or verify='auto'")
    if manifest.root not in _WARNED_RANGES:
        _WARNED_RANGES.add(manifest.root)
        log.warning("%s: %s; byte-range reads are not hashed (only whole shards can be). For verified reads "
                    "give a cache_dir with room for whole shards; verify='size' silences this", manifest.where, why)


def _pick_remote_mode(manifest: Manifest, read_mode: str, cache_dir: str | None,
                      cache_limit_bytes: int | None, shards_in_use: int) -> str:
    if read_mode == "shard" and cache_dir is None:
        raise ConfigError("read_mode='shard' needs a cache_dir for whole-shard downloads; "
                          "pass cache_dir or use read_mode='range'")
    if read_mode != "auto":
        return read_mode
    if cache_dir is None:
        return "range"
    largest = _largest_shard_bytes(manifest)
    needed = shards_in_use * largest
    if cache_limit_bytes is not None and needed > cache_limit_bytes:
        log.info("read_mode auto: %d shards in use of up to %d bytes exceed the cache limit %d; "
                 "reading byte ranges", shards_in_use, largest, cache_limit_bytes)
        return "range"
    return "shard"


def _largest_shard_bytes(manifest: Manifest) -> int:
    """The largest shard as the cache holds it (compressed shards decompressed)."""
    return max((_stored_bytes(s) for lang in manifest.languages for split in ("train", "heldout")
                for s in manifest.shards(lang, split)), default=0)


def _all_shards(manifest: Manifest) -> Iterator[ShardInfo]:
    for lang in manifest.languages:
        for split in ("train", "heldout"):
            yield from manifest.shards(lang, split)


def _compressed(manifest: Manifest) -> list[str]:
    """The compression algorithms the manifest's shards use (none for most corpora)."""
    return sorted({s.extra["compression"] for s in _all_shards(manifest) if s.extra.get("compression")})


def _unpack(info: ShardInfo) -> Unpack | None:
    algorithm = info.extra.get("compression")
    return Unpack(algorithm, int(info.extra["raw_bytes"])) if algorithm else None


def _stored_bytes(info: ShardInfo) -> int:
    return int(info.extra["raw_bytes"]) if info.extra.get("compression") else info.bytes


def _compressed_mode(manifest: Manifest, read_mode: str, cache_dir: str | None) -> str:
    """Compressed shards are read from the cache only (storage/unpack.py), local ones too."""
    algorithms = ", ".join(_compressed(manifest))
    if read_mode == "range":
        raise ConfigError(f"{manifest.where}: shards are compressed ({algorithms}); byte ranges of a compressed "
                          f"shard are not samples. Use read_mode 'shard' or 'auto' with a cache_dir")
    if cache_dir is None:
        raise ConfigError(f"{manifest.where}: shards are compressed ({algorithms}) and are decompressed once per "
                          f"machine into the shard cache; give a cache_dir (cache_dir: in YAML)")
    return "shard"
