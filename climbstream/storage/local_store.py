"""LocalStore: plain paths and file:// URLs behind the ObjectStore interface."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

from climbstream.storage.retry import ObjectNotFoundError
from climbstream.storage.store import CHUNK_BYTES, TEMP_MARKER, ObjectStore, check_length, check_range, removed_on_failure, temp_path_for
from climbstream.storage.urls import join_url, local_path


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
