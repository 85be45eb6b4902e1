"""The consumed position and its generation: one owner, in the main process.

The consumed position is the first position the training loop has not trained on: the
end of the last global batch a training step received (interfaces: the state's
`position`). Three things can say where that is, and this class is the only place that
listens to them and the only place that moves it:

- a followed loader (`stream.dataloader()`, or an iterator in the main process) reports
  each global batch it hands to the loop (`handed_over`). In a plain loop the loop
  trains on a batch as soon as it receives it, so this moves the position;
- a training step reports the batch it trained on (`trained`, from `mark_consumed`).
  Trainers that fetch ahead of the step (Lightning's prefetcher, accelerate's look-ahead)
  hand batches over before the step that trains on them; after `follow_steps()` only
  the steps move the position, and the hand-overs are only checked for order;
- a loaded state or a new stage replaces the cursor (`replace`): a new generation.

Every batch that reaches the loop is checked against the generation it was made under
(`check_current`), so batches a running iterator prefetched under replaced stages are
refused, never trained on. Persistent DataLoader workers see the cursor through the
SharedControl, published whenever it changes and when a new iterator starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from climbstream.errors import StateError
from climbstream.stream.state.control import SharedControl
from climbstream.stream.plan.cursor import Cursor
from climbstream.stream.plan.layout import block_after

UNKNOWN_POSITION = (
    "the consumed position is unknown: this stream was read by DataLoader workers whose batches the main "
    "process does not see (a plain DataLoader, or a StatefulDataLoader), and the loop never called "
    "mark_consumed. Use stream.dataloader() (it follows its batches), save loader.state_dict() of a "
    "StatefulDataLoader (stream.load_state_dict accepts it), or call stream.mark_consumed(batch) after each step"
)

LOOK_AHEAD = (
    "the consumed position is unknown: {framework} fetches each batch before the step that trains on it, so the "
    "batches handed over run ahead of training. Use the integration, which reports each step "
    "(climbstream.integrations: ClimbTrainer for the HF Trainer, prepare_loader for accelerate, ClimbCallback "
    "for Lightning), or call stream.follow_steps() and stream.mark_consumed(batch) after each step"
)

ACCELERATE_AHEAD = (
    "the consumed position is unknown: accelerate's prepared loader fetches each batch before the step that trains "
    "on it, so the batches the stream handed over run ahead of training. Use "
    "climbstream.integrations.accelerate.prepare_loader(accelerator, stream) instead of accelerator.prepare for this "
    "loader (it registers the stream itself), or, with use_stateful_dataloader=True, let save_state keep the loader's "
    "state and do not register the stream"
)

STALE = ("{where}: this batch was made before add_stage or load_state_dict replaced the stages it follows; "
         "recreate the DataLoader iterator (iter(loader)) and train on its batches")


def position_after_snapshot(saved_positions, steps_since: int, global_batch: int) -> int:
    """The consumed position of a StatefulDataLoader state (loader_state.py reads the parts out of it).

    Every worker's saved state says where the last batch it delivered ended, and torchdata
    snapshots only batches the loop has received, in order; so the largest of them is the
    consumed position at the snapshot, and each step taken since is one more global batch.
    """
    return max(int(p) for p in saved_positions) + int(steps_since) * int(global_batch)


class Consumption:
    """Where the loop is: the cursor at the consumed position, and what a loader handed over."""

    def __init__(self, cursor: Cursor, control: SharedControl, global_batch: int):
        self._control = control
        self._global_batch = int(global_batch)
        self._by_steps = False
        self._following = False
        self._ahead: str | None = None  # a framework that fetches batches before the step trains on them
        self.replace(cursor, known=False)

    # -- reading --------------------------------------------------------------------------
    @property
    def cursor(self) -> Cursor:
        """Seed, stages and generation, at the consumed position (even where it is unknown)."""
        return self._cursor

    @property
    def position(self) -> int:
        """The consumed position (StateError where unfollowed workers ran and no step reported)."""
        if not self._steps_decide:
            ahead = self._ahead or (self._control.ahead if self._control.position_unknown else None)
            if ahead == "accelerate":
                raise StateError(ACCELERATE_AHEAD)
            if ahead is not None:
                raise StateError(LOOK_AHEAD.format(framework=ahead))
            if self._control.position_unknown:
                raise StateError(UNKNOWN_POSITION)
        return self._cursor.position

    @property
    def _steps_decide(self) -> bool:
        return self._by_steps or (self._ahead is not None and self._stepped)

    @property
    def follows_steps(self) -> bool:
        """True once only training steps (`trained`) move the position."""
        return self._by_steps

    def follow_steps(self) -> None:
        """From now on only `trained` moves the position; hand-overs run ahead of it."""
        self._by_steps = True

    def fetched_ahead_by(self, framework: str) -> None:
        """`framework` takes each batch before the step that trains on it: hand-overs cannot tell the position."""
        self._ahead = framework

    @contextlib.contextmanager
    def following(self) -> Iterator[None]:
        """While a followed loader starts its workers: copies of the stream made now know they are followed."""
        self._following = True
        try:
            yield
        finally:
            self._following = False

    @property
    def following_now(self) -> bool:
        """True in a worker created by a followed loader (its copy was made inside `following`)."""
        return self._following

    # -- what moves it ----------------------------------------------------------------------
    def replace(self, cursor: Cursor, known: bool = True) -> None:
        """A loaded state or a new stage: the cursor from here on (published to workers)."""
        self._cursor = cursor
        self._handed = cursor.position
        self._ahead = None
        self._stepped = False
        self._control.publish(cursor)
        if known:
            self._control.position_known()

    def start_iterator(self, followed: bool) -> Cursor:
        """The cursor a new iterator starts from: the consumed position, published for persistent workers."""
        if followed:
            self._cursor = self._cursor.at(self.position)
            self._control.publish(self._cursor)
            self._control.position_known()
        self._handed = self._cursor.position
        return self._cursor

    def handed_over(self, first: int, generation: int, where: str = "DataLoader") -> int:
        """A loader handed the loop the batch holding position `first`; returns its global batch's end."""
        self.check_current(generation, where)
        end = self._end_of(first)
        if end != self._handed and end != self._handed + self._global_batch:
            raise self._order_error(first, self._handed)
        self._handed = end
        if not (self._by_steps or self._ahead):
            self._cursor = self._cursor.at(end)  # not published: this iterator's workers started already
        return end

    def trained(self, first: int, where: str) -> int:
        """A training step trained on the batch holding position `first`; returns the new position.

        Ranks consume global batches in lockstep, so the position is the end of the global
        batch holding it, the same on every rank. Without `follow_steps` a batch a loader
        handed over already (so the position moved) may be reported again.
        """
        if not self._control.fresh:
            raise StateError(STALE.format(where=where))
        expected = self._cursor.position
        end = self._end_of(first)
        if self._control.restored_unreported:
            # The first step since workers restored from a loader state the main process never
            # loaded (a resumed StatefulDataLoader): their first batch sets the position.
            expected = end - self._global_batch
        next_batch = first // self._global_batch == expected // self._global_batch
        if not (end == expected or next_batch or (not self._steps_decide and end < expected)):
            raise self._order_error(first, expected)
        self._control.consumption_reported()
        self._stepped = True
        self._cursor = self._cursor.at(max(end, expected))
        self._control.publish(self._cursor)  # a plain loader's persistent workers start there next
        return self._cursor.position

    # -- checks -----------------------------------------------------------------------------
    def check_current(self, generation: int, where: str) -> None:
        """StateError unless `generation` is the current one (the batch follows today's stages)."""
        if generation != self._cursor.generation:
            raise StateError(STALE.format(where=where))

    def _end_of(self, first: int) -> int:
        return block_after(first + 1, self._global_batch)

    def _order_error(self, first: int, expected: int) -> StateError:
        b = self._global_batch
        return StateError(
            f"a batch of global batch {first // b} (position {first}) arrived, but global batch {expected // b} "
            f"is next: batches must reach the loop in order (a DataLoader with in_order=True, one iterator at a "
            f"time, and mark_consumed once per step)"
        )
