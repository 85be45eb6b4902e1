"""ClimbCallback: the stream under Lightning, exact on 1 device or DDP and resumable in O(1).

Lightning's fit loop fetches each batch one step before the step that trains on it, and
saves the loader's state in checkpoints when the loader has one, so a plain loader's
state is one batch ahead (a resume skips a global batch), and a loader without state
restarts at position 0. With the callback:
- the stream counts only the steps Lightning trains on (`follow_steps`, a mark in
  `on_train_batch_end`, which runs before ModelCheckpoint's save);
- the stream's state goes into the checkpoint (the callback's state, restored before
  Lightning builds the train loader), so `trainer.fit(model, ckpt_path=...)` continues
  at the next position with a DataLoader of any kind;
- the stream may be built in `LightningModule.__init__`: its rank and world size are
  resolved when `train_dataloader()` first uses it, after the process group exists.
Without the callback the stream refuses to run under Lightning's prefetching fetcher
(one line naming this class) rather than save a wrong position.
"""

from __future__ import annotations

from climbstream.extras import require

pl = require("pytorch_lightning", "climbstream.integrations.lightning")


class ClimbCallback(pl.Callback):
    """`Trainer(callbacks=[ClimbCallback(stream)])`: each trained batch marked, the stream's state checkpointed."""

    def __init__(self, stream):
        self.stream = stream
        stream.follow_steps()  # before Lightning's fetcher takes the first batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.stream.mark_consumed(batch)

    def state_dict(self) -> dict:
        return {"stream": self.stream.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.stream.load_state_dict(state_dict["stream"], where="Lightning checkpoint: callbacks.ClimbCallback")
