"""What the stream holds where, for a given cursor: schedule, orders, epoch caps (no I/O).

The dataset and every iterator ask one Planner, so a Schedule is built once per set of
stages and the per-language orders once per seed, whatever the number of iterators.
"""

from __future__ import annotations

import numpy as np

from climbstream.errors import ScheduleError, StateError
from climbstream.stream.plan.cursor import Cursor
from climbstream.stream.plan.plan import Plan, plan_range


class Planner:
    """The pure plan of a corpus: `schedule(cursor)`, `orders(seed)`, `plan(cursor, start, stop)`."""

    def __init__(self, corpus, global_batch: int, window_shards: int, epoch_cap: float | None):
        self.corpus = corpus
        self.global_batch = int(global_batch)
        self.window_shards = int(window_shards)
        self.epoch_cap = epoch_cap
        self._schedule: tuple | None = None  # (stage key, Schedule)
        self._orders: tuple | None = None  # (seed, [LanguageOrder])

    def schedule(self, cursor: Cursor, where: str | None = None):
        """The Schedule of the cursor's seed and stages (a bad stage names `where`, a StateError)."""
        from climbstream.schedule.schedule import Schedule, Stage

        key = cursor.stage_key()
        if self._schedule is None or self._schedule[0] != key:
            try:
                schedule = Schedule(len(self.corpus.languages), self.global_batch, cursor.seed,
                                    [Stage(s, w) for s, w in cursor.stages])
            except ScheduleError as err:
                if where is None:
                    raise
                raise StateError(f"{where}.stages: {err}") from None
            self._schedule = (key, schedule)
        return self._schedule[1]

    def orders(self, seed: int, partitions: int = 1) -> list:
        """One LanguageOrder per language for `seed`."""
        if self._orders is None or self._orders[0] != (seed, partitions):
            self._orders = ((seed, partitions), self.corpus.orders(seed, self.window_shards, partitions))
        return self._orders[1]

    def plan(self, cursor: Cursor, start: int, stop: int) -> Plan:
        """Language, occurrence, shard and sample index of each position in [start, stop)."""
        return plan_range(self.schedule(cursor), self.orders(cursor.seed, cursor.partitions), start, stop)

    def samples_per_epoch(self, seed: int) -> np.ndarray:
        """Training samples of each language (one epoch), int64[K]."""
        return np.array([o.samples_per_epoch for o in self.orders(seed)], dtype=np.int64)

    def cap_samples(self, seed: int) -> np.ndarray | None:
        """Samples of each language the epoch cap allows, or None without a cap."""
        if self.epoch_cap is None:
            return None
        return np.floor(self.samples_per_epoch(seed).astype(np.float64) * self.epoch_cap).astype(np.int64)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_schedule"] = None  # rebuilt where needed: a worker pays for it once
        state["_orders"] = None
        return state
