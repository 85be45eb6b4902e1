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

Which partitions a node reads (`node_partitions`), and which node counts N can read P
partitions efficiently (`check_nodes`): node n (ranks [n * rpn, (n+1) * rpn), torchrun's
numbering) reads positions [n B/N, (n+1) B/N) of every global batch, and partition q's
slice is [q B/P, (q+1) B/P). So:

- N divides P: node n reads exactly the slices of partitions [n P/N, (n+1) P/N) and
  downloads only their shards (1/N of the corpus);
- P divides N: N/P nodes share each partition's slice and each downloads its partition's
  shards (1/P of the corpus each): correct, and as good as P allows;
- otherwise a node's positions cut partitions in pieces and it downloads parts of several:
  refused with an error naming the node counts that work, since a run that silently
  downloads twice what it should is the failure this order exists to prevent.
"""

from __future__ import annotations

import numpy as np

from climbstream.errors import ConfigError
from climbstream.schedule.weights import WEIGHT_TOTAL

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
    def for_rank(cls, orders, weights, rank: int, world_size: int, ranks_per_node: int, global_batch: int,
                 within: float) -> "NodeReads | None":
        """The reads of the node of `rank` under a stage of integer `weights` (summing to
        WEIGHT_TOTAL), or None for the unpartitioned order (P = 1): what the iterator asks."""
        if getattr(orders, "partitions", 1) == 1:
            return None
        first, stop = node_partitions(orders.partitions, rank, world_size, ranks_per_node)
        shares = np.asarray(weights, dtype=np.float64) / WEIGHT_TOTAL
        return cls(orders, first, stop, shares, global_batch, within)

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


def check_nodes(partitions: int, world_size: int, ranks_per_node: int, where: str = "partitions") -> int:
    """The node count N = world_size / ranks_per_node, checked against P (module docstring)."""
    if partitions == 1:
        return max(1, world_size // max(1, ranks_per_node))
    if world_size % ranks_per_node:
        raise ConfigError(f"{where}: world size {world_size} is not a multiple of ranks_per_node {ranks_per_node}; "
                          f"the partitioned order (P = {partitions}) needs whole nodes: fix ranks_per_node")
    nodes = world_size // ranks_per_node
    if partitions % nodes and nodes % partitions:
        fits = [n for n in range(1, partitions + 1) if partitions % n == 0]
        raise ConfigError(
            f"{where}: this run has P = {partitions} partitions (fixed when the run started, saved in its state) "
            f"and {nodes} nodes ({world_size} ranks / {ranks_per_node} per node): run on a node count that "
            f"divides P ({', '.join(map(str, fits))}) or is a multiple of it"
        )
    return nodes


def node_partitions(partitions: int, rank: int, world_size: int, ranks_per_node: int) -> tuple[int, int]:
    """[first, stop): the partitions whose shards the node of `rank` reads (whole or shared)."""
    nodes = check_nodes(partitions, world_size, ranks_per_node)
    node = rank // ranks_per_node
    if partitions >= nodes:
        per = partitions // nodes
        return node * per, (node + 1) * per
    q = node * partitions // nodes
    return q, q + 1
