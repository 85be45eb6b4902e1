"""Any other URL scheme (gs://, az://, hf://, memory://, ...) through fsspec, when installed.

The filesystem object is created lazily per process, like the boto3 client, because
fsspec filesystems may hold sockets or event loops that do not survive a fork.
`StorageOptions.extra` is passed to the filesystem unchanged (credentials, project, ...).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import fsspec

from climbstream.storage.process_local import PerProcess
from climbstream.storage.options import StorageOptions
from climbstream.storage.store import CHUNK_BYTES, ObjectStore, check_length, check_range
from climbstream.storage.urls import join_url
from climbstream.storage.retry import ObjectNotFoundError


class FsspecStore(ObjectStore):
    """URLs of one fsspec protocol; connection errors and timeouts are retried."""

    def __init__(self, protocol: str, options: StorageOptions | None = None) -> None:
        super().__init__(options)
        self.protocol = protocol
        self._fs = PerProcess(self._make_fs)

    def _make_fs(self):
        return fsspec.filesystem(self.protocol, **self.options.extra)

    @property
    def fs(self):
        """This process's filesystem object, made on first use in each process."""
        return self._fs.get()

    def _path(self, url: str) -> str:
        return self.fs._strip_protocol(url)

    def _is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, (ConnectionError, TimeoutError))

    def read_bytes(self, url: str, start: int | None = None, end: int | None = None) -> bytes:
        start, end = check_range(url, start, end)
        data = self._call("read", url, lambda: self.fs.cat_file(self._path(url), start=start, end=end))
        return check_length(url, start, end, data)

    def size(self, url: str) -> int:
        return int(self._call("size", url, lambda: self.fs.size(self._path(url))))

    def exists(self, url: str) -> bool:
        return bool(self._call("exists", url, lambda: self.fs.isfile(self._path(url))))

    def _iter_chunks(self, url: str) -> Iterator[bytes]:
        with self.fs.open(self._path(url), "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                yield chunk

    def put_bytes(self, data: bytes, url: str) -> None:
        self._call("put", url, lambda: self.fs.pipe_file(self._path(url), bytes(data)))

    def put_file(self, local_path: str | os.PathLike, url: str) -> None:
        self._call("put", url, lambda: self.fs.put_file(os.fspath(local_path), self._path(url)))

    def list(self, prefix_url: str) -> list[str]:
        path = self._path(prefix_url)
        if not self._call("list", prefix_url, lambda: self.fs.isdir(path)):
            raise ObjectNotFoundError(f"list {prefix_url}: no such directory; check the URL")
        found = self._call("list", prefix_url, lambda: self.fs.find(path))
        base = path.rstrip("/") + "/"
        # URLs in the caller's spelling of the prefix (fsspec may normalize it, e.g. memory:///).
        return sorted(join_url(prefix_url, p[len(base):]) for p in found if p.startswith(base))
