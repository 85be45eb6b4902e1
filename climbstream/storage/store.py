"""The interface every storage backend implements: ObjectStore, and what backends share.

A store serves every URL of its scheme (any bucket, any directory), and every method
takes full URLs. Promises shared by all backends:

- `read_bytes(url, start, end)` returns exactly bytes [start, end) or raises;
- `download` writes atomically (a temp file in the destination directory, renamed into
  place only after the size and sha256 checked out), so a crash or a bad download never
  leaves a partial file under the final name;
- missing objects raise ObjectNotFoundError and refused ones AccessDeniedError (both
  StorageError naming the URL) at once, transient failures are retried with backoff.

Backends: local_store.py (paths, file://), s3.py (boto3 plus s3_direct.py's GETs),
fsspec_store.py (other schemes); registry.py picks one by scheme.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator

from climbstream.errors import StorageError
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
