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
        self._grown: tuple | None = None  # (cursor key, orders across the cursor's corpus changes)

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
        """One LanguageOrder per language for `seed` (this corpus, read from position 0)."""
        if self._orders is None or self._orders[0] != (seed, partitions):
            self._orders = ((seed, partitions), self.corpus.orders(seed, self.window_shards, partitions))
        return self._orders[1]

    def orders_of(self, cursor: Cursor) -> list:
        """The cursor's per-language orders: across its corpus changes (a GrownOrder for a language
        that grew or was retired, schedule/growth.py), else `orders(seed, P)`."""
        if not cursor.corpus:
            return self.orders(cursor.seed, cursor.partitions)
        key = (cursor.seed, cursor.partitions, cursor.corpus, cursor.stage_key())
        if self._grown is None or self._grown[0] != key:
            versions = language_versions(cursor.corpus, self.schedule(cursor), self.corpus.languages)
            self._grown = (key, self.corpus.orders(cursor.seed, self.window_shards, cursor.partitions, versions))
        return self._grown[1]

    def plan(self, cursor: Cursor, start: int, stop: int) -> Plan:
        """Language, occurrence, shard and sample index of each position in [start, stop)."""
        return plan_range(self.schedule(cursor), self.orders_of(cursor), start, stop)

    def samples_per_epoch(self, seed: int) -> np.ndarray:
        """Training samples of each language (one epoch), int64[K]."""
        return np.array([o.samples_per_epoch for o in self.orders(seed)], dtype=np.int64)

    def cap_samples(self, cursor: Cursor) -> np.ndarray | None:
        """Draws of each language the epoch cap allows, or None without a cap (epochs counted across
        corpus changes: GrownOrder.draws_within_epochs)."""
        if self.epoch_cap is None:
            return None
        caps = np.floor(self.samples_per_epoch(cursor.seed).astype(np.float64) * self.epoch_cap).astype(np.int64)
        if cursor.corpus:
            for i, order in enumerate(self.orders_of(cursor)):
                if hasattr(order, "draws_within_epochs"):
                    caps[i] = order.draws_within_epochs(self.epoch_cap)
        return caps

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_schedule"] = None  # rebuilt where needed: a worker pays for it once
        state["_orders"] = None
        state["_grown"] = None
        return state


def language_versions(history, schedule, languages) -> dict[str, list]:
    """{NAME: [growth.Version]} of the languages whose shards changed across `history` (CorpusVersions).

    A version's first draw is the schedule's count of the language at the version's start
    (exact, O(B + K)). Versions that leave a language's shards as they were are dropped, and
    so are the empty versions before a language was added (its first draw is then 0), so a
    language that never changed, or was added, keeps the plain order of its name.
    """
    from climbstream.schedule.growth import Version

    out: dict[str, list] = {}
    counts = {v.start: schedule.counts_at(v.start) for v in history}
    for i, name in enumerate(languages):
        versions: list = []
        for v in history:
            r = v.record(name)
            if versions and not r.restart and (r.shards, r.samples) == (versions[-1].shards, versions[-1].samples):
                continue
            versions.append(Version(int(counts[v.start][i]), r.shards, r.samples, r.restart))
        while len(versions) > 1 and versions[0].samples == 0 and versions[1].first_draw == 0:
            versions = [Version(0, versions[1].shards, versions[1].samples)] + versions[2:]
        if len(versions) > 1:
            out[name] = versions
    return out
