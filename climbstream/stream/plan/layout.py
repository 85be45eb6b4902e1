"""Which positions each (rank, worker) reads: pure functions of the batch layout.

Global batch b is positions [b*B, (b+1)*B). Data-parallel rank r of R takes the r-th
contiguous slice of length L = B / R of every global batch. Within a rank, whole local
batches go to the DataLoader's workers round robin, counting from the batch the iterator
starts at, which is exactly the order in which torch's DataLoader collects batches from
its workers. Together the (rank, worker) pairs cover every position once: no duplicate,
no gap, for any R and any number of workers, so resuming with other numbers continues the
same global stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from climbstream.errors import ConfigError


@dataclass(frozen=True)
class Layout:
    """The batch layout of one reader: global batch, data-parallel rank and size."""

    global_batch: int
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.global_batch <= 0:
            raise ConfigError(f"global_batch: must be a positive integer, got {self.global_batch}")
        if self.world_size <= 0 or not 0 <= self.rank < self.world_size:
            raise ConfigError(f"data-parallel rank {self.rank} is not in [0, {self.world_size})")
        if self.global_batch % self.world_size:
            raise ConfigError(
                f"global_batch {self.global_batch} is not divisible by the data-parallel size "
                f"{self.world_size}; choose a global batch that is a multiple of the number of ranks"
            )

    @property
    def local_batch(self) -> int:
        """Samples per rank per global batch: the DataLoader's batch_size."""
        return self.global_batch // self.world_size

    def slice_of(self, batch: int) -> tuple[int, int]:
        """[start, stop) positions this rank reads of global batch `batch`."""
        start = batch * self.global_batch + self.rank * self.local_batch
        return start, start + self.local_batch

    def first_batch(self, position: int, worker: int) -> int:
        """The global batch worker `worker` produces first in an iterator starting at `position`.

        Its next ones follow every num_workers batches (torch's round robin).
        """
        return position // self.global_batch + worker


def block_after(position: int, global_batch: int) -> int:
    """The first global batch boundary at or after `position` (ranks consume in lockstep)."""
    return -(-position // global_batch) * global_batch


def distributed_rank_and_size() -> tuple[int, int] | None:
    """(rank, world size) of the default torch.distributed group, or None when there is none."""
    try:
        import torch.distributed as dist
    except ImportError:  # torch without distributed support
        return None
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return None


def data_parallel_rank_and_size(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """Data-parallel rank and size: explicit values, else torch.distributed, else RANK/WORLD_SIZE.

    Tensor- or pipeline-parallel peers that must read the same data pass their
    data-parallel coordinates explicitly. With WORLD_SIZE > 1 and no RANK (Lightning's
    launcher sets only WORLD_SIZE before the process group exists) the rank is unknown:
    an error, never rank 0.
    """
    if rank is not None and world_size is not None:
        return int(rank), int(world_size)
    found = distributed_rank_and_size()
    if found is not None:
        return (found[0] if rank is None else rank), (found[1] if world_size is None else world_size)
    w = _env_int("WORLD_SIZE", 1) if world_size is None else world_size
    if rank is None and "RANK" not in os.environ and w > 1:
        raise ConfigError(
            f"data-parallel rank unknown: WORLD_SIZE={w} but RANK is not set and torch.distributed is not "
            f"initialized; use the stream after init_process_group (e.g. in train_dataloader()), or pass rank="
        )
    r = _env_int("RANK", 0) if rank is None else rank
    return r, w


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.strip().isdigit():
        raise ConfigError(f"{name}={value!r} in the environment is not a non-negative integer")
    return int(value)
