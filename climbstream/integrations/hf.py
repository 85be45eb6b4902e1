"""ClimbTrainer: the HF Trainer over a ClimbStream, exact on N processes and resumable in O(1).

A plain `Trainer(train_dataset=stream)` cannot be exact: it always passes its DataLoader
through `accelerator.prepare`, which dispatches an IterableDataset from rank 0 or shards
it again (the stream refuses both, naming this class); its column filter drops every
field the model's forward does not name; and it resumes by replaying every batch since
step 0. ClimbTrainer instead
- trains on the stream's own loader (`stream.dataloader()`, batch size B / R, no
  re-sharding) with batches of `input_ids`, `labels` (the tokens; causal LMs shift them)
  and the stream's `position` and `lang`, which it takes out before the model sees them;
- marks each micro-batch as the step trains on it (the Trainer fetches the micro-batches
  of a step, and accelerate one more, ahead of training), so with gradient accumulation
  G an optimizer step consumes G global batches;
- keeps the stream's state in every checkpoint (trainer_state.json, as a stateful
  callback) and restores it before the first batch on resume, with `ignore_data_skip`
  so nothing is replayed: resuming at step 2,000 reads no batch before it.
"""

from __future__ import annotations

import os

import torch

from climbstream.errors import ConfigError, StateError
from climbstream.extras import require
from climbstream.integrations.collate import causal_lm_collate, split_bookkeeping

transformers = require("transformers", "hf")
from transformers import Trainer, TrainerCallback  # noqa: E402
from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME  # noqa: E402
from transformers.trainer_callback import ExportableState  # noqa: E402

STATE_KEY = "stream_state"


class StreamStateCallback(TrainerCallback, ExportableState):
    """Saves the stream's state with each checkpoint and restores it when training resumes."""

    def __init__(self, stream):
        self.stream = stream

    def state(self) -> dict:
        return {"args": {}, "attributes": {STATE_KEY: self.stream.state_dict()}}

    def on_train_begin(self, args, state, control, **kwargs):
        saved = state.stateful_callbacks.get(type(self).__name__) if state.stateful_callbacks else None
        if isinstance(saved, list):
            saved = saved[0]
        if saved:
            self.stream.load_state_dict(saved["attributes"][STATE_KEY], where="trainer_state.json stream_state")
        elif state.global_step > 0:
            raise StateError(
                f"resuming at step {state.global_step} from a checkpoint without the stream's state (saved by "
                f"another Trainer class?): resume from a checkpoint ClimbTrainer wrote, or start the run afresh"
            )


class ClimbTrainer(Trainer):
    """`ClimbTrainer(model=..., args=..., train_dataset=stream)`: the Trainer, exact over a ClimbStream."""

    def __init__(self, *args, train_dataset=None, **kwargs):
        from climbstream.stream.dataset import ClimbStream

        if not isinstance(train_dataset, ClimbStream):
            raise ConfigError(f"ClimbTrainer: train_dataset must be a ClimbStream, got {type(train_dataset).__name__}")
        super().__init__(*args, train_dataset=train_dataset, **kwargs)
        self.stream = train_dataset
        self.add_callback(StreamStateCallback(train_dataset))
        self.args.ignore_data_skip = True  # the stream resumes from its own state: never replay
        self._stream_loader = None

    def get_train_dataloader(self):
        if self._stream_loader is None:
            stream, args = self.stream, self.args
            if args.per_device_train_batch_size * max(1, args.n_gpu) != stream.local_batch:
                raise ConfigError(
                    f"per_device_train_batch_size {args.per_device_train_batch_size}: each step trains on this "
                    f"rank's slice of a global batch, global_batch / world size = {stream.global_batch} / "
                    f"{stream.layout.world_size} = {stream.local_batch}; set per_device_train_batch_size="
                    f"{stream.local_batch}"
                )
            stream.follow_steps()
            workers = args.dataloader_num_workers
            self._stream_loader = stream.dataloader(
                num_workers=workers, collate_fn=causal_lm_collate, pin_memory=args.dataloader_pin_memory,
                persistent_workers=args.dataloader_persistent_workers and workers > 0)
        return self._stream_loader

    def _load_optimizer_and_scheduler(self, checkpoint):
        """As the Trainer's, but on CPU with several processes the optimizer state is mapped to "cpu".

        transformers maps it to `args.device` whenever world_size > 1, and on CPU that device is
        `cpu:0`, which torch.load cannot restore ("don't know how to restore data location of
        torch.storage.UntypedStorage (tagged with cpu:0)"): `.train(resume_from_checkpoint=True)`
        under torchrun on CPU crashed.
        """
        args = self.args
        if checkpoint is None or args.device.type != "cpu" or args.world_size <= 1 or self.is_deepspeed_enabled \
                or self.is_fsdp_enabled:
            return super()._load_optimizer_and_scheduler(checkpoint)
        optimizer_file = os.path.join(checkpoint, OPTIMIZER_NAME)
        scheduler_file = os.path.join(checkpoint, SCHEDULER_NAME)
        if not (os.path.isfile(optimizer_file) and os.path.isfile(scheduler_file)):
            return super()._load_optimizer_and_scheduler(checkpoint)
        self.optimizer.load_state_dict(torch.load(optimizer_file, map_location="cpu", weights_only=True))
        self.lr_scheduler.load_state_dict(torch.load(scheduler_file, map_location="cpu", weights_only=True))

    def training_step(self, model, inputs, num_items_in_batch=None):
        inputs, bookkeeping = split_bookkeeping(inputs)
        if "position" in bookkeeping:
            self.stream.mark_consumed(bookkeeping)
        return super().training_step(model, inputs, num_items_in_batch)
