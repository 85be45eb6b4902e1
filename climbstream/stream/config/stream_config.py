"""`climbstream.yaml`: the dataset configuration, parsed and validated in one place.

Every key is a field of StreamConfig; an unknown key is an error naming the key, the
file and the closest known key. Sizes accept "512MB"/"4GiB"-style strings.

    sources: [data/corpus]            # manifest folders or URLs (s3://bucket/prefix)
    weights: {method: temperature, alpha: 0.3}   # or {en: 0.5, fr: 0.5}, or alloc.yaml
    global_batch: 64
    seed: 0
    cache_dir: /tmp/climbstream-cache
    cache_limit: 20GB
    storage: {endpoint_url: http://127.0.0.1:9000, region: us-east-1}
    verify: auto                      # auto | sha256 (range reads refused) | size
    columns: [id]                     # other MDS columns added to each sample (default none)
    partitions: 16                    # partitioned order: node n reads its own shards (default:
                                      # the node count when known, else 1; docs/schedule.md)
    read_whole_within: 400            # under partitions: whole shards only where the node trains
                                      # through its window within this many batches, else ranges
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from climbstream.errors import ConfigError

MAX_SIZE = 2**62
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(value, where: str) -> int | None:
    """Bytes from an int or a string like '20GB' / '512 MiB' (None stays None)."""
    if value is None:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < MAX_SIZE:
            raise ConfigError(f"{where}: {value} bytes is not a size between 0 and 2**62")
        return value
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", str(value))
    if not match or match.group(2).upper() not in _UNITS:
        raise ConfigError(f"{where}: {value!r} is not a size; write bytes or e.g. '20GB', '512MiB'")
    size = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if not size < MAX_SIZE:
        raise ConfigError(f"{where}: {value!r} is more than 2**62 bytes; write the cache's real size")
    return int(size)


@dataclass(repr=False)
class StreamConfig:
    """What a ClimbStream is built from; validated on construction."""

    sources: list[str]
    weights: Any
    global_batch: int
    seed: int = 0
    rank: int | None = None
    world_size: int | None = None
    cache_dir: str | None = None
    cache_limit: Any = None
    prefetch_depth: int = 2
    read_mode: str = "auto"
    storage: dict = field(default_factory=dict)
    epoch_cap: float | None = None
    on_epoch_cap: str = "error"
    window_shards: int = 4
    stop_position: int | None = None
    verify: str = "auto"
    columns: list | None = None
    ranks_per_node: int | None = None
    partitions: int | None = None
    read_whole_within: float | None = None
    where: str = "config"

    def __post_init__(self) -> None:
        w = self.where
        if isinstance(self.sources, str):
            self.sources = [self.sources]
        if not self.sources or not all(isinstance(s, str) for s in self.sources):
            raise ConfigError(f"{w}: sources: give a list of manifest folders or URLs")
        if self.weights is None:
            raise ConfigError(f"{w}: weights: required (a mapping, an allocation file, or {{method: ...}})")
        for name in ("global_batch", "prefetch_depth", "window_shards", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{w}: {name}: expected an integer, got {value!r}")
        if self.global_batch <= 0:
            raise ConfigError(f"{w}: global_batch: must be positive, got {self.global_batch}")
        if self.read_mode not in ("auto", "shard", "range"):
            raise ConfigError(f"{w}: read_mode: expected auto, shard or range, got {self.read_mode!r}")
        if self.verify not in ("auto", "size", "sha256"):
            raise ConfigError(f"{w}: verify: expected auto, size or sha256, got {self.verify!r}")
        if self.on_epoch_cap not in ("error", "stop"):
            raise ConfigError(f"{w}: on_epoch_cap: expected error or stop, got {self.on_epoch_cap!r}")
        if not isinstance(self.storage, dict):
            raise ConfigError(f"{w}: storage: expected a mapping of storage options")
        self.cache_limit = parse_size(self.cache_limit, f"{w}: cache_limit")
        if self.partitions is not None and (isinstance(self.partitions, bool) or not isinstance(self.partitions, int)
                                            or self.partitions < 1):
            raise ConfigError(f"{w}: partitions: expected a positive integer (1 = unpartitioned), got "
                              f"{self.partitions!r}")

    def __repr__(self) -> str:
        from climbstream.storage.options import masked

        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["storage"] = masked(self.storage)
        return f"StreamConfig({', '.join(f'{k}={v!r}' for k, v in fields.items())})"

    @classmethod
    def from_dict(cls, data: dict, where: str = "config", base_dir: str | None = None) -> "StreamConfig":
        """Validate keys and build; relative local paths resolve against `base_dir`."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping at the top level")
        known = [f.name for f in dataclasses.fields(cls) if f.name != "where"]
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
                raise ConfigError(f"{where}: unknown key '{key}'{hint}")
        for key in ("sources", "weights", "global_batch"):
            if key not in data:
                raise ConfigError(f"{where}: missing required key '{key}'")
        data = dict(data)
        if base_dir:
            sources = [data["sources"]] if isinstance(data["sources"], str) else data["sources"]
            data["sources"] = [_resolve(s, base_dir) for s in sources]
            if isinstance(data["weights"], str):
                data["weights"] = _resolve(data["weights"], base_dir)
            elif isinstance(data["weights"], dict) and isinstance(data["weights"].get("law"), str):
                data["weights"] = {**data["weights"], "law": _resolve(data["weights"]["law"], base_dir)}
        return cls(**data, where=where)

    @classmethod
    def from_yaml(cls, path: str) -> "StreamConfig":
        """Read and validate a YAML file."""
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
        return cls.from_dict(data or {}, where=path, base_dir=os.path.dirname(os.path.abspath(path)))

    def dataset_kwargs(self) -> dict:
        """Keyword arguments for ClimbStream(...)."""
        from climbstream.storage.options import StorageOptions

        storage = StorageOptions.from_dict(self.storage, where=f"{self.where}: storage") if self.storage else None
        return dict(
            sources=self.sources, weights=self.weights, global_batch=self.global_batch, seed=self.seed,
            rank=self.rank, world_size=self.world_size, cache_dir=self.cache_dir,
            cache_limit_bytes=self.cache_limit, prefetch_depth=self.prefetch_depth, read_mode=self.read_mode,
            storage=storage, epoch_cap=self.epoch_cap, on_epoch_cap=self.on_epoch_cap,
            window_shards=self.window_shards, stop_position=self.stop_position, verify=self.verify,
            columns=self.columns, ranks_per_node=self.ranks_per_node,
            **({} if self.partitions is None else {"partitions": self.partitions}),
            **({} if self.read_whole_within is None else {"read_whole_within": self.read_whole_within}),
        )


def _resolve(path: str, base_dir: str) -> str:
    if "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base_dir, path))
