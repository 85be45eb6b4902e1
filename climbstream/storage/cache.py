"""The node-local shard cache: each remote shard downloaded once per machine.

All DataLoader workers and all ranks of a machine point a ShardCache at the same
directory. Coordination is by fcntl.flock on lock files (two per shard), so a process that
dies (even by SIGKILL) releases its locks through the kernel: no shared memory, no stale
lock to clean by hand.

Each shard has two lock files:

- "use" (`locks/<key>.lock`): a reader holds it shared for as long as it uses the file.
  A downloader holds it shared too while it fills the entry, so eviction skips it.
- "fetch" (`locks/<key>.fetch`): a downloader holds it exclusively, so concurrent
  readers of a missing shard wait for the one download instead of starting their own.
  A waiter holds no use lock of that shard while it waits, and a downloader never needs
  the use lock exclusively, so waiting on a download never waits for readers.
  (With one lock per shard, a process that saw a shard missing asked for it exclusively
  to download it, and then waited for every reader of the shard the other process had
  meanwhile finished downloading; two workers, each holding the shards of its batch,
  deadlocked that way in about one run in twenty.)
- Eviction (least recently used first, by the time of the last acquire; only a cache
  with a limit records acquire times, as only it evicts) takes both locks
  of a shard without blocking and skips the shard if that fails, so a shard in use or
  being downloaded is never evicted. It only considers entries in the cache's own index,
  so it never deletes a file it did not download.
- When every resident shard is in use the limit is exceeded (with a warning) rather than
  waiting: a cache that waits for space can deadlock workers that each hold shards.
  `check_capacity` rejects limits too small for the configured reading pattern up front.

Local sources (plain paths, file://) are returned in place, never copied; compressed shards,
local or not, are decompressed into the cache (storage/unpack.py).

Layout under root_dir: `data/<key>` (the shards), `index/<key>.json` (what this cache
downloaded: url, bytes, sha256, complete), `locks/<key>.lock` and `locks/<key>.fetch`, `cache.lock`
(guards the space accounting). `<key>` is a hash of the URL followed by its file name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from climbstream.errors import ConfigError
from climbstream.storage.store import TEMP_MARKER, ObjectStore, removed_on_failure, temp_path_for
from climbstream.storage.retry import IntegrityError, ObjectNotFoundError
from climbstream.storage.unpack import Unpack

log = logging.getLogger(__name__)
INDEX_VERSION = 1
_USE, _FETCH = ".lock", ".fetch"  # lock file suffixes (see the module docstring)


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    """What tells one data file from the next one at the same path: inode, size, mtime."""
    return st.st_ino, st.st_size, st.st_mtime_ns


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)


@dataclass
class CachedShard:
    """A shard held resident: `path` stays valid until `release()` (or the with-block ends).

    `hit` is False when this call downloaded the shard; `bytes_downloaded` counts them.
    """

    url: str
    path: str
    hit: bool
    bytes_downloaded: int = 0
    _fd: int | None = None
    _cache: "ShardCache | None" = None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops its flock
            if self._cache is not None and self._cache._overflowed:
                self._cache.trim()  # it went over its limit while shards were held: give back now

    def __enter__(self) -> str:
        return self.path

    def __exit__(self, *exc) -> None:
        self.release()


class ShardCache:
    """A directory of downloaded shards shared by every process of one machine."""

    def __init__(self, root_dir: str | os.PathLike, limit_bytes: int | None = None) -> None:
        if limit_bytes is not None and limit_bytes <= 0:
            raise ConfigError(f"cache limit_bytes must be positive (or None for no limit), got {limit_bytes}")
        self.root = os.path.abspath(os.fspath(root_dir))
        self.limit_bytes = limit_bytes
        for sub in ("data", "index", "locks"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        self._overflowed = False  # this process pushed the cache over its limit (all else in use)
        self._verified: dict[str, tuple] = {}  # key -> ((inode, size, mtime_ns), bytes, sha256) seen complete

    # -- public ------------------------------------------------------------------------
    def check_capacity(self, largest_shard_bytes: int, shards_in_use: int) -> None:
        """ConfigError when the limit cannot hold `shards_in_use` shards of the largest size.

        `shards_in_use` is how many shards can be held at once on this machine, e.g.
        languages x (2 x prefetch depth + 1) x DataLoader workers x local ranks.
        """
        if self.limit_bytes is None:
            return
        needed = int(largest_shard_bytes) * int(shards_in_use)
        if needed > self.limit_bytes:
            raise ConfigError(
                f"cache at {self.root}: limit {self.limit_bytes} bytes ({_human(self.limit_bytes)}) is smaller "
                f"than what must be resident at once: {shards_in_use} shards in use (languages x (2 x prefetch "
                f"depth + 1) x workers x local ranks) x largest shard {largest_shard_bytes} bytes = {needed} "
                f"bytes ({_human(needed)}); raise the cache limit to at least {needed} bytes, lower the "
                f"prefetch depth or the number of workers, or use no limit"
            )

    @contextlib.contextmanager
    def acquire(self, url: str, store: ObjectStore, size: int | None = None,
                sha256: str | None = None, unpack: Unpack | None = None) -> Iterator[str]:
        """The local path of `url`, resident (and not evictable) inside the with-block."""
        shard = self.open(url, store, size, sha256, unpack)
        try:
            yield shard.path
        finally:
            shard.release()

    def open(self, url: str, store: ObjectStore, size: int | None = None, sha256: str | None = None,
             unpack: Unpack | None = None) -> CachedShard:
        """Like `acquire`, returning a handle the caller releases (possibly from another thread).

        `size` and `sha256` are the download's; with `unpack` (a compressed shard, local or
        remote) the entry is the decompressed shard of `unpack.raw_bytes` (storage/unpack.py).
        """
        if store.is_local and unpack is None:
            return self._open_local(url, store, size)
        key = self.key(url)
        entry_size = unpack.raw_bytes if unpack is not None else size
        downloaded = 0
        while True:
            fd = self._lock_entry(key, fcntl.LOCK_SH)
            try:
                if self.is_complete(key, entry_size, sha256):
                    shard, fd = self._handed_over(url, key, fd, downloaded), None
                    return shard
            finally:
                if fd is not None:
                    os.close(fd)
            # Not there: whoever takes the fetch lock first downloads; the others wait for it
            # holding nothing of this shard, then find it complete on the next turn.
            fetch_fd = self._lock_entry(key, fcntl.LOCK_EX, _FETCH)
            try:
                use_fd = self._lock_entry(key, fcntl.LOCK_SH)  # keeps eviction off the entry being filled
                try:
                    if not self.is_complete(key, entry_size, sha256):
                        downloaded += self._fill(key, url, store, size, sha256, unpack)
                    if self.is_complete(key, entry_size, sha256):  # hand over the use lock already held
                        shard, use_fd = self._handed_over(url, key, use_fd, downloaded), None
                        return shard
                finally:
                    if use_fd is not None:
                        os.close(use_fd)
            finally:
                os.close(fetch_fd)

    def open_fetched(self, name: str, fetch: Callable[[], bytes], size: int) -> CachedShard:
        """Like `open`, for an entry whose bytes `fetch()` returns, already checked by the caller.

        For small objects derived from a shard that every process of the machine needs, such
        as a range-read shard's MDS header (a byte range, checked against the shard's sample
        sums): fetched once per machine under the same locks, evicted like a shard. `name`
        is the entry's URL-like key (e.g. the shard's URL with `#header`); `size` its bytes.
        """
        return self.open(name, _Fetched(fetch), size)

    def _handed_over(self, url: str, key: str, use_fd: int, downloaded: int) -> CachedShard:
        """The handle of a complete entry, owning `use_fd` (its shared use lock) from now on."""
        self._touch(key)
        return CachedShard(url, self._data_path(key), hit=downloaded == 0, bytes_downloaded=downloaded,
                           _fd=use_fd, _cache=self)

    def key(self, url: str) -> str:
        """The file name of `url` in the cache: a URL hash, then the URL's own file name."""
        digest = hashlib.sha256(url.encode()).hexdigest()[:24]
        name = re.sub(r"[^A-Za-z0-9._-]", "_", url.rstrip("/").rpartition("/")[2])[-80:]
        return f"{digest}-{name}"

    def usage_bytes(self) -> int:
        """Bytes of the shards this cache holds or is downloading, on the whole machine."""
        return sum(entry["bytes"] for entry in self.entries())

    # -- internals ---------------------------------------------------------------------
    def _data_path(self, key: str) -> str:
        return os.path.join(self.root, "data", key)

    def _lock_path(self, key: str, kind: str = _USE) -> str:
        return os.path.join(self.root, "locks", key + kind)

    def _marker_path(self, key: str) -> str:
        return os.path.join(self.root, "index", key + ".json")

    def _open_local(self, url: str, store: ObjectStore, size: int | None) -> CachedShard:
        path = store.local_path(url)
        try:
            found = os.path.getsize(path)
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(f"read {url}: no such file; check the path or rerun 'climbstream manifest'") from exc
        if size is not None and found != size:
            raise IntegrityError(
                f"read {url}: size mismatch (expected {size} bytes, found {found}); the file changed after the "
                f"manifest was written: rerun 'climbstream manifest' on its corpus"
            )
        return CachedShard(url, path, hit=True)

    def in_use(self, url: str) -> bool:
        """True while some reader holds the shard of `url` (its shared use lock): eviction skips it."""
        fd = self._lock_entry(self.key(url), fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is None:
            return True
        os.close(fd)
        return False

    def _lock_entry(self, key: str, mode: int, kind: str = _USE) -> int | None:
        """An fd holding flock `mode` on the shard's `kind` lock file (None if LOCK_NB would block).

        Eviction unlinks lock files while holding them; a lock taken on an unlinked file
        guards nothing, so the inode is checked against the path and the open retried.
        """
        path = self._lock_path(key, kind)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, mode)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            try:
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def _read_marker(self, key: str) -> dict | None:
        try:
            with open(self._marker_path(key)) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("cache index %s unreadable (%s); treating the shard as absent", self._marker_path(key), exc)
            return None

    def _write_marker(self, key: str, marker: dict) -> None:
        path = self._marker_path(key)
        tmp = f"{path}{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}"
        with open(tmp, "w") as f:
            json.dump(marker, f)
        os.replace(tmp, path)
        self._touch(key)

    def is_complete(self, key: str, size: int | None, sha256: str | None) -> bool:
        """Whether the entry is downloaded, verified, and matches `size` and `sha256`: what `open`
        asks before and after it waits for a download (a test replaces it to stage a race).

        The index entry is read once per data file: a file this process found complete is
        remembered by inode, size and mtime, and a later call that finds the same file
        skips reading it again (a hit on every shard of every batch read the JSON; it was
        a tenth of a worker's time). A shard evicted and downloaded again is a new file.
        """
        try:
            st = os.stat(self._data_path(key))
        except FileNotFoundError:
            return False
        known = self._verified.get(key)
        if known is None or known[0] != _identity(st):
            marker = self._read_marker(key)
            if not marker or not marker.get("complete") or marker["bytes"] != st.st_size:
                return False
            known = self._remember(key, st, marker["bytes"], marker.get("sha256"))
        _, nbytes, digest = known
        if size is not None and nbytes != size:
            return False
        return sha256 is None or digest in (None, sha256.lower())

    def _remember(self, key: str, st: os.stat_result, nbytes: int, sha256: str | None) -> tuple:
        """Record that the data file `st` is the complete entry of `key` (see _is_complete)."""
        self._verified[key] = known = (_identity(st), nbytes, sha256)
        return known

    def _touch(self, key: str) -> None:
        if self.limit_bytes is None:  # only a cache with a limit evicts, by these times
            return
        # Explicit nanoseconds: the kernel's own file times tick only every few milliseconds.
        now = time.time_ns()
        with contextlib.suppress(FileNotFoundError):
            os.utime(self._marker_path(key), ns=(now, now))

    def _fill(self, key: str, url: str, store: ObjectStore, size: int | None, sha256: str | None,
              unpack: Unpack | None = None) -> int:
        """Download `url` holding the shard's fetch lock (and its use lock shared); returns the bytes."""
        data_path = self._data_path(key)
        if size is None:
            size = store.size(url)
        entry_size = unpack.raw_bytes if unpack is not None else size
        marker = {"version": INDEX_VERSION, "url": url, "bytes": int(entry_size),
                  "sha256": sha256.lower() if sha256 else None, "complete": False}
        if unpack is not None:
            marker["compression"] = unpack.algorithm  # sha256 stays the download's: its identity
        if self.limit_bytes is None:
            # No space to account for, so no reservation: the entry is written once, complete.
            # Only the holder of the fetch lock writes this temp name, so a dead downloader's
            # partial file is overwritten by the next one (each skipped write saved ~0.1 ms of
            # a miss, and with 16 threads creating files in one folder they queued).
            temp_path = data_path + TEMP_MARKER + "fetch"
        else:
            previous = self._read_marker(key)
            if previous is not None and not previous.get("complete"):
                # A downloader died mid-way (its reservation is still there, and we hold the
                # fetch lock it held): remove its partial file. Only then, as the scan lists
                # the whole data folder, which grows with the cache.
                for stale in glob.glob(glob.escape(data_path + TEMP_MARKER) + "*"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(stale)
            self._reserve(key, marker)
            temp_path = None
        packed_path = data_path + TEMP_MARKER + "packed" if unpack is not None else None
        try:
            written = store.download(url, packed_path or data_path, expected_size=size,
                                     expected_sha256=sha256, temp_path=temp_path)
            if unpack is not None:
                unpack.into(packed_path, data_path, url)
        except BaseException:
            for path in (data_path, self._marker_path(key)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            raise
        finally:
            if packed_path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(packed_path)
        self._write_marker(key, dict(marker, complete=True))
        self._remember(key, os.stat(data_path), int(entry_size), marker["sha256"])  # as _is_complete would
        log.debug("cache %s: downloaded %s (%d bytes)", self.root, url, written)
        return written

    def _reserve(self, key: str, marker: dict) -> None:
        """Make room for `marker['bytes']` (evicting LRU shards not in use) and record it.

        Only a cache with a limit reserves: the cache-wide lock it takes is where all 8
        prefetch threads of every worker queued, a third of a worker's time before its
        first batch over S3 (100 languages), when every cache took it.
        """
        fd = os.open(os.path.join(self.root, "cache.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            others = [e for e in self.entries() if e["key"] != key]
            excess = sum(e["bytes"] for e in others) + marker["bytes"] - self.limit_bytes
            if excess > 0:
                excess -= self._evict(others, excess)
            if excess > 0:
                self._overflowed = True
                log.warning(
                    "cache %s: over its limit of %d bytes by %d bytes to fetch %s, because every other "
                    "resident shard is in use; raise the cache limit or lower the prefetch depth",
                    self.root, self.limit_bytes, excess, marker["url"])
            self._write_marker(key, marker)
        finally:
            os.close(fd)

    def trim(self) -> None:
        """Evict LRU shards not in use until the cache is within its limit again.

        Called when a shard is released after this process had to go over the limit
        (every resident shard was in use then), so the overshoot does not outlive it.
        """
        if self.limit_bytes is None:
            return
        fd = os.open(os.path.join(self.root, "cache.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            entries = self.entries()
            excess = sum(e["bytes"] for e in entries) - self.limit_bytes
            if excess > 0:
                excess -= self._evict(entries, excess)
            self._overflowed = excess > 0
        finally:
            os.close(fd)

    def _evict(self, entries: list[dict], needed: int) -> int:
        freed = 0
        for entry in sorted(entries, key=lambda e: (e["mtime_ns"], e["key"])):
            if freed >= needed:
                break
            key = entry["key"]
            fd = self._lock_entry(key, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if fd is None:
                continue  # in use (or being filled) by some process
            fetch_fd = self._lock_entry(key, fcntl.LOCK_EX | fcntl.LOCK_NB, _FETCH)
            if fetch_fd is None:
                os.close(fd)
                continue  # a download of it is starting
            try:
                for path in (self._data_path(key), self._marker_path(key), self._lock_path(key, _FETCH),
                             self._lock_path(key)):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
            finally:
                os.close(fetch_fd)
                os.close(fd)
            freed += entry["bytes"]
            log.debug("cache %s: evicted %s (%d bytes)", self.root, entry.get("url"), entry["bytes"])
        return freed

    def entries(self) -> list[dict]:
        """The index entries of the shards in the cache (each with its url, key and bytes)."""
        entries = []
        index_dir = os.path.join(self.root, "index")
        for name in os.listdir(index_dir):
            if not name.endswith(".json"):
                continue
            key = name[: -len(".json")]
            try:
                mtime_ns = os.stat(os.path.join(index_dir, name)).st_mtime_ns
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    continue
                raise
            marker = self._read_marker(key)
            if marker is not None:
                entries.append({"key": key, "url": marker.get("url"), "bytes": int(marker.get("bytes", 0)),
                                "mtime_ns": mtime_ns, "complete": bool(marker.get("complete"))})
        return entries


class _Fetched:
    """The one call `open` makes of a store to fill an entry (`download`), served by `fetch()`."""

    is_local = False

    def __init__(self, fetch: Callable[[], bytes]) -> None:
        self.fetch = fetch

    def download(self, url: str, dest_path: str, expected_size: int | None = None,
                 expected_sha256: str | None = None, temp_path: str | None = None) -> int:
        data = self.fetch()
        if expected_size is not None and len(data) != expected_size:
            raise IntegrityError(f"fetch {url}: {len(data)} bytes, expected {expected_size}")
        if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256.lower():
            raise IntegrityError(f"fetch {url}: sha256 mismatch (expected {expected_sha256})")
        tmp = temp_path or temp_path_for(dest_path)
        with removed_on_failure(tmp):
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, dest_path)
        return len(data)
