"""ClimbStream's constructor arguments checked before anything is opened.

Each bad value is a one-line ConfigError naming the argument, the value and what is
accepted. Without these checks a few were accepted and failed later inside a worker
(`cache_limit_bytes="lots"`, `read_mode="bogus"`), and others came back as an
AttributeError or TypeError from deep inside (`storage={...}` with an s3:// source,
`sources=42`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from climbstream.errors import ConfigError
from climbstream.read.read_modes import READ_MODES, VERIFY_MODES
from climbstream.storage.options import StorageOptions
from climbstream.stream.config.checks import check_int

MAX_BYTES = 2**62


def stream_sources(sources) -> list[str]:
    """The sources as a list of paths or URLs (one string, a path, or a non-empty sequence of them)."""
    if isinstance(sources, (str, os.PathLike)):
        return [os.fspath(sources)]
    if isinstance(sources, Sequence) and sources and all(isinstance(s, (str, os.PathLike)) for s in sources):
        return [os.fspath(s) for s in sources]
    raise ConfigError(f"sources: expected a corpus folder or URL, or a non-empty list of them, got {sources!r}")


def stream_storage(storage) -> StorageOptions | None:
    """StorageOptions, or a mapping of its fields (unknown keys named), or None."""
    if storage is None or isinstance(storage, StorageOptions):
        return storage
    if isinstance(storage, Mapping):
        return StorageOptions.from_dict(dict(storage), where="storage")
    raise ConfigError(f"storage: expected a StorageOptions or a mapping of its fields (endpoint_url, region, ...), "
                      f"got {storage!r}")


def check_reader_arguments(*, cache_dir, cache_limit_bytes, prefetch_depth, read_mode, verify, window_shards,
                           on_epoch_cap) -> None:
    """The reader's settings, checked now rather than when a worker first opens a shard."""
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise ConfigError(f"cache_dir: expected a folder path, got {cache_dir!r}")
    if cache_limit_bytes is not None:
        check_int("cache_limit_bytes", cache_limit_bytes, 1, MAX_BYTES)
    check_int("prefetch_depth", prefetch_depth, 0, 1 << 16)
    check_int("window_shards", window_shards, 1, 1 << 20)
    if read_mode not in READ_MODES:
        raise ConfigError(f"read_mode: expected one of {', '.join(map(repr, READ_MODES))}, got {read_mode!r}")
    if verify not in VERIFY_MODES:
        raise ConfigError(f"verify: expected one of {', '.join(map(repr, VERIFY_MODES))}, got {verify!r}")
    if on_epoch_cap not in ("error", "stop"):
        raise ConfigError(f"on_epoch_cap: expected 'error' or 'stop', got {on_epoch_cap!r}")


def check_coordinates(rank, world_size) -> None:
    """Explicit data-parallel coordinates are integers (which rank of how many is the layout's check)."""
    if world_size is not None:
        check_int("world_size", world_size, 1, 1 << 24)
    if rank is not None:
        check_int("rank", rank, 0, 1 << 24)
