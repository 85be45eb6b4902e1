"""One pass over the stream, in one process: the main process or one DataLoader worker.

The iterator owns its place. It starts at a Cursor's position, produces the global
batches `first + worker, first + worker + num_workers, ...` (this rank's slice of each),
and its `state_dict()` is where the last batch it yielded whole ended, plus which batch
it produces next. That is the state torchdata's StatefulDataLoader snapshots in each
worker with every batch it delivers, so the loader's state is always the state of what
the loop received. In the main process, unless a loader follows its batches, it reports
each whole batch to the consumed-position owner (`on_batch`).

Promises: the batches are exactly those the pure plan gives for their positions; a batch
is read whole before its first sample is yielded (so the counters are exact); an
iterator started under stages that were replaced since refuses to go on (StateError)
instead of yielding batches of the old mixture.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from climbstream.errors import EpochCapError, StateError
from climbstream.read.node_reads import NodeReads
from climbstream.stream.state.consumption import STALE
from climbstream.stream.iteration.context import StreamContext
from climbstream.stream.plan.cursor import Cursor
from climbstream.stream.plan.plan import Plan
from climbstream.stream.state.control import COUNTERS
from climbstream.stream.iteration.sample import make_sample
from climbstream.stream.state.saved_state import saved_next_batch, with_iterator_place

log = logging.getLogger(__name__)


class StreamIterator:
    """Samples of this (rank, worker) from a cursor on; Stateful (state_dict / load_state_dict)."""

    def __init__(self, ctx: StreamContext, cursor: Cursor, worker: int, num_workers: int,
                 on_batch: Callable[[int, int], object] | None = None):
        self._ctx = ctx
        self.worker = worker
        self.num_workers = num_workers
        self._on_batch = on_batch  # (first position, generation) of each whole batch, in the main process
        self._slot = ctx.control.check_slot(worker)
        self._readers = None
        self._node_reads = None  # (orders, stage, NodeReads | None): the shards this node reads whole
        self._reported: dict = {}
        self._restart(cursor, ctx.layout.first_batch(cursor.position, worker))

    @property
    def generation(self) -> int:
        """The generation of the stages this iterator follows."""
        return self._cursor.generation

    def _restart(self, cursor: Cursor, next_batch: int) -> None:
        planner = self._ctx.planner
        self._cursor = cursor
        self._schedule = planner.schedule(cursor)
        self._orders = planner.orders(cursor.seed, cursor.partitions)
        self._caps = planner.cap_samples(cursor.seed)  # samples per language allowed by epoch_cap, or None
        self._next_batch = int(next_batch)
        self._done = cursor.position  # end of the last global batch yielded whole
        self._pending: list[dict] = []  # the current batch's samples not yet yielded, reversed
        self._current = None  # global batch of the pending samples
        self._plans: dict[int, Plan] = {}
        self._finished = False

    # -- iteration ------------------------------------------------------------------------
    def __iter__(self) -> "StreamIterator":
        return self

    def __next__(self) -> dict:
        if not self._pending:
            self._produce()
        sample = self._pending.pop()
        if not self._pending:
            self._done = (self._current + 1) * self._ctx.global_batch
            if self._on_batch is not None:
                self._on_batch(self._current * self._ctx.global_batch, self._cursor.generation)
            self._current = None
        return sample

    def _produce(self) -> None:
        """Read the next global batch's slice of this rank into `_pending`, or stop."""
        block = self._next_batch
        if self._finished or not self._in_stream(block):
            self._finish()
        if self._ctx.control.generation != self._cursor.generation:
            raise StateError(STALE.format(where=f"global batch {block}"))
        plan = self._plan(block)
        following = block + self.num_workers
        self._hint(plan, self._plan(following) if self._in_stream(following, hint=True) else None)
        samples = self._read(plan)
        self._report(len(plan))
        self._plans.pop(block, None)
        self._next_batch = following
        self._current = block
        self._pending = samples[::-1]

    def _finish(self):
        self._finished = True
        raise StopIteration

    def _in_stream(self, block: int, hint: bool = False) -> bool:
        """False past stop_position, or where an epoch cap ends the stream ('stop').

        With `hint` (asking only whether to prefetch the batch after this one) a cap never
        raises: the error belongs to the batch that passes it, when it is next.
        """
        ctx = self._ctx
        if ctx.stop_position is not None and block >= ctx.stop_position // ctx.global_batch:
            return False
        return not self._over_cap(block, raise_error=not hint)

    def _plan(self, block: int) -> Plan:
        if block not in self._plans:
            a, z = self._ctx.layout.slice_of(block)
            self._plans[block] = self._ctx.planner.plan(self._cursor, a, z)
        return self._plans[block]

    def _read(self, plan: Plan) -> list[dict]:
        names = self._ctx.languages
        readers = self._open_readers()
        columns = self._ctx.columns
        node = self._node(plan.start)
        whole = [True] * len(plan) if node is None else node.whole(plan.lang, plan.shard).tolist()
        out = []
        if readers.may_read_ranges:  # a local corpus, or whole shards only: no per-sample list on the hot path
            readers.fetch_ranges([(names[lang], shard, index, w) for lang, shard, index, w in
                                  zip(plan.lang.tolist(), plan.shard.tolist(), plan.index.tolist(), whole)])
        with readers.holding():  # each cached shard acquired once per batch, not per sample
            for j in range(len(plan)):
                lang = int(plan.lang[j])
                shard = int(plan.shard[j])
                index = int(plan.index[j])
                tokens, extra = readers.read_with(names[lang], shard, index, columns, whole=whole[j])
                out.append(make_sample(tokens, lang, plan.start + j, shard, index, extra))
        return out

    def _hint(self, plan: Plan, following: Plan | None) -> None:
        """Prefetch this batch's shards, then the next one's (the plan replaces the last); under a
        partitioned order only those this node reads whole (the rest are read by range)."""
        names = self._ctx.languages
        pairs = list(dict.fromkeys(plan.shards_in_need_order()
                                   + (following.shards_in_need_order() if following is not None else [])))
        node = self._node(plan.start)
        whole = None if node is None or not pairs else node.whole(*zip(*pairs)).tolist()
        self._open_readers().hint([(names[lang], shard) for lang, shard in pairs], whole=whole)

    def _node(self, position: int):
        """This node's NodeReads at `position` (None: P = 1, the read mode decides alone).

        A pure function of (orders, this node's partitions, the stage of `position`,
        read_whole_within), so every rank and worker of the node reads the same shards whole
        and shares them through the node's cache."""
        orders = self._orders
        if getattr(orders, "partitions", 1) == 1:
            return None
        stage = self._schedule.stage_index(position)
        if self._node_reads is None or self._node_reads[0] is not orders or self._node_reads[1] != stage:
            layout = self._ctx.layout
            node = NodeReads.for_rank(orders, self._schedule.stages[stage].weights, layout.rank, layout.world_size,
                                      self._ctx.readers.ranks_per_node, layout.global_batch,
                                      self._ctx.read_whole_within)
            self._node_reads = (orders, stage, node)
        return self._node_reads[2]

    def _open_readers(self):
        if self._readers is None:
            self._readers = self._ctx.readers.get(self.num_workers)
        return self._readers

    def _report(self, samples: int) -> None:
        m = self._readers.metrics()
        last = self._reported
        self._ctx.control.add_metrics(self._slot, samples=samples,
                                      **{k: m[k] - last.get(k, 0) for k in COUNTERS})
        self._reported = m

    # -- epoch caps -----------------------------------------------------------------------
    def _over_cap(self, block: int, raise_error: bool = True) -> bool:
        """True when global batch `block` would pass a language's epoch cap (same on every rank)."""
        ctx = self._ctx
        caps = self._caps
        if caps is None:
            return False
        counts = self._schedule.counts_at((block + 1) * ctx.global_batch)
        over = np.nonzero(counts > caps)[0]
        if not len(over):
            return False
        if not raise_error:
            return True
        name = ctx.languages[int(over[0])]
        if ctx.on_epoch_cap == "stop":
            log.info("stream ends at position %d: %s reached its epoch cap", block * ctx.global_batch, name)
            return True
        raise EpochCapError(
            f"language {name} would pass its epoch cap of {ctx.epoch_cap} epochs "
            f"({int(caps[over[0]])} samples) in global batch {block} (position {block * ctx.global_batch}); "
            f"lower its weight with add_stage, raise epoch_cap, or set on_epoch_cap='stop'"
        )

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The dataset state at the end of the last batch yielded whole, and this iterator's place."""
        state = self._ctx.codec.state_of(self._cursor.at(self._done))
        following = self._current if self._current is not None else self._next_batch
        return with_iterator_place(state, self.worker, self.num_workers, following)

    def load_state_dict(self, state: Mapping) -> None:
        """Continue from `state` (as `state_dict` wrote it, in the same worker of as many)."""
        cursor = self._ctx.codec.cursor_from(state, "iterator state", self._cursor, keep_generation=True)
        saved = saved_next_batch(state, self.worker, self.num_workers)  # checks: this worker of as many
        self._restart(cursor, self._ctx.layout.first_batch(cursor.position, self.worker) if saved is None else saved)
