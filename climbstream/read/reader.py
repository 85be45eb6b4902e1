"""Random access to one sample of one shard: `open_reader(manifest).read(lang, split, shard, i)`.

Three ways to get the bytes, chosen per corpus by `read_mode`:

- local corpora are always read in place with `os.pread` (never copied);
- "range": a byte-range request for just the sample (MDS: offsets from the shard header;
  tar: token offsets recorded in the manifest), checked against the shard's sample sums.
  The header and the sums are fetched once per shard and node through the cache when a
  cache_dir is given, else once per process (read/range_sums.py). A batch's range reads
  are fetched together, 16 at a time (`fetch_ranges`, read/range_batch.py). Block-exact mixing
  makes every worker read all K languages at once, so with hundreds of languages and big
  shards this is what scales;
- "shard": whole-shard downloads through the node-local cache and prefetcher (sha256
  verified on download), which wins when shards are small or read nearly whole.
- "auto": local in place; remote "shard" when the cache holds K x (2 x prefetch_depth + 1) of
  the largest shards, else "range".

Under a partitioned order (P >= 2) "shard" mode is per shard for this node: the caller
says with each read whether the node reads that shard whole (`whole=`, from
read/node_reads.py: its partitions own at least half of it); those go through the cache
and the prefetcher, every other sample (slivers of shared shards, foreign draws) by
verified range. Where ranges cannot be read or checked (compressed shards, a manifest
without sample sums, verify="sha256") those shards are read whole through the cache as
without partitions (read_modes.ranges_for_unowned); local corpora are read in place.

Compressed MDS shards (local or remote) are always read in "shard" mode: decompressed once
per machine into the cache (storage/unpack.py); without a cache_dir, into the machine's
default cache (storage/cache_location.py).

A reader holds no boto3 client, file descriptor or thread until its first read, and drops
them when pickled or forked, so it can be created before DataLoader workers start and is
safe inside each of them.

The parts: read_modes.py chooses the mode (a pure function of manifest and settings),
byte_sources.py gets bytes (in place, a held cached shard, ranges), mds_samples.py and
tar_samples.py cut a sample out of them. This file holds the per-process lifecycle, local
files (opened, size-checked, hashed once), the cache and prefetcher, and the metrics.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np

from climbstream.errors import ConfigError, ManifestError
from climbstream.read.byte_sources import ByteSource, FetchedSource, FileSource, HeldSource, RangeSource
from climbstream.formats.manifest import Manifest, ShardInfo, inside_root
from climbstream.formats.mds import ShardFormatError
from climbstream.read.mds_samples import MdsSamples
from climbstream.read.range_batch import RangeBatch
from climbstream.read.read_modes import (READ_MODES, VERIFY_MODES, choose_read_mode, compressed, largest_stored_bytes,
                                        ranges_for_unowned, unpack_of)
from climbstream.read.tar_samples import TarSamples
from climbstream.storage.cache_location import default_cache_dir
from climbstream.storage.process_local import PerProcess
from climbstream.storage.urls import is_remote, local_path

log = logging.getLogger(__name__)

__all__ = ["READ_MODES", "VERIFY_MODES", "SampleReader", "open_reader", "check_sha256"]  # modes re-exported
_MIN_OPEN_FILES = 128


def open_reader(manifest: Manifest, cache_dir: str | None = None, cache_limit_bytes: int | None = None,
                prefetch_depth: int = 2, storage: Any = None, read_mode: str = "auto",
                verify: str = "auto", readers_sharing_cache: int = 1, window_shards: int = 4) -> "SampleReader":
    """A SampleReader for `manifest`; see the module docstring for the read modes.

    `verify`: "auto" hashes each local shard once per process before its first read
    (downloads are always hashed by the cache) and checks each byte-range read against the
    shard's sample sums (crc32 per sample, formats/sample_sums.py); a manifest written
    before sums existed has none, so when "auto" reads its ranges it logs a warning saying
    how to get verified reads. "sha256" is the same but refuses range reads (crc32 is not
    a sha256). "size" checks sizes and headers only. Hashing costs one sequential read of each
    shard per process (sha256 ran at 1.5 GB/s here), against training on its samples.
    `readers_sharing_cache`: how many readers of
    this machine (DataLoader workers x local ranks) use the same cache at once; the
    capacity check and the "auto" choice count all of their shards in use.
    `window_shards`: the order's shuffle window, which sizes the local descriptors kept open
    (`max_open_files`).
    """
    return SampleReader(manifest, cache_dir, cache_limit_bytes, prefetch_depth, storage, read_mode, verify,
                        readers_sharing_cache, window_shards)


class SampleReader:
    """Reads fixed-length token samples: `read(lang, split, shard, index) -> int64[seq_len]`."""

    def __init__(self, manifest: Manifest, cache_dir: str | None, cache_limit_bytes: int | None,
                 prefetch_depth: int, storage: Any, read_mode: str, verify: str, readers_sharing_cache: int = 1,
                 window_shards: int = 4):
        if prefetch_depth < 0:
            raise ConfigError(f"prefetch_depth must be >= 0, got {prefetch_depth}")
        self.manifest = manifest
        if cache_dir is None and compressed(manifest):
            cache_dir = default_cache_dir()
            log.info("%s: compressed shards, no cache_dir given: decompressing into the default cache %s "
                     "(pass cache_dir to choose another)", manifest.where, cache_dir)
        self.cache_dir = cache_dir
        self.cache_limit_bytes = cache_limit_bytes
        self.prefetch_depth = prefetch_depth
        self.readers_sharing_cache = max(1, int(readers_sharing_cache))
        self.window_shards = max(1, int(window_shards))
        self.storage = storage
        self.requested_mode = read_mode
        self.local = not is_remote(manifest.root)
        self.mode = choose_read_mode(manifest, read_mode, verify, cache_dir, cache_limit_bytes, self._shards_in_use())
        self.unowned_by_range = ranges_for_unowned(manifest, self.mode, verify)
        self.may_read_ranges = not self.local and (self.mode != "shard" or self.unowned_by_range)
        self.requested_verify = verify
        self.verify = "sha256" if verify == "auto" else verify
        self.tokens_field = manifest.data.get("tokens_field", "tokens")
        self.samples = (MdsSamples(self.tokens_field) if manifest.format == "mds"
                        else TarSamples(manifest.seq_len))
        self._start()

    # -- lifecycle: nothing opened before the first read, nothing carried across fork ------
    def _start(self) -> None:
        """Begin with nothing open in this process (and again in each process that uses it)."""
        self._process = PerProcess(self._reset)
        self._process.get()

    def _reset(self) -> bool:
        self._files: OrderedDict[str, int] = OrderedDict()
        self.open_file_limit = max_open_files(len(self.manifest.languages), self.window_shards)
        self._checked: set[str] = set()  # local shards found inside the corpus folder, once per process
        self._verified: set[str] = set()
        self.samples.forget()
        self._store = None
        self._range_sums = None
        self._cache = None
        self._prefetcher = None
        self._held: dict[str, ByteSource] | None = None  # url -> the cached shard's bytes, inside holding()
        self._held_stack = contextlib.ExitStack()  # releases them when the block ends
        self._wait_s = 0.0
        self._range_bytes = 0
        self._count_lock = threading.Lock()  # range reads count their bytes from RangeBatch's threads
        self._range_batch = RangeBatch()
        self._reads = 0
        self._told_whole = False
        return True

    def __getstate__(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._start()

    def _check_process(self) -> None:
        self._process.get()  # in a forked child: the parent's descriptors and clients are dropped

    def close(self) -> None:
        """Close files and stop the prefetcher; the reader reopens lazily if used again."""
        if self._process.clear() is not None:  # ours, not a parent's seen after a fork
            for fd in self._files.values():
                os.close(fd)
            self._release_held()
            if self._prefetcher is not None and hasattr(self._prefetcher, "close"):
                self._prefetcher.close()
            self._range_batch.close()
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
                  columns: tuple[str, ...], whole: bool = True) -> tuple[np.ndarray, dict]:
        """`read`, and the sample's other MDS `columns` by name (decoded from the same bytes).

        `whole=False`: this node does not read the shard whole (a partitioned order's sliver
        or foreign draw); in "shard" mode the sample is read by verified range where
        `unowned_by_range`, else through the cache as usual.
        """
        self._check_process()
        info = self._shard(lang, split, shard)
        if not 0 <= index < info.samples:
            raise ManifestError(f"{info.where}: sample {index} out of range (shard has {info.samples})")
        start = time.perf_counter()
        if not whole and not self.unowned_by_range and not self._told_whole:
            self._tell_whole()
        if not whole and self.unowned_by_range:
            tokens, extra = self.samples.read(info, index, self._fetched(info, index, self._range_source(info)),
                                              columns)
        elif self.mode == "shard" and self._held is not None:
            tokens, extra = self.samples.read(info, index, self._held_source(info), columns)
        elif self.mode == "shard":
            with self._get_prefetcher().get(info.url, info.bytes, info.sha256, unpack_of(info)) as path:
                tokens, extra = self.samples.read(info, index, FileSource(path, info), columns)
        else:
            tokens, extra = self.samples.read(info, index, self._fetched(info, index, self._source(info)), columns)
        self._wait_s += time.perf_counter() - start
        self._reads += 1
        if tokens.shape != (self.manifest.seq_len,):
            raise ShardFormatError(
                f"{info.where}: sample {index} has {tokens.size} tokens, expected seq_len "
                f"{self.manifest.seq_len}; the shard does not match its manifest, rebuild it with "
                f"'climbstream manifest'"
            )
        return tokens.astype(np.int64), extra

    def fetch_ranges(self, reads: list[tuple[str, str, int, int, bool]]) -> None:
        """Fetch concurrently the samples of `reads` (lang, split, shard, index, whole), a batch
        in read order, that this reader reads by range; `read_with` then takes their bytes
        (read/range_batch.py). The rest (whole shards, local files) is left to `read_with`,
        and so is anything that failed here: it fails again, in order, when read."""
        self._check_process()
        start = time.perf_counter()
        samples, shards = self._range_reads(reads)
        batch = self._range_batch
        if samples:
            try:
                self._range_source(samples[0][0])  # the store and the sums' reader, made before any thread
            except Exception:  # the read reports it, in order
                samples, shards = [], []
        prepared = batch.run([partial(self._prepared_source, info) for info in shards])
        sources = {info.url: s for info, s in zip(shards, prepared) if not isinstance(s, Exception)}
        blocks = {}
        for info, index in samples:
            sums = getattr(sources.get(info.url), "sums", None)
            if hasattr(sums, "block_key"):
                blocks.setdefault(sums.block_key(index), partial(sums.sample, index))
        batch.run(list(blocks.values()))
        batch.fetch([((info.url, index), sources[info.url], *self.samples.locate(info, index, sources[info.url]),
                      index) for info, index in samples if info.url in sources])
        self._wait_s += time.perf_counter() - start

    def _range_reads(self, reads) -> tuple[list[tuple[ShardInfo, int]], list[ShardInfo]]:
        """The distinct (shard, index) of `reads` this reader reads by range, and their shards."""
        samples, shards = [], {}
        for lang, split, shard, index, whole in reads:
            if not self.may_read_ranges or whole and self.mode == "shard":
                continue  # read in place, or through the cache
            info = self._shard(lang, split, shard)
            indexes = shards.setdefault(info.url, (info, set()))[1]
            if 0 <= index < info.samples and index not in indexes:  # read_with reports a bad index
                indexes.add(index)
                samples.append((info, index))
        return samples, [info for info, _ in shards.values()]

    def _prepared_source(self, info: ShardInfo) -> RangeSource:
        """The shard's RangeSource with its sums head and header fetched (read/range_batch.py)."""
        source = self._range_source(info)
        self.samples.locate(info, 0, source)
        return source

    def _fetched(self, info: ShardInfo, index: int, source: ByteSource) -> ByteSource:
        """`source`, or the sample's bytes when `fetch_ranges` fetched them for this batch."""
        data = self._range_batch.take((info.url, index))
        return source if data is None else FetchedSource(source, index, data)

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
        """Shards needed next, in need order; downloads ahead in "shard" mode.

        Name only shards read whole: a shard hinted here is downloaded whole, so the
        shards a node reads by range (`whole=False` with `unowned_by_range`) stay out.
        """
        self._check_process()
        if self.mode != "shard" or not upcoming:
            return
        wanted = []
        for lang, split, shard in upcoming:
            info = self._shard(lang, split, shard)
            wanted.append((info.url, info.bytes, info.sha256, unpack_of(info)))
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

    def _held_source(self, info: ShardInfo) -> ByteSource:
        source = self._held.get(info.url)
        if source is None:
            path = self._held_stack.enter_context(
                self._get_prefetcher().get(info.url, info.bytes, info.sha256, unpack_of(info)))
            source = self._held[info.url] = HeldSource.open(path, info, self._held_stack)
        return source

    def _release_held(self) -> None:
        self._held = None
        self._held_stack.close()  # closes the files, then releases the shards, newest first

    def _source(self, info: ShardInfo) -> ByteSource:
        if self.local:
            fd = self._files.get(info.url)
            if fd is None:
                fd = self._open_local(info)
            else:
                self._files.move_to_end(info.url)
            return FileSource(local_path(info.url), info, fd)
        return self._range_source(info)

    def _tell_whole(self) -> None:
        """Say once per process why shards this node does not own are downloaded whole."""
        self._told_whole = True
        if self.mode != "shard" or self.local:
            return  # read by range already, or in place: nothing is downloaded whole
        why = ("its shards are compressed" if compressed(self.manifest) else
               "verify='sha256' refuses byte ranges" if self.requested_verify == "sha256" else
               "its manifest lists no sample sums (rerun 'climbstream manifest' for verified ranges)")
        log.info("%s: shards this node does not read whole (slivers, foreign draws) are downloaded whole through "
                 "the cache, since %s", self.manifest.where, why)

    def _range_source(self, info: ShardInfo) -> RangeSource:
        return RangeSource(self._get_store(), info, self._count_range_bytes, self._sums_of(info), self._range_sums)

    def _sums_of(self, info: ShardInfo):
        """The shard's sample sums when range reads are verified (not under verify='size');
        with a cache_dir, fetched (with the MDS header) once per node through its cache."""
        if self.verify == "size":
            return None
        if self._range_sums is None:
            from climbstream.read.range_sums import RangeSums

            cache = None if self.cache_dir is None else self._get_cache()
            self._range_sums = RangeSums(self._get_store(), self.manifest.root, self._count_range_bytes, cache)
        return self._range_sums.get(info)

    def _count_range_bytes(self, n: int) -> None:
        with self._count_lock:
            self._range_bytes += n

    def _open_local(self, info: ShardInfo) -> int:
        path = local_path(info.url)
        if info.url not in self._checked:  # two realpath calls (50 us here, a reopen 6 us): once per shard
            inside_root(path, self.manifest.root, info.where)
            self._checked.add(info.url)
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
        while len(self._files) > self.open_file_limit:
            _, old = self._files.popitem(last=False)
            os.close(old)
        return fd

    def _get_store(self):
        if self._store is None:
            from climbstream.storage.registry import open_store

            self._store = open_store(self.manifest.root, self.storage)
        return self._store

    def _shards_in_use(self) -> int:
        """Shards pinned at once on this machine: readers x K x (2 x depth + 1).

        A batch is read inside one `holding()` block, so its shards (every worker reads all
        K languages at once; K x (depth + 1) are allowed for) are in use while it is read,
        and the prefetcher keeps K x depth more fetched ahead.
        """
        return self.readers_sharing_cache * len(self.manifest.languages) * (2 * self.prefetch_depth + 1)

    def _get_cache(self):
        """This process's handle on the node-local cache (one per process, shared by its parts)."""
        if self._cache is None:
            from climbstream.storage.cache import ShardCache

            self._cache = ShardCache(self.cache_dir, limit_bytes=self.cache_limit_bytes)
        return self._cache

    def _get_prefetcher(self):
        if self._prefetcher is None:
            from climbstream.storage.prefetch import Prefetcher

            cache = self._get_cache()
            cache.check_capacity(largest_stored_bytes(self.manifest), self._shards_in_use())
            window = len(self.manifest.languages) * self.prefetch_depth  # every batch reads all K languages
            self._prefetcher = Prefetcher(cache, self._get_store(), depth=window, threads=min(8, max(1, window)))
        return self._prefetcher


def max_open_files(languages: int, window_shards: int = 4) -> int:
    """How many local shards a reader keeps open: every language's window and one more, within RLIMIT_NOFILE.

    Block-exact mixing reads all K languages in every batch, each from a window of
    `window_shards` shards, so a reader uses about K x window shards at once; one more per
    language lets a language move to its next window without evicting another's. A fixed
    128 descriptors thrashed on 100 languages: 70% of the sample reads reopened (and
    re-checked) their shard. Replaying one worker's reads of the loader benchmark's `wide`
    corpus (100 languages, 24-sample shards, window 4) through the LRU: 1,935 opens per
    20,032 reads with K x 5 descriptors, 1,808 with K x 8, about 1,750 opens being the
    shards' first reads. Half of the soft descriptor limit is left for everything else in
    the process.
    """
    wanted = max(_MIN_OPEN_FILES, languages * (max(1, int(window_shards)) + 1))
    return max(16, min(wanted, _descriptor_limit() // 2))


def _descriptor_limit() -> int:
    """This process's soft RLIMIT_NOFILE (1024 where it cannot be read, 65536 when unlimited)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return 1 << 16 if soft == resource.RLIM_INFINITY or soft <= 0 else int(soft)
    except (ImportError, OSError, ValueError):
        return 1024


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
