"""Where this process stands among its peers: rank, world size and ranks per node, found in one place.

Why one place: the stream's batch layout, its default partition count and the loss log's
rank-0 sinks all ask, and four resolvers had drifted apart (one ignored a bad
LOCAL_WORLD_SIZE, one failed on a bad RANK with a bare ValueError). The order is the same
for every question: a value passed explicitly, else torch.distributed's default group
when it is initialized, else torchrun's environment (RANK, WORLD_SIZE, LOCAL_WORLD_SIZE),
else the single-process default. A variable that is set but is not an integer in range is
a one-line ConfigError naming it and the fix, whoever asks.

Tensor- or pipeline-parallel peers that must read the same data pass their data-parallel
coordinates explicitly (`ClimbStream(rank=, world_size=)`); the trainer integrations do.
"""

from __future__ import annotations

import os

from climbstream.errors import ConfigError


def distributed_rank_and_size() -> tuple[int, int] | None:
    """(rank, world size) of the default torch.distributed group, or None when there is none."""
    try:
        import torch.distributed as dist
    except ImportError:  # torch without distributed support
        return None
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def global_rank() -> int:
    """torch.distributed's global rank when initialized, else $RANK, else 0 (who writes rank-0 files)."""
    found = distributed_rank_and_size()
    return found[0] if found is not None else env_int("RANK", 0, 0)


def data_parallel_rank_and_size(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """Data-parallel rank and size: explicit values, else torch.distributed, else RANK/WORLD_SIZE.

    With WORLD_SIZE > 1 and no RANK (Lightning's launcher sets only WORLD_SIZE before the
    process group exists) the rank is unknown: an error, never rank 0.
    """
    if rank is not None and world_size is not None:
        return int(rank), int(world_size)
    found = distributed_rank_and_size()
    if found is not None:
        return (found[0] if rank is None else rank), (found[1] if world_size is None else world_size)
    w = env_int("WORLD_SIZE", 1, 1, "world_size") if world_size is None else world_size
    if rank is None and "RANK" not in os.environ and w > 1:
        raise ConfigError(
            f"data-parallel rank unknown: WORLD_SIZE={w} but RANK is not set and torch.distributed is not "
            f"initialized; use the stream after init_process_group (e.g. in train_dataloader()), or pass rank="
        )
    r = env_int("RANK", 0, 0, "rank") if rank is None else rank
    return r, w


def world_size_if_known(world_size: int | None = None) -> int | None:
    """The explicit world size, else torch.distributed's, else WORLD_SIZE, else None (unknown)."""
    if world_size is not None:
        return int(world_size)
    found = distributed_rank_and_size()
    if found is not None:
        return found[1]
    return env_int("WORLD_SIZE", None, 1, "world_size")


def ranks_per_node_if_known(ranks_per_node: int | None = None) -> int | None:
    """The explicit ranks per node, else torchrun's LOCAL_WORLD_SIZE, else None (unknown)."""
    if ranks_per_node is not None:
        return int(ranks_per_node)
    return env_int("LOCAL_WORLD_SIZE", None, 1, "ranks_per_node")


def ranks_per_node(value: int | None = None) -> int:
    """The explicit ranks per node, else torchrun's LOCAL_WORLD_SIZE, else 1."""
    known = ranks_per_node_if_known(value)
    return 1 if known is None else known


def env_int(name: str, default: int | None, minimum: int, argument: str | None = None) -> int | None:
    """The integer in environment variable `name` (`default` when unset); ConfigError when it is
    set but is not an integer >= `minimum`, naming the variable and the fix."""
    value = os.environ.get(name)
    if value is None:
        return default
    text = value.strip()
    if not text.isdigit() or int(text) < minimum:
        instead = f", or pass {argument}= explicitly" if argument else ""
        raise ConfigError(f"{name}={value!r} in the environment is not an integer >= {minimum}; "
                          f"fix or unset it{instead}")
    return int(text)
