"""Which positions each (rank, worker) reads: pure functions of the batch layout.

Global batch b is positions [b*B, (b+1)*B). Data-parallel rank r of R takes the r-th
contiguous slice of length L = B / R of every global batch. Within a rank, whole local
batches go to the DataLoader's workers round robin, counting from the batch the iterator
starts at, which is exactly the order in which torch's DataLoader collects batches from
its workers. Together the (rank, worker) pairs cover every position once: no duplicate,
no gap, for any R and any number of workers, so resuming with other numbers continues the
same global stream. Where the rank and size come from is climbstream/ranks.py.
"""

from __future__ import annotations

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
