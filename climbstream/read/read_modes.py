"""Which way a corpus is read: in place, whole shards through the cache, or byte ranges.

`choose_read_mode` is a function of the manifest and the settings alone (no I/O), so the
choice is the same in every worker and can be tested without a store: local corpora are
read in place; compressed shards only through the cache; remote corpora through the
cache when it holds every shard in use (K languages x (2 x prefetch depth + 1) per
reader), else by ranges. Range reads are checked sample by sample against the shards'
sample sums (crc32, formats/sample_sums.py) under verify="auto"; they are refused under
verify="sha256", and warned about once per corpus under "auto" when the manifest predates
sample sums.
"""

from __future__ import annotations

import logging
from typing import Iterator

from climbstream.errors import ConfigError
from climbstream.formats.manifest import Manifest, ShardInfo
from climbstream.storage.unpack import Unpack
from climbstream.storage.urls import is_remote

log = logging.getLogger(__name__)

READ_MODES = ("auto", "range", "shard")
VERIFY_MODES = ("auto", "size", "sha256")


def choose_read_mode(manifest: Manifest, read_mode: str, verify: str, cache_dir: str | None,
                     cache_limit_bytes: int | None, shards_in_use: int) -> str:
    """"local", "shard" or "range" for this corpus (ConfigError for a choice that cannot work)."""
    if read_mode not in READ_MODES:
        raise ConfigError(f"read_mode must be one of {list(READ_MODES)}, got {read_mode!r}")
    if verify not in VERIFY_MODES:
        raise ConfigError(f"verify must be one of {list(VERIFY_MODES)}, got {verify!r}")
    if compressed(manifest):
        mode = _compressed_mode(manifest, read_mode, cache_dir)
    elif not is_remote(manifest.root):
        mode = "local"
    else:
        mode = _pick_remote_mode(manifest, read_mode, cache_dir, cache_limit_bytes, shards_in_use)
    if mode == "range" and verify != "size" and (verify == "sha256" or not has_sample_sums(manifest)):
        _unverified_ranges(manifest, verify, read_mode)
    return mode


def ranges_for_unowned(manifest: Manifest, mode: str, verify: str) -> bool:
    """Whether a "shard"-mode reader reads the shards its node does not read whole by range.

    Under a partitioned order a node reads whole only the shards its partitions own at
    least half of (docs/schedule.md, "Partitioned order"); the rest of what it trains on
    (slivers of shared shards, foreign draws) it reads by verified range. That needs
    ranges that are samples (not compressed shards: those are decompressed once per
    machine into the cache), a remote corpus (local ones are read in place: nothing is
    downloaded), and ranges that can be checked: the manifest's sample sums under
    verify="auto", or verify="size". Otherwise those shards stay whole, through the cache,
    as in "shard" mode without partitions.
    """
    if mode != "shard" or compressed(manifest) or not is_remote(manifest.root):
        return False
    return verify == "size" or (verify == "auto" and has_sample_sums(manifest))


def has_sample_sums(manifest: Manifest) -> bool:
    """Every shard lists its sample sums: range reads of the corpus are checked sample by sample."""
    return all(s.extra.get("sample_sums") for s in _all_shards(manifest))


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
        log.warning("%s: %s; byte-range reads are not hashed: this manifest lists no per-sample checksums (it "
                    "predates them). For verified reads rerun 'climbstream manifest' on the corpus, or give a "
                    "cache_dir with room for whole shards; verify='size' silences this", manifest.where, why)


def _pick_remote_mode(manifest: Manifest, read_mode: str, cache_dir: str | None,
                      cache_limit_bytes: int | None, shards_in_use: int) -> str:
    if read_mode == "shard" and cache_dir is None:
        raise ConfigError("read_mode='shard' needs a cache_dir for whole-shard downloads; "
                          "pass cache_dir or use read_mode='range'")
    if read_mode != "auto":
        return read_mode
    if cache_dir is None:
        return "range"
    largest = largest_stored_bytes(manifest)
    needed = shards_in_use * largest
    if cache_limit_bytes is not None and needed > cache_limit_bytes:
        log.info("read_mode auto: %d shards in use of up to %d bytes exceed the cache limit %d; "
                 "reading byte ranges", shards_in_use, largest, cache_limit_bytes)
        return "range"
    return "shard"


def largest_stored_bytes(manifest: Manifest) -> int:
    """The largest shard as the cache holds it (compressed shards decompressed)."""
    return max((stored_bytes(s) for s in _all_shards(manifest)), default=0)


def _all_shards(manifest: Manifest) -> Iterator[ShardInfo]:
    for lang in manifest.languages:
        for split in ("train", "heldout"):
            yield from manifest.shards(lang, split)


def compressed(manifest: Manifest) -> list[str]:
    """The compression algorithms the manifest's shards use (none for most corpora)."""
    return sorted({s.extra["compression"] for s in _all_shards(manifest) if s.extra.get("compression")})


def unpack_of(info: ShardInfo) -> Unpack | None:
    """How the cache makes this shard from its download (None: stored as downloaded)."""
    algorithm = info.extra.get("compression")
    return Unpack(algorithm, int(info.extra["raw_bytes"])) if algorithm else None


def stored_bytes(info: ShardInfo) -> int:
    """The shard's size as it is read: decompressed for a compressed shard."""
    return int(info.extra["raw_bytes"]) if info.extra.get("compression") else info.bytes


def _compressed_mode(manifest: Manifest, read_mode: str, cache_dir: str | None) -> str:
    """Compressed shards are read from the cache only (storage/unpack.py), local ones too."""
    algorithms = ", ".join(compressed(manifest))
    if read_mode == "range":
        raise ConfigError(f"{manifest.where}: shards are compressed ({algorithms}); byte ranges of a compressed "
                          f"shard are not samples. Use read_mode 'shard' or 'auto'")
    if cache_dir is None:
        raise ConfigError(f"{manifest.where}: shards are compressed ({algorithms}) and are decompressed once per "
                          f"machine into the shard cache; give a cache_dir (cache_dir: in YAML)")
    return "shard"
