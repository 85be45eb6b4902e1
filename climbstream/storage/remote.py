"""One interface to bytes wherever they live: local paths, s3:// and other fsspec URLs.

`open_store(url, options)` picks the backend by the URL's scheme; a store serves every URL
of its scheme (any bucket, any directory). Every method takes full URLs, so manifests can
hold relative paths joined with `join_url`. Promises shared by all backends:

- `read_bytes(url, start, end)` returns exactly bytes [start, end) or raises;
- `download` writes atomically (a temp file in the destination directory, renamed into
  place only after the size and sha256 checked out), so a crash or a bad download never
  leaves a partial file under the final name;
- missing objects raise ObjectNotFoundError and refused ones AccessDeniedError (both
  StorageError naming the URL) at once, transient failures are retried with backoff.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from climbstream.errors import ConfigError, StorageError
from climbstream.storage.options import StorageOptions
from climbstream.storage.retry import (
    AccessDeniedError,
    IntegrityError,
    ObjectNotFoundError,
    SuspectBytes,
    call_with_retries,
)

log = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 20
TEMP_MARKER = ".tmp-"  # download temp files are named f"{dest}{TEMP_MARKER}{pid}-{random}"


def url_scheme(url: str) -> str:
    """'s3', 'gs', ... or 'file' for plain paths and file:// URLs."""
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower() or "file"


def is_remote(url: str) -> bool:
    """True for URLs with a scheme other than file:// (s3://, gs://, ...)."""
    return url_scheme(url) != "file"


def local_path(url: str) -> str:
    """The filesystem path of a plain path or a file:// URL (StorageError for anything else)."""
    if url.startswith("file://"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"{url}: file:// URLs must name a local path (file:///abs/path)")
        return unquote(parts.path)
    if "://" in url:
        raise StorageError(f"{url}: not a local path or file:// URL")
    return url


def join_url(root: str, relative: str) -> str:
    """`relative` resolved against the directory URL `root`; absolute paths and URLs win."""
    if "://" in relative or relative.startswith("/") or not root:
        return relative
    while relative.startswith("./"):
        relative = relative[2:]
    return root + ("" if root.endswith("/") else "/") + relative


def parent_url(url: str) -> str:
    """The directory URL holding `url` ('s3://b/a/m.json' -> 's3://b/a'); a bucket is its own parent."""
    stripped = url.rstrip("/")
    if "://" in stripped:
        scheme, rest = stripped.split("://", 1)
        head, sep, _ = rest.rpartition("/")
        return f"{scheme}://{head or '/'}" if sep else f"{scheme}://{rest}"
    return os.path.dirname(stripped) or "."


def check_range(url: str, start: int | None, end: int | None) -> tuple[int, int | None]:
    """Normalize a byte range; negative or reversed ranges are a StorageError naming the URL."""
    start = 0 if start is None else int(start)
    if start < 0 or (end is not None and end < start):
        raise StorageError(f"read {url}: invalid byte range [{start}, {end}); need 0 <= start <= end")
    return start, (None if end is None else int(end))


def check_length(url: str, start: int, end: int | None, data: bytes) -> bytes:
    """Raise when a range read came back short (the range ran past the end of the object)."""
    if end is not None and len(data) != end - start:
        raise StorageError(
            f"read {url}: asked for bytes [{start}, {end}) but got {len(data)} bytes; the range runs past "
            f"the end of the object, so the shard is shorter than its index says: rebuild or re-upload it"
        )
    return data



def temp_path_for(dest: str) -> str:
    """A unique temporary name beside `dest` (same filesystem, so the rename is atomic)."""
    return f"{dest}{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}"


@contextlib.contextmanager
def removed_on_failure(path: str):
    """Delete `path` if the block fails, so no partial file is ever left behind."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise

class ObjectStore(ABC):
    """Bytes behind URLs of one scheme. Safe to share between threads of one process."""

    is_local: bool = False

    def __init__(self, options: StorageOptions | None = None) -> None:
        self.options = options or StorageOptions()

    # -- backend hooks -------------------------------------------------------------------
    @abstractmethod
    def read_bytes(self, url: str, start: int | None = None, end: int | None = None) -> bytes:
        """Bytes [start, end) of the object (end exclusive); the whole object by default."""

    @abstractmethod
    def size(self, url: str) -> int:
        """Size of the object in bytes."""

    @abstractmethod
    def put_bytes(self, data: bytes, url: str) -> None:
        """Write `data` as the object `url` (replacing it)."""

    @abstractmethod
    def put_file(self, local_path: str | os.PathLike, url: str) -> None:
        """Upload a local file as the object `url` (replacing it)."""

    @abstractmethod
    def list(self, prefix_url: str) -> list[str]:
        """Full URLs of every object under the directory `prefix_url`, recursively, sorted.

        URLs keep the caller's spelling of the prefix. A missing local directory raises
        ObjectNotFoundError; an object-store prefix with nothing under it is just empty.
        """

    @abstractmethod
    def exists(self, url: str) -> bool:
        """Whether the object exists (False for a missing object, errors for anything else)."""

    @abstractmethod
    def _iter_chunks(self, url: str) -> Iterator[bytes]:
        """Stream the whole object; failures surface as the backend's own exceptions."""

    def _is_retryable(self, exc: BaseException) -> bool:
        return False

    def _describe(self, exc: BaseException, url: str, action: str) -> StorageError:
        if isinstance(exc, FileNotFoundError):
            return ObjectNotFoundError(f"{action} {url}: not found ({exc}); check the path or URL")
        if isinstance(exc, PermissionError):
            return AccessDeniedError(f"{action} {url}: permission denied ({exc}); check file permissions")
        return StorageError(f"{action} {url}: {type(exc).__name__}: {exc}")

    def _call(self, action: str, url: str, fn):
        return call_with_retries(fn, url=url, action=action, options=self.options,
                                 is_retryable=self._is_retryable, describe=self._describe)

    def retried(self, action: str, url: str, fn):
        """`fn()` under this store's retry policy (it may raise SuspectBytes to be called again)."""
        return self._call(action, url, fn)

    # -- shared behaviour ----------------------------------------------------------------
    def local_path(self, url: str) -> str:
        """The filesystem path of `url`; only local stores have one."""
        raise StorageError(f"{url}: not a local path ({type(self).__name__} has no local files); "
                           f"read it through a ShardCache")

    def download(self, url: str, dest_path: str | os.PathLike, expected_size: int | None = None,
                 expected_sha256: str | None = None, temp_path: str | None = None) -> int:
        """Fetch the whole object to `dest_path` atomically; returns the number of bytes.

        Size and sha256 are checked (when given) before the rename; a mismatch raises
        IntegrityError naming the URL and leaves nothing at `dest_path`. Transient failures
        restart the transfer from the beginning, and so does a mismatch: a body cut short
        or corrupted in transit is retried, and only a mismatch on every attempt is called
        a data error. `temp_path` (beside `dest_path`) names the
        partial file, for a caller that alone may write it; a unique name by default.
        """
        dest = os.fspath(dest_path)
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)

        def attempt() -> int:
            tmp = temp_path or temp_path_for(dest)
            digest = hashlib.sha256()
            written = 0
            with removed_on_failure(tmp):
                with open(tmp, "wb") as out:
                    for chunk in self._iter_chunks(url):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        if expected_size is not None and written > expected_size:
                            break
                try:
                    self._verify(url, written, digest.hexdigest(), expected_size, expected_sha256)
                except IntegrityError as err:
                    log.warning("%s; downloading it again", err)
                    raise SuspectBytes(err) from None
                os.replace(tmp, dest)
            return written

        return self._call("download", url, attempt)

    @staticmethod
    def _verify(url: str, size: int, sha256: str, expected_size: int | None, expected_sha256: str | None) -> None:
        if expected_size is not None and size != expected_size:
            got = f"more than {expected_size}" if size > expected_size else str(size)
            raise IntegrityError(
                f"download {url}: size mismatch (expected {expected_size} bytes, got {got}); the object "
                f"differs from its manifest entry (it changed after 'climbstream manifest' ran: rerun it), "
                f"or the store or network cuts it short"
            )
        if expected_sha256 is not None and sha256 != expected_sha256.lower():
            raise IntegrityError(
                f"download {url}: sha256 mismatch (expected {expected_sha256}, got {sha256}); the object "
                f"differs from its manifest entry (it changed after 'climbstream manifest' ran: rerun it), "
                f"or the store or network corrupts it"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.options.endpoint_url!r})"


class LocalStore(ObjectStore):
    """Plain paths and file:// URLs. Reads happen in place; writes are atomic renames."""

    is_local = True

    def local_path(self, url: str) -> str:
        return local_path(url)

    def read_bytes(self, url: str, start: int | None = None, end: int | None = None) -> bytes:
        start, end = check_range(url, start, end)

        def read() -> bytes:
            with open(self.local_path(url), "rb") as f:
                f.seek(start)
                return f.read() if end is None else f.read(end - start)

        return check_length(url, start, end, self._call("read", url, read))

    def size(self, url: str) -> int:
        return self._call("size", url, lambda: os.path.getsize(self.local_path(url)))

    def _iter_chunks(self, url: str) -> Iterator[bytes]:
        with open(self.local_path(url), "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                yield chunk

    def _write_atomically(self, url: str, write) -> None:
        dest = self.local_path(url)
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        tmp = temp_path_for(dest)
        with removed_on_failure(tmp):
            write(tmp)
            os.replace(tmp, dest)

    def put_bytes(self, data: bytes, url: str) -> None:
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)

        self._call("put", url, lambda: self._write_atomically(url, write))

    def put_file(self, local_path: str | os.PathLike, url: str) -> None:
        self._call("put", url, lambda: self._write_atomically(url, lambda tmp: shutil.copyfile(local_path, tmp)))

    def list(self, prefix_url: str) -> list[str]:
        root = self.local_path(prefix_url)
        if not os.path.isdir(root):
            raise ObjectNotFoundError(f"list {prefix_url}: no such directory; check the path")
        found = []
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                if TEMP_MARKER not in name:
                    rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
                    found.append(join_url(prefix_url, rel))
        return sorted(found)

    def exists(self, url: str) -> bool:
        return os.path.isfile(self.local_path(url))


def open_store(url: str, options: StorageOptions | None = None) -> ObjectStore:
    """The store for `url`'s scheme: local paths and file://, s3:// (boto3), else fsspec.

    Creating a store is cheap and does no I/O; remote clients are created on first use in
    each process, so a store may be built before DataLoader workers fork.
    """
    scheme = url_scheme(url)
    if scheme == "file":
        return LocalStore(options)
    if scheme in ("s3", "s3a"):
        from climbstream.storage.s3 import S3Store

        return S3Store(options)
    try:
        from climbstream.storage.fsspec_store import FsspecStore
    except ImportError as exc:
        raise ConfigError(f"{url}: scheme {scheme}:// needs fsspec (pip install fsspec and its "
                          f"{scheme} backend); supported without it: local paths, file://, s3://") from exc
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"{url}: no storage backend for {scheme}:// ({exc}); supported: local paths, "
                          f"file://, s3://, and fsspec protocols whose package is installed") from exc
    return FsspecStore(scheme, options)
