"""ClimbCallback: the stream under Lightning, exact on 1 device or DDP and resumable in O(1).

Lightning's fit loop fetches each batch one step before the step that trains on it, and
saves the loader's state in checkpoints when the loader has one, so a plain loader's
state is one batch ahead (a resume skips a global batch), and a loader without state
restarts at position 0. With the callback:
- the stream counts only the batches Lightning trains on (`follow_steps`, a mark in
  `on_train_batch_start`: the step has the batch from then on). ModelCheckpoint saves in
  `on_train_batch_end`, so the mark is in every checkpoint of that step whatever the
  callbacks' order (a callback appended to `trainer.callbacks` after the Trainer sorted
  them runs after ModelCheckpoint: a mark at the batch's end missed that step's save);
- the stream's state goes into the checkpoint (the callback's state, restored before
  Lightning builds the train loader), so `trainer.fit(model, ckpt_path=...)` continues
  at the next position with a DataLoader of any kind;
- the stream may be built in `LightningModule.__init__` (its rank and world size are
  resolved when `train_dataloader()` first uses it, after the process group exists) or in
  `train_dataloader()` itself, with the callback added to `trainer.callbacks` there. Lightning
  restores callbacks before it calls `train_dataloader()`, so such a late callback is never
  restored: return `stream.dataloader()`, whose state Lightning saves and restores with its
  loops. A resume that restored the stream from neither is refused at `on_train_start`.
Without the callback the stream refuses to run under Lightning's prefetching fetcher
(one line naming this class) rather than save a wrong position.
"""

from __future__ import annotations

from climbstream.errors import StateError
from climbstream.extras import require
from climbstream.integrations.arguments import check_stream

pl = require("pytorch_lightning", "climbstream.integrations.lightning")


class ClimbCallback(pl.Callback):
    """`Trainer(callbacks=[ClimbCallback(stream)])`: each trained batch marked, the stream's state checkpointed."""

    def __init__(self, stream):
        self.stream = check_stream(stream, "ClimbCallback")
        stream.follow_steps()  # before Lightning's fetcher takes the first batch
        self._built_generation = stream.consumption.cursor.generation  # a loaded state makes a new one

    def on_train_start(self, trainer, pl_module) -> None:
        resumed_from = getattr(trainer, "ckpt_path", None)
        if resumed_from and self.stream.consumption.cursor.generation == self._built_generation:
            raise StateError(
                f"fit(ckpt_path={resumed_from!r}) restored neither this stream's state nor its loader's: Lightning "
                f"restores callbacks before it calls train_dataloader(), so a ClimbCallback added there is not "
                f"restored, and a plain DataLoader has no state. Return stream.dataloader() from train_dataloader() "
                f"(Lightning saves and restores its state with the fit loop), or build the stream in __init__ and pass "
                f"ClimbCallback(stream) to Trainer(callbacks=...)")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.stream.mark_consumed(batch)

    def state_dict(self) -> dict:
        return {"stream": self.stream.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.stream.load_state_dict(state_dict["stream"], where="Lightning checkpoint: callbacks.ClimbCallback")
