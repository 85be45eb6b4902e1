"""One pass over the stream, in one process: the main process or one DataLoader worker.

The iterator owns its position. It starts at a Cursor's position, produces the global
batches `first + worker, first + worker + num_workers, ...` (this rank's slice of each),
and its `state_dict()` is where the last batch it yielded whole ended, plus which batch
it produces next. That is the state torchdata's StatefulDataLoader snapshots in each
worker with every batch it delivers, so the loader's state is always the state of what
the loop received; in the main process (num_workers=0) the iterator also moves the
dataset's consumed position as it yields.

Promises: the batches are exactly those the pure plan gives for their positions; a batch
is read whole before its first sample is yielded (so the counters are exact); an
iterator started under stages that were replaced since refuses to go on (StateError)
instead of yielding batches of the old mixture.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import torch

from climbstream.stream.cursor import Cursor
from climbstream.errors import EpochCapError, StateError
from climbstream.stream.plan import Plan, plan_range

log = logging.getLogger(__name__)


class StreamIterator:
    """Samples of this (rank, worker) from a cursor on; Stateful (state_dict / load_state_dict)."""

    def __init__(self, stream, cursor: Cursor, worker: int, num_workers: int, in_main: bool):
        self._stream = stream
        self.worker = worker
        self.num_workers = num_workers
        self._in_main = in_main
        self._slot = stream._control.check_slot(worker)
        self._readers = None
        self._reported: dict = {}
        self._restart(cursor, stream.layout.first_batch(cursor.position, worker))

    def _restart(self, cursor: Cursor, next_batch: int) -> None:
        stream = self._stream
        self._cursor = cursor
        self._schedule = stream._schedule_of(cursor)
        self._orders = stream._orders_of(cursor.seed)
        self._caps = stream._cap_samples()  # samples per language allowed by epoch_cap, or None
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
            self._done = (self._current + 1) * self._stream.global_batch
            self._current = None
            if self._in_main:
                self._stream._consumed_to(self._done)
        return sample

    def _produce(self) -> None:
        """Read the next global batch's slice of this rank into `_pending`, or stop."""
        stream = self._stream
        block = self._next_batch
        if self._finished or not self._in_stream(block):
            self._finish()
        if stream._control.generation != self._cursor.generation:
            raise StateError(
                f"stages or position changed (add_stage or load_state_dict) after this iterator started; "
                f"it stopped before global batch {block}; recreate the DataLoader iterator"
            )
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
        stream = self._stream
        if stream.stop_position is not None and block >= stream.stop_position // stream.global_batch:
            return False
        return not self._over_cap(block, raise_error=not hint)

    def _plan(self, block: int) -> Plan:
        if block not in self._plans:
            a, z = self._stream.layout.slice_of(block)
            self._plans[block] = plan_range(self._schedule, self._orders, a, z)
        return self._plans[block]

    def _read(self, plan: Plan) -> list[dict]:
        stream = self._stream
        names = stream.languages
        readers = self._open_readers()
        columns = stream.columns
        out = []
        with readers.holding():  # each cached shard acquired once per batch, not per sample
            for j in range(len(plan)):
                lang = int(plan.lang[j])
                shard = int(plan.shard[j])
                index = int(plan.index[j])
                tokens, extra = readers.read_with(names[lang], shard, index, columns)
                sample = {
                    "tokens": torch.from_numpy(np.asarray(tokens, dtype=np.int64)),
                    "lang": lang,
                    "position": plan.start + j,
                    "shard": stream.corpus.shard_path(names[lang], shard),
                    "index": index,
                }
                if extra:
                    sample.update(extra)
                out.append(sample)
        return out

    def _hint(self, plan: Plan, following: Plan | None) -> None:
        """Prefetch this batch's shards, then the next one's (the plan replaces the last)."""
        names = self._stream.languages
        pairs = plan.shards_in_need_order() + (following.shards_in_need_order() if following is not None else [])
        self._open_readers().hint([(names[lang], shard) for lang, shard in dict.fromkeys(pairs)])

    def _open_readers(self):
        if self._readers is None:
            self._readers = self._stream._readers_for(self.num_workers)
        return self._readers

    def _report(self, samples: int) -> None:
        m = self._readers.metrics()
        last = self._reported
        self._stream._control.add_metrics(
            self._slot,
            wait_s=m["wait_s"] - last.get("wait_s", 0.0),
            bytes_downloaded=m["bytes_downloaded"] - last.get("bytes_downloaded", 0.0),
            hit_weighted=m["cache_hit_rate"] * samples,
            samples=samples,
        )
        self._reported = m

    # -- epoch caps -----------------------------------------------------------------------
    def _over_cap(self, block: int, raise_error: bool = True) -> bool:
        """True when global batch `block` would pass a language's epoch cap (same on every rank)."""
        stream = self._stream
        caps = self._caps
        if caps is None:
            return False
        counts = self._schedule.counts_at((block + 1) * stream.global_batch)
        over = np.nonzero(counts > caps)[0]
        if not len(over):
            return False
        if not raise_error:
            return True
        name = stream.languages[int(over[0])]
        if stream.on_epoch_cap == "stop":
            log.info("stream ends at position %d: %s reached its epoch cap", block * stream.global_batch, name)
            return True
        raise EpochCapError(
            f"language {name} would pass its epoch cap of {stream.epoch_cap} epochs "
            f"({int(caps[over[0]])} samples) in global batch {block} (position {block * stream.global_batch}); "
            f"lower its weight with add_stage, raise epoch_cap, or set on_epoch_cap='stop'"
        )

    # -- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The dataset state at the end of the last batch yielded whole, and this iterator's place."""
        state = self._stream._state_of(self._cursor.at(self._done))
        following = self._current if self._current is not None else self._next_batch
        state["iterator"] = {"worker": self.worker, "num_workers": self.num_workers, "next_batch": following}
        return state

    def load_state_dict(self, state: Mapping) -> None:
        """Continue from `state` (as `state_dict` wrote it, in the same worker of as many)."""
        cursor = self._stream._cursor_from(state, "iterator state", generation=self._stream._control.generation)
        self._restart(cursor, self.next_batch_in(state, cursor))

    def next_batch_in(self, state: Mapping, cursor: Cursor) -> int:
        """The batch to produce next under `state`; checks it was saved by this worker of as many."""
        place = state.get("iterator")
        if place is None:
            return self._stream.layout.first_batch(cursor.position, self.worker)
        if (int(place["worker"]), int(place["num_workers"])) != (self.worker, self.num_workers):
            raise StateError(
                f"this loader state was saved by DataLoader worker {place['worker']} of {place['num_workers']} and "
                f"is loaded into worker {self.worker} of {self.num_workers}; a StatefulDataLoader resumes only with "
                f"the num_workers it was saved with ({place['num_workers']}). To change num_workers, resume the "
                f"stream instead: stream.load_state_dict(loader_state), then iterate a new loader without "
                f"load_state_dict"
            )
        return int(place["next_batch"])
