"""The small block of state shared by a dataset and its DataLoader workers.

Workers are separate processes (fork or spawn, persistent or not). What they must see
from the training loop (the consumed position and the stages) and what the loop must see
from them (loader counters) lives in a few shared-memory
tensors, which torch hands to workers under both start methods. Workers read position and
stages once, when their iterator starts; that is why a stage added mid-run takes effect
at the next iterator, and why an iterator that sees the generation change refuses to go
on (it would produce batches under stale stages).
"""

from __future__ import annotations

import numpy as np
import torch

from climbstream.errors import ConfigError

METRIC_NAMES = ("wait_s", "hit_weighted", "bytes_downloaded", "samples")


class SharedControl:
    """Position, stages, a generation number and loader counters, in shared memory."""

    def __init__(self, num_languages: int, max_stages: int = 1024, max_workers: int = 256):
        self.num_languages = num_languages
        self.max_workers = max_workers
        # position, number of stages, generation (bumped whenever stages or position are replaced)
        self._header = torch.zeros(3, dtype=torch.int64).share_memory_()
        self._stages = torch.zeros(max_stages, 1 + num_languages, dtype=torch.int64).share_memory_()
        self._metrics = torch.zeros(max_workers, len(METRIC_NAMES), dtype=torch.float64).share_memory_()
        # the start claimed by worker 0 of the current iterator: start, iteration, loader seed
        self._claim = torch.full((3,), -1, dtype=torch.int64).share_memory_()

    # -- position -------------------------------------------------------------------------
    @property
    def position(self) -> int:
        """First global position not consumed by the training loop."""
        return int(self._header[0])

    @position.setter
    def position(self, value: int) -> None:
        self._header[0] = int(value)

    # -- stages ---------------------------------------------------------------------------
    def set_stages(self, stages: list[tuple[int, np.ndarray]]) -> None:
        """Replace the stage table: [(start, uint64 weights[K]), ...]."""
        if len(stages) > self._stages.shape[0]:
            raise ConfigError(f"too many stages ({len(stages)}); at most {self._stages.shape[0]} are supported")
        for i, (start, weights) in enumerate(stages):
            self._stages[i, 0] = int(start)
            self._stages[i, 1:] = torch.from_numpy(np.asarray(weights, dtype=np.int64))
        self._header[1] = len(stages)
        self._header[2] += 1

    def stages(self) -> list[tuple[int, np.ndarray]]:
        """The stage table as [(start, uint64 weights[K]), ...]."""
        n = int(self._header[1])
        table = self._stages[:n].numpy().copy()
        return [(int(row[0]), row[1:].astype(np.uint64)) for row in table]

    # -- progress and counters ------------------------------------------------------------
    @property
    def generation(self) -> int:
        """Changes whenever stages or the position are replaced; iterators compare it."""
        return int(self._header[2])

    def restart_at(self, position: int) -> None:
        """Set the position and invalidate running iterators (load_state_dict)."""
        self._header[0] = int(position)
        self._header[2] += 1

    def claim_start(self, loader_seed: int, iteration: int) -> int:
        """Worker 0: fix the start of this iterator at the consumed position, and publish it.

        Workers of one DataLoader iterator must agree on where it starts, but they begin
        at different times, and the loop may already have consumed worker 0's first batch
        when worker 1 begins. Worker 0 reads the position before it yields anything, so
        what it reads is the position when the iterator was created. The start is written
        before the key fields, so a waiting worker that sees the key sees the start.
        """
        start = self.position
        self._claim[0] = start
        self._claim[1] = iteration
        self._claim[2] = loader_seed
        return start

    def wait_for_start(self, loader_seed: int, iteration: int, timeout_s: float = 600.0) -> int:
        """Workers 1..n-1: the start worker 0 claimed for the same iterator."""
        import time

        deadline = time.monotonic() + timeout_s
        while not (int(self._claim[2]) == loader_seed and int(self._claim[1]) == iteration):
            if time.monotonic() > deadline:
                raise ConfigError(
                    "DataLoader worker 0 never started this iterator; two live iterators over one "
                    "ClimbStream are not supported (create the next after the previous one is done)"
                )
            time.sleep(0.001)
        return int(self._claim[0])

    def add_metrics(self, slot: int, **values: float) -> None:
        """Add to worker `slot`'s counters (names from METRIC_NAMES).

        `hit_weighted` is the reader's cache hit rate times the samples it covers, so the
        summed rate is weighted by samples read.
        """
        for name, value in values.items():
            self._metrics[slot, METRIC_NAMES.index(name)] += float(value)

    def metrics(self) -> dict[str, float]:
        """Counters summed over workers: wait_s, cache_hit_rate, bytes_downloaded, samples."""
        total = self._metrics.sum(dim=0).tolist()
        values = dict(zip(METRIC_NAMES, total))
        weighted = values.pop("hit_weighted")
        values["cache_hit_rate"] = weighted / values["samples"] if values["samples"] else 1.0
        return values

    def check_slot(self, slot: int) -> int:
        """Validate a worker slot index."""
        if not 0 <= slot < self.max_workers:
            raise ConfigError(f"at most {self.max_workers} DataLoader workers per rank are supported (got worker {slot})")
        return slot
