"""`open_store(url)`: the ObjectStore for a URL's scheme.

Local paths and file:// are LocalStore, s3:// and s3a:// S3Store, and any other scheme
goes to fsspec when fsspec has a filesystem for it (gs://, az://, ...). `register_store`
adds or replaces a scheme's backend (a store class, or any callable taking the
StorageOptions). Backends are imported on first use, so a scheme's packages (boto3,
fsspec) load only when a URL of it is opened.
"""

from __future__ import annotations

from typing import Callable

from climbstream.errors import ConfigError
from climbstream.extras import require
from climbstream.storage.options import StorageOptions
from climbstream.storage.store import ObjectStore
from climbstream.storage.urls import url_scheme


def _local(options: StorageOptions | None) -> ObjectStore:
    from climbstream.storage.local_store import LocalStore

    return LocalStore(options)


def _s3(options: StorageOptions | None) -> ObjectStore:
    from climbstream.storage.s3 import S3Store

    return S3Store(options)


_STORES: dict[str, Callable[[StorageOptions | None], ObjectStore]] = {"file": _local, "s3": _s3, "s3a": _s3}


def register_store(scheme: str, factory: Callable[[StorageOptions | None], ObjectStore]) -> None:
    """Serve URLs of `scheme` (e.g. "r2") with `factory(options)`."""
    _STORES[scheme.lower()] = factory


def open_store(url: str, options: StorageOptions | None = None) -> ObjectStore:
    """The store for `url`'s scheme: local paths and file://, s3:// (boto3), else fsspec.

    Creating a store is cheap and does no I/O; remote clients are created on first use in
    each process, so a store may be built before DataLoader workers fork.
    """
    scheme = url_scheme(url)
    factory = _STORES.get(scheme)
    if factory is not None:
        return factory(options)
    fsspec = require("fsspec", f"{url} (scheme {scheme}://; without it: local paths, file://, s3://)")
    from climbstream.storage.fsspec_store import FsspecStore

    try:
        fsspec.get_filesystem_class(scheme)
    except (ValueError, ImportError) as exc:
        raise ConfigError(f"{url}: no storage backend for {scheme}:// ({exc}); supported: local paths, "
                          f"file://, s3://, and fsspec protocols whose package is installed") from exc
    return FsspecStore(scheme, options)
