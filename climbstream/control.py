"""The small block of state shared by a dataset and its DataLoader workers.

Workers are separate processes (fork or spawn, persistent or not). What they must see
from the training loop (the consumed position, the stages, the seed, where a new iterator
starts) and what the loop must see from them (loader counters) lives in a few
shared-memory tensors, which torch hands to workers under both start methods.

Workers read position, stages and seed once, when their iterator starts; that is why a
stage added mid-run takes effect at the next iterator, why an iterator that sees the
generation change refuses to go on, and why `mark_consumed` refuses batches from an
iterator that started before the change (`fresh` is cleared by every change and set when
an iterator starts).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from climbstream.errors import ConfigError

METRIC_NAMES = ("wait_s", "hit_weighted", "bytes_downloaded", "samples")

# header slots
_POSITION, _N_STAGES, _GENERATION, _SEED, _FRESH, _PUBLISHED_START = range(6)


class SharedControl:
    """Position, stages, seed, iterator starts and loader counters, in shared memory."""

    def __init__(self, num_languages: int, seed: int, max_stages: int = 1024, max_workers: int = 256):
        self.num_languages = num_languages
        self.max_workers = max_workers
        self._header = torch.zeros(6, dtype=torch.int64).share_memory_()
        self._header[_SEED] = int(seed)
        self._stages = torch.zeros(max_stages, 1 + num_languages, dtype=torch.int64).share_memory_()
        self._metrics = torch.zeros(max_workers, len(METRIC_NAMES), dtype=torch.float64).share_memory_()
        # the start claimed by worker 0 of the current iterator: start, iteration, loader seed
        self._claim = torch.full((3,), -1, dtype=torch.int64).share_memory_()

    # -- position and seed ------------------------------------------------------------------
    @property
    def position(self) -> int:
        """First global position not consumed by the training loop."""
        return int(self._header[_POSITION])

    @position.setter
    def position(self, value: int) -> None:
        self._header[_POSITION] = int(value)

    @property
    def seed(self) -> int:
        """The stream's seed (shared, so persistent workers see a loaded state's seed)."""
        return int(self._header[_SEED])

    def restart_at(self, position: int, seed: int) -> None:
        """Set position and seed and invalidate running iterators (load_state_dict)."""
        self._header[_POSITION] = int(position)
        self._header[_SEED] = int(seed)
        self._changed()

    # -- stages ---------------------------------------------------------------------------
    def set_stages(self, stages: list[tuple[int, np.ndarray]]) -> None:
        """Replace the stage table: [(start, uint64 weights[K]), ...]."""
        if len(stages) > self._stages.shape[0]:
            raise ConfigError(f"too many stages ({len(stages)}); at most {self._stages.shape[0]} are supported")
        for i, (start, weights) in enumerate(stages):
            self._stages[i, 0] = int(start)
            self._stages[i, 1:] = torch.from_numpy(np.asarray(weights, dtype=np.int64))
        self._header[_N_STAGES] = len(stages)
        self._changed()

    def stages(self) -> list[tuple[int, np.ndarray]]:
        """The stage table as [(start, uint64 weights[K]), ...]."""
        n = int(self._header[_N_STAGES])
        table = self._stages[:n].numpy().copy()
        return [(int(row[0]), row[1:].astype(np.uint64)) for row in table]

    # -- iterators ------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """Changes whenever stages, seed or the position are replaced; iterators compare it."""
        return int(self._header[_GENERATION])

    @property
    def fresh(self) -> bool:
        """True once an iterator started after the last change (its batches may be consumed)."""
        return bool(self._header[_FRESH])

    def _changed(self) -> None:
        self._header[_GENERATION] += 1
        self._header[_FRESH] = 0

    def iterator_started(self) -> None:
        """An iterator began at the current position under the current stages."""
        self._header[_FRESH] = 1

    def publish_start(self) -> int:
        """Main process, before a DataLoader iterator exists: its workers start here."""
        start = self.position
        self._header[_PUBLISHED_START] = start
        self.iterator_started()
        return start

    @property
    def published_start(self) -> int:
        """What `publish_start` wrote for the current iterator."""
        return int(self._header[_PUBLISHED_START])

    def claim_start(self, loader_seed: int, iteration: int) -> int:
        """Worker 0 of a plain DataLoader: fix this iterator's start at the consumed position.

        Workers of one DataLoader iterator must agree on where it starts, but they begin
        at different times, and the loop may already have consumed worker 0's first batch
        when worker 1 begins. Worker 0 reads the position before it yields anything, so
        what it reads is the position when the iterator was created. The start is written
        before the key fields, so a waiting worker that sees the key sees the start.
        (`ClimbStream.dataloader()` publishes the start from the main process instead,
        which does not depend on the loader's seed being new for every iterator.)
        """
        start = self.position
        self._claim[0] = start
        self._claim[1] = iteration
        self._claim[2] = loader_seed
        self.iterator_started()
        return start

    def wait_for_start(self, loader_seed: int, iteration: int, timeout_s: float = 600.0) -> int:
        """Workers 1..n-1 of a plain DataLoader: the start worker 0 claimed for the same iterator."""
        deadline = time.monotonic() + timeout_s
        while not (int(self._claim[2]) == loader_seed and int(self._claim[1]) == iteration):
            if time.monotonic() > deadline:
                raise ConfigError(
                    "DataLoader worker 0 never started this iterator; two live iterators over one "
                    "ClimbStream are not supported (create the next after the previous one is done)"
                )
            time.sleep(0.001)
        return int(self._claim[0])

    # -- counters -------------------------------------------------------------------------
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
