"""Who is iterating the stream: the DataLoader and the trainer wrappers around it.

The stream shards global batches by data-parallel rank itself, so a wrapper that shards
again, dispatches batches from rank 0, batches positions differently or fetches ahead of
the training step changes what the loop trains on without any error. Torch and the
trainers give an IterableDataset no handle on its consumer, so the stream looks at the
Python stack when an iterator starts: the DataLoader iterating it (its batch size and
workers) and known wrappers up the stack. In a forked DataLoader worker the stack still
holds the main process's frames of the moment the workers were started, so the same
look works there; spawned workers are checked in the main process when the dataset is
pickled for them.

Known wrappers (by class name, so none of these packages is imported):
- accelerate's IterableDatasetShard re-shards an IterableDataset by process
  (accelerate/data_loader.py, and transformers' trainer_pt_utils copy);
- accelerate's DataLoaderDispatcher reads on rank 0 only and sends slices to the others;
- fetchers that take the next batch before the step trains on the current one:
  accelerate's DataLoaderShard / DataLoaderDispatcher (one batch of look-ahead, to know
  the end of the data) and Lightning's _PrefetchDataFetcher (one batch).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from torch.utils.data import DataLoader

from climbstream.errors import ConfigError

_MAX_FRAMES = 120
_SHARDS = ("IterableDatasetShard",)
_DISPATCHERS = ("DataLoaderDispatcher",)
_LOOK_AHEAD = {
    "DataLoaderShard": "accelerate",
    "DataLoaderDispatcher": "accelerate",
    "_PrefetchDataFetcher": "Lightning",
}
_TRAINERS = {"ClimbTrainer": "climbstream", "Trainer": "transformers"}


@dataclass(frozen=True)
class ProcessShard:
    """An IterableDatasetShard around the stream: it keeps `process_batch` of every `real_batch`
    samples, starting at `offset`."""

    real_batch: int
    process_batch: int
    offset: int
    num_processes: int
    process_index: int


@dataclass(frozen=True)
class Consumer:
    """What iterates the stream, as far as the stack shows."""

    loader: DataLoader | None = None  # the nearest torch DataLoader (any subclass)
    shard: ProcessShard | None = None
    dispatched: bool = False
    look_ahead: str | None = None  # the framework of a fetcher that runs a batch ahead of the step
    trainer: str | None = None  # "transformers" (a plain HF Trainer) or "climbstream" (ClimbTrainer)


def find_consumer(skip: int = 1) -> Consumer:
    """Walk the stack from the caller's caller up: the DataLoader and wrappers found."""
    loader = shard = look_ahead = trainer = None
    dispatched = False
    frame = sys._getframe(skip + 1)
    for _ in range(_MAX_FRAMES):
        if frame is None:
            break
        for obj in _frame_objects(frame):
            name = type(obj).__name__  # DataLoaderAdapter fakes __class__; type() does not
            if loader is None and isinstance(obj, DataLoader):
                loader = obj
            if shard is None and name in _SHARDS and _module_of(obj) in ("accelerate", "transformers"):
                shard = _process_shard(obj)
            if name in _DISPATCHERS and _module_of(obj) == "accelerate":
                dispatched = True
            if look_ahead is None and name in _LOOK_AHEAD and _module_of(obj) in ("accelerate", "lightning",
                                                                                 "pytorch_lightning"):
                look_ahead = _LOOK_AHEAD[name]
            if trainer is None:
                trainer = _trainer_of(obj)
        frame = frame.f_back
    return Consumer(loader, shard, dispatched, look_ahead, trainer)


def _frame_objects(frame) -> list:
    local = frame.f_locals
    return [v for k in ("self", "loader", "dataloader") if (v := local.get(k)) is not None]


def _trainer_of(obj) -> str | None:
    """The framework of a trainer object (its class or the nearest base that names one), else None."""
    for cls in type(obj).__mro__:
        framework = _TRAINERS.get(cls.__name__)
        if framework is not None and cls.__module__.partition(".")[0] == framework:
            return framework
    return None


def _module_of(obj) -> str:
    return type(obj).__module__.partition(".")[0]


def _process_shard(obj) -> ProcessShard:
    split = bool(obj.split_batches)
    real = int(obj.batch_size) if split else int(obj.batch_size) * int(obj.num_processes)
    process_batch = int(obj.batch_size) // int(obj.num_processes) if split else int(obj.batch_size)
    return ProcessShard(real, process_batch, int(obj.process_index) * process_batch, int(obj.num_processes),
                        int(obj.process_index))


def check_consumer(consumer: Consumer, global_batch: int, rank: int, world_size: int, follows_steps: bool) -> None:
    """ConfigError, naming the fix, when the consumer would change what each step trains on.

    Under Lightning's prefetching fetcher without step reports the position a checkpoint
    saves would be one batch ahead (or, with a loader without state, never saved): refused.
    """
    local = global_batch // world_size
    if consumer.trainer == "transformers":
        raise ConfigError(
            "the HF Trainer passes its DataLoader through accelerate (which re-shards or dispatches this stream), "
            "drops the sample fields its model does not name, and resumes by replaying every batch: train with "
            "climbstream.integrations.hf.ClimbTrainer instead of Trainer")
    if consumer.look_ahead == "Lightning" and not follows_steps:
        raise ConfigError(
            "Lightning fetches each batch one step before it trains on it, so a checkpoint would save the stream one "
            "batch ahead: add climbstream.integrations.lightning.ClimbCallback(stream) to the Trainer's callbacks "
            "(or take batches in training_step(self, dataloader_iter))")
    if consumer.dispatched and world_size > 1:  # one process: the dispatcher hands over whole batches
        raise ConfigError(
            "accelerate dispatches this stream's batches from rank 0 (DataLoaderDispatcher, its default for an "
            "IterableDataset), but the stream already reads each rank's own slice: use "
            "climbstream.integrations.accelerate.prepare_loader(accelerator, stream), or create the Accelerator with "
            "dataloader_config=DataLoaderConfiguration(dispatch_batches=False)")
    shard = consumer.shard
    if shard is not None and (shard.process_batch, shard.num_processes, shard.process_index) != (local, world_size, rank):
        raise ConfigError(
            f"accelerate re-shards this stream as process {shard.process_index} of {shard.num_processes} with "
            f"{shard.process_batch} samples per step, but the stream reads rank {rank} of {world_size}'s slice of "
            f"{local} (global_batch {global_batch}): give the DataLoader batch_size {local} (or {global_batch} with "
            f"split_batches=True) and build the stream after the process group exists")
    loader = consumer.loader
    if loader is not None:  # under a shard wrapper too: it yields local batches
        check_loader(loader.batch_size, getattr(loader, "in_order", True), global_batch, world_size)


def check_loader(batch_size: int | None, in_order: bool, global_batch: int, world_size: int) -> None:
    """The DataLoader rule, for a loader found on the stack and for `stream.dataloader(**kwargs)`:
    each step trains on one global batch (batch_size B / R on each rank), in stream order."""
    local = global_batch // world_size
    if batch_size is not None and batch_size != local:
        raise ConfigError(
            f"DataLoader batch_size {batch_size}: each step must train on one global batch, so this rank's "
            f"batches hold global_batch / world size = {global_batch} / {world_size} = {local} samples; use "
            f"stream.dataloader() or batch_size={local}")
    if in_order is False:
        raise ConfigError("DataLoader in_order=False: batches must reach the loop in stream order for exact resume")
