"""What the stream holds at a range of positions, without reading a byte.

`plan_range` composes the schedule (which language, and its k-th occurrence) with each
language's order (which shard and sample that k-th draw is). It is pure, so the dataset,
`climbstream inspect` and the tests all see the same answer. Under a partitioned order
(`orders` is a climbstream.schedule.partitioned.PartitionedOrders, P >= 2) the same draws
are arranged so that each partition's slice of a global batch holds that partition's
samples; `owner` then says which partition owns each position's sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Plan:
    """Parallel arrays, one entry per position in [start, stop)."""

    start: int
    lang: np.ndarray  # int32: index into the sorted language names
    k: np.ndarray  # int64: occurrences of that language before this position
    shard: np.ndarray  # int64: index into that language's train shard list
    index: np.ndarray  # int64: sample index inside the shard
    epoch: np.ndarray  # int64: the language's epoch this draw belongs to
    owner: np.ndarray | None = None  # int64: partition owning the sample (None: unpartitioned)

    def __len__(self) -> int:
        return len(self.lang)

    def shards_in_need_order(self) -> list[tuple[int, int]]:
        """Distinct (lang, shard) pairs in the order they are first needed."""
        seen: dict[tuple[int, int], None] = {}
        for lang, shard in zip(self.lang.tolist(), self.shard.tolist()):
            seen.setdefault((lang, shard), None)
        return list(seen)


def plan_range(schedule, orders: Sequence, start: int, stop: int) -> Plan:
    """Plan positions [start, stop): `schedule.lookup_range` then each language's order."""
    if getattr(orders, "partitions", 1) > 1:
        lang, k, shard, index, epoch, owner = orders.plan_arrays(schedule, start, stop)
        return Plan(start, np.asarray(lang, dtype=np.int32), k, shard, index, epoch, owner)
    lang, k = schedule.lookup_range(start, stop)
    lang = np.asarray(lang, dtype=np.int32)
    k = np.asarray(k, dtype=np.int64)
    shard = np.empty(len(k), dtype=np.int64)
    index = np.empty(len(k), dtype=np.int64)
    epoch = np.empty(len(k), dtype=np.int64)
    for li in np.unique(lang).tolist():
        mask = lang == li
        s, i, e = orders[li].locate(k[mask])
        shard[mask], index[mask], epoch[mask] = s, i, e
    return Plan(start, lang, k, shard, index, epoch)
