"""Who is iterating the stream: the DataLoader and the trainer wrappers around it.

The stream shards global batches by data-parallel rank itself, so a wrapper that shards
again, dispatches batches from rank 0, batches positions differently or fetches ahead of
the training step changes what the loop trains on without any error. Torch and the
trainers give an IterableDataset no handle on its consumer, so the stream looks at the
Python stack when an iterator starts, for objects that iterate *this* stream: a
DataLoader whose dataset is the stream or wraps it (through `.dataset`), and known
wrappers around such a loader. Names play no part: another stream's loader held in a
local called `loader` is not this stream's consumer. In a forked DataLoader worker the
stack still holds the main process's frames of the moment the workers were started (the
same objects, at the same addresses), so the same look works there; spawned workers are
checked in the main process when the dataset is pickled for them.

Known wrappers (by class name, so none of these packages is imported):
- accelerate's IterableDatasetShard re-shards an IterableDataset by process
  (accelerate/data_loader.py, and transformers' trainer_pt_utils copy);
- accelerate's DataLoaderDispatcher reads on rank 0 only and sends slices to the others;
- fetchers that take the next batch before the step trains on the current one:
  accelerate's DataLoaderShard / DataLoaderDispatcher (one batch of look-ahead, to know
  the end of the data) and Lightning's _PrefetchDataFetcher (one batch).
- accelerate's `save_state` saves a prepared loader's position only with
  `use_stateful_dataloader=True`, and then every process writes its loader's state to
  the same `dl_state_dict.bin` (accelerate/checkpointing.py, save_accelerator_state): under
  the dispatcher only process 0 reads the stream, so the file holds, by whichever process
  wrote last, either the position or process 1's never-read one (position 0).
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
PREPARE_LOADER = ("use climbstream.integrations.accelerate.prepare_loader(accelerator, stream) for this loader instead "
                  "of accelerator.prepare (it registers the stream for save_state and load_state)")
_KNOWN = frozenset((*_SHARDS, *_DISPATCHERS, *_LOOK_AHEAD))


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

    loader: DataLoader | None = None  # the nearest torch DataLoader (any subclass) over this stream
    shard: ProcessShard | None = None
    dispatched: bool = False
    look_ahead: str | None = None  # the framework of a fetcher that runs a batch ahead of the step
    trainer: str | None = None  # "transformers" (a plain HF Trainer) or "climbstream" (ClimbTrainer)
    accelerate_saves_state: bool = False  # accelerate's prepared loader is a StatefulDataLoader
    accelerate_processes: int = 1


def find_consumer(stream, skip: int = 1) -> Consumer:
    """Walk the stack from the caller's caller up: the DataLoader and wrappers that iterate `stream`."""
    loader = shard = look_ahead = trainer = None
    dispatched = saves_state = False
    frame = sys._getframe(skip + 1)
    for _ in range(_MAX_FRAMES):
        if frame is None:
            break
        for obj in _frame_objects(frame):
            name = type(obj).__name__  # DataLoaderAdapter fakes __class__; type() does not
            module = _module_of(obj)
            if loader is None and isinstance(obj, DataLoader) and _reaches(obj, stream):
                loader = obj
            if shard is None and name in _SHARDS and module in ("accelerate", "transformers") \
                    and _reaches(obj, stream):
                shard = _process_shard(obj)
            if module == "accelerate" and name in _LOOK_AHEAD and _reaches(obj, stream):
                dispatched = dispatched or name in _DISPATCHERS
                saves_state = saves_state or bool(getattr(obj, "use_stateful_dataloader", False))
                look_ahead = look_ahead or _LOOK_AHEAD[name]
            if look_ahead is None and name in _LOOK_AHEAD and module in ("lightning", "pytorch_lightning") \
                    and any(_reaches(x, stream) for x in _fetched_loaders(obj)):
                look_ahead = _LOOK_AHEAD[name]
            if trainer is None and _reaches(getattr(obj, "train_dataset", None), stream):
                trainer = _trainer_of(obj)
        frame = frame.f_back
    processes = _accelerate_processes() if dispatched else 1
    return Consumer(loader, shard, dispatched, look_ahead, trainer, saves_state, processes)


def refused(error: Exception):
    """An iterator that raises `error` at its first batch.

    Trainers clean up after a failed `iter()` with calls that assume it succeeded (Lightning's
    teardown asks the CombinedLoader for its length, and its RuntimeError replaces ours); an
    iterator that fails at its first batch leaves their state whole, so the error the user
    sees is the one naming the fix.
    """
    raise error
    yield  # noqa: unreachable - makes this a generator: the raise happens at the first next()


def _frame_objects(frame) -> list:
    """The frame's locals that may iterate a stream: DataLoaders, known wrappers and trainers."""
    out = []
    for value in frame.f_locals.values():
        if value is None or isinstance(value, (int, float, str, bytes, tuple, list, dict)):
            continue
        cls = type(value)
        if isinstance(value, DataLoader) or cls.__name__ in _KNOWN or _trainer_of(value) is not None:
            out.append(value)
    return out


def _reaches(obj, stream, depth: int = 6) -> bool:
    """True when `obj` is `stream` or wraps it through `.dataset` (DataLoader, IterableDatasetShard,
    accelerate's adapters, which pass `.dataset` on to the loader they wrap)."""
    for _ in range(depth):
        if obj is None:
            return False
        if obj is stream:
            return True
        try:
            obj = getattr(obj, "dataset", None)
        except Exception:  # noqa: BLE001 - a wrapper's property may fail; then it does not reach the stream
            return False
    return False


def _fetched_loaders(fetcher) -> list:
    """The loaders a Lightning data fetcher iterates (its CombinedLoader's flattened iterables)."""
    combined = getattr(fetcher, "_combined_loader", None)
    return list(getattr(combined, "flattened", None) or [])


def _accelerate_processes() -> int:
    """accelerate's process count (its PartialState is a shared singleton, copied into forked workers)."""
    state = sys.modules.get("accelerate.state")
    if state is None:
        return 1
    try:
        return int(state.PartialState().num_processes)
    except Exception:  # noqa: BLE001 - an uninitialised state: one process
        return 1


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
            f"IterableDataset), but the stream already reads each rank's own slice: {PREPARE_LOADER}")
    if consumer.look_ahead == "accelerate" and not follows_steps:
        if not consumer.accelerate_saves_state:
            raise ConfigError(
                "accelerator.prepare of this stream's loader: accelerate's loader fetches each batch one step ahead "
                "and its save_state saves no position of this stream (load_state would restart it at position 0, "
                f"registered or not): {PREPARE_LOADER}")
        if consumer.dispatched and consumer.accelerate_processes > 1:
            raise ConfigError(
                f"accelerate's DataLoaderDispatcher reads this stream on process 0 of {consumer.accelerate_processes} "
                "only, and save_state writes every process's loader state to one dl_state_dict.bin, so a checkpoint "
                f"may hold process 1's unread state (position 0): {PREPARE_LOADER}")
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
