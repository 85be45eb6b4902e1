"""Which train shards a node reads whole under a partitioned order; the rest it reads by range.

Why: with P partitions (docs/schedule.md, "Partitioned order") a node's positions draw
almost only from its own partitions' parts, but a part's boundary shards are shared with
the neighbouring part, a language with fewer shards than nodes is cut into slivers, and a
few draws per batch are foreign (another partition's sample in this node's slice).
Downloading every shard the node touches whole would download those shards on every
node. And over a short run, or for a language drawn a few times per batch, even a shard
the node owns is mostly downloaded for nothing: at 128 nodes a node trains on 8 samples
per global batch, while one window of a language holds 4 shards of 2,000.

The rule (`PartitionedOrders.read_whole`): a node reads a shard whole where its
partitions own at least half of it AND the node trains through its window of that
language within `within` global batches (`read_whole_within`, at the language's share of
the current stage); every other sample it trains on by verified range. Per epoch the job
then downloads at most 2 bytes per byte trained, plus the foreign share; over a run of H
global batches, whole reads download at most about (1 + within / H) times what the node
trains on from them (docs/schedule.md, "What a node downloads").

`NodeReads` is a pure function of (the orders, the node's partitions [first, stop), the
stage's weights, the global batch, `within`), so every rank and worker of a node agrees
on it and they share the node's cache: a shard is whole for all of them or for none
(ranks that straddle a stage boundary may briefly disagree: that costs bytes, never
changes a sample). P = 1 has no NodeReads: every shard is read as the corpus's read mode
says, as before partitions.
"""

from __future__ import annotations

import numpy as np

DEFAULT_READ_WHOLE_WITHIN = 400.0
"""Global batches: benchmarks/scaleout.py --sweep shows the trade (docs/schedule.md)."""


class NodeReads:
    """`whole(lang, shard)`: bool per draw, True where the node reads that shard whole."""

    def __init__(self, orders, first: int, stop: int, shares=None, global_batch: int = 0,
                 within: float = float("inf")):
        """`shares[i]`: language i's share of the draws (the stage's weight / 2**32); None:
        the ownership rule alone (every owned shard whole, whatever the rate)."""
        if not 0 <= first < stop <= orders.partitions:
            raise ValueError(f"node partitions [{first}, {stop}) outside [0, {orders.partitions})")
        self.partitions = int(orders.partitions)
        self.first, self.stop = int(first), int(stop)
        per_language = [np.asarray(orders.read_whole(i, first, stop, None if shares is None else float(shares[i]),
                                                     global_batch, within), dtype=bool)
                        for i in range(len(orders))]
        self._offsets = np.concatenate([[0], np.cumsum([w.size for w in per_language])]).astype(np.int64)
        self._whole = np.concatenate(per_language) if per_language else np.zeros(0, dtype=bool)

    @classmethod
    def of(cls, orders, first: int, stop: int, shares=None, global_batch: int = 0,
           within: float = float("inf")) -> "NodeReads | None":
        """The node's reads under `orders`, or None for the unpartitioned order (P = 1)."""
        if getattr(orders, "partitions", 1) == 1:
            return None
        return cls(orders, first, stop, shares, global_batch, within)

    def whole(self, lang, shard) -> np.ndarray:
        """bool per (lang, shard) pair (language index, shard index into its train shards)."""
        lang = np.asarray(lang, dtype=np.int64)
        shard = np.asarray(shard, dtype=np.int64)
        return self._whole[self._offsets[lang] + shard]

    def whole_shards(self) -> int:
        """How many train shards, over all languages, the node reads whole."""
        return int(self._whole.sum())
