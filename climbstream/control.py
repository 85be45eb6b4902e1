"""The small block of state shared by a dataset and its DataLoader workers.

Workers are separate processes (fork or spawn, persistent or not). What they must see
from the training loop (the consumed position and the stages) and what the loop must see
from them (how far each has produced, and loader counters) lives in a few shared-memory
tensors, which torch hands to workers under both start methods. Workers read position and
stages once, when their iterator starts; that is why a stage added mid-run takes effect
at the next iterator (see docs/architecture.md).
"""

from __future__ import annotations

import numpy as np
import torch

from climbstream.errors import ConfigError

METRIC_NAMES = ("wait_s", "hit_weighted", "bytes_downloaded", "samples")


class SharedControl:
    """Position, stages, produced-block marks and counters, in shared memory."""

    def __init__(self, num_languages: int, max_stages: int = 1024, max_workers: int = 256):
        self.num_languages = num_languages
        self.max_workers = max_workers
        self._header = torch.zeros(2, dtype=torch.int64).share_memory_()  # position, n_stages
        self._stages = torch.zeros(max_stages, 1 + num_languages, dtype=torch.int64).share_memory_()
        self._produced = torch.full((max_workers,), -1, dtype=torch.int64).share_memory_()
        self._metrics = torch.zeros(max_workers, len(METRIC_NAMES), dtype=torch.float64).share_memory_()

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

    def stages(self) -> list[tuple[int, np.ndarray]]:
        """The stage table as [(start, uint64 weights[K]), ...]."""
        n = int(self._header[1])
        table = self._stages[:n].numpy().copy()
        return [(int(row[0]), row[1:].astype(np.uint64)) for row in table]

    # -- progress and counters ------------------------------------------------------------
    def mark_produced(self, slot: int, block: int) -> None:
        """Record that worker `slot` has produced (started yielding) global batch `block`."""
        if block > int(self._produced[slot]):
            self._produced[slot] = block

    def last_produced_block(self) -> int:
        """The highest global batch any iterator of this process tree has started (-1: none)."""
        return int(self._produced.max())

    def reset_produced(self) -> None:
        """Forget produced marks (a fresh iterator after load_state_dict or a new stage)."""
        self._produced.fill_(-1)

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
