"""ClimbStream: the torch IterableDataset that drops into an existing training loop.

It composes the parts and re-implements none of them: a CorpusView (what exists), a
Planner (schedule and orders: which sample sits at global position p), ProcessReaders
(the bytes, per process), a Layout (which positions this rank and worker read, resolved
when first needed), a Consumption (the one owner of the consumed position), a
StreamIterator per pass (given a StreamContext, never the dataset) and a SharedControl
(what persistent workers must see).

Promises:
- The stream is a pure function of (seed, manifests, stages, position): every sample
  carries its global `position`, and together all ranks and workers produce each position
  exactly once, in global batches of `global_batch` positions.
- The position travels with the batches. `state_dict()` is the end of the last batch the
  loop trained on: from `stream.dataloader()` (which follows its batches), from an
  iterator in the main process (num_workers=0), or from `mark_consumed` (after
  `follow_steps()`, only from it: trainers that fetch ahead of the step). torchdata's
  StatefulDataLoader snapshots each worker's iterator with every batch it delivers, so
  its `loader.state_dict()` is exact too. Where none of these applies (a plain DataLoader
  with workers and no `mark_consumed`) the position is unknown, and asking for it is a
  StateError, never a silent 0.
- Resume with another num_workers or world size continues the same global stream.
- `add_stage(weights)` changes the mixture from the consumed position on; nothing before
  it changes, nothing after it repeats or is skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from climbstream.errors import ConfigError, ScheduleError, StateError
from climbstream.ranks import data_parallel_rank_and_size, distributed_rank_and_size
from climbstream.ranks import ranks_per_node as resolve_ranks_per_node
from climbstream.schedule.warm import warm_kernels
from climbstream.schedule.weights import are_integer_weights, integer_weights
from climbstream.read.node_reads import DEFAULT_READ_WHOLE_WITHIN, check_nodes
from climbstream.stream.config.arguments import (check_coordinates, check_reader_arguments, stream_sources,
                                                  stream_storage)
from climbstream.stream.config.checks import MAX_GLOBAL_BATCH, MAX_POSITION, MAX_SEED, check_int, is_number
from climbstream.stream.consumers.consumer import check_consumer, check_loader, find_consumer, refused
from climbstream.stream.state.consumption import Consumption
from climbstream.stream.iteration.context import StreamContext
from climbstream.stream.state.control import SharedControl
from climbstream.stream.corpus_view import CorpusView
from climbstream.stream.plan.cursor import Cursor
from climbstream.stream.iteration.iterator import StreamIterator
from climbstream.stream.plan.layout import Layout
from climbstream.stream.iteration.loader import first_position
from climbstream.stream.state.loader_state import stream_state_of
from climbstream.stream.plan.plan import Plan
from climbstream.stream.plan.partitioning import resolve_partitions
from climbstream.stream.plan.planner import Planner
from climbstream.stream.iteration.process_readers import ProcessReaders
from climbstream.stream.iteration.sample import SAMPLE_FIELDS
from climbstream.stream.consumers.shard_padding import pad_for_shard
from climbstream.stream.state.saved_state import StateCodec, stage_dicts
from climbstream.stream.config.weight_spec import resolve_ratios
from climbstream.stream.iteration.worker_exit import on_worker_exit

# Load the compiled schedule kernels here, once, so the DataLoader workers forked later
# inherit them instead of each paying ~0.6 s before its first batch (schedule/warm.py).
warm_kernels()

MAX_PLAN_POSITIONS = 1 << 24  # a plan holds ~40 bytes per position: 16M positions are ~670 MB

log = logging.getLogger(__name__)


class ClimbStream(IterableDataset):
    """Multilingual shards mixed at exact ratios, as a resumable torch IterableDataset.

    Args:
        sources: prepared corpus folders or URLs (local, s3://, any fsspec URL); several
            are merged (their languages must not overlap).
        weights: `{NAME: ratio}`, `{NAME: int}` summing to 2**32, an allocation file
            (`climbstream solve --out`), or a method spec such as `{method: temperature}`.
        global_batch: B, positions per global batch (the exactness block).
        seed: the stream's seed (orders and in-block permutations).
        rank, world_size: data-parallel coordinates. Default: torch.distributed's (else
            RANK / WORLD_SIZE), resolved when first needed (`local_batch`, `dataloader()`,
            the first iteration), so a stream built before the process group exists
            still reads its rank's slice; a process group that disagrees later is an error.
        cache_dir, cache_limit_bytes: node-local shard cache shared by workers and ranks.
        prefetch_depth: shards fetched ahead per language window.
        read_mode: "auto", "shard" (whole shards via the cache) or "range" (byte ranges).
        storage: StorageOptions (or a dict) for remote sources.
        epoch_cap, on_epoch_cap: cap epochs per language; "error" raises, "stop" ends the
            stream at a global batch boundary.
        window_shards: shards per language interleaved by the order (shuffle window).
        stop_position: end the stream here (a multiple of global_batch).
        verify: "auto" (default): sha256 of every local shard once per process before its
            first read and of every download; range reads are not verifiable and log a
            warning when chosen. "sha256": the same, and range reads refused. "size": sizes
            and headers only (downloads are still hashed by the cache).
        columns: names of other MDS columns to add to each sample (e.g. `["id"]`; off by
            default): scalars and strings as Python values, arrays as numpy arrays, so
            torch's default collate batches them. Tar shards carry only their tokens.
        ranks_per_node: ranks of this machine sharing `cache_dir` (with the DataLoader
            workers, how many readers hold shards at once: the cache limit must hold
            theirs). Default: torchrun's LOCAL_WORLD_SIZE where it is set, else 1.
        read_whole_within: under partitions, a node downloads a shard whole only where it
            owns at least half of it and trains through its window of that language within
            this many global batches (at the current stage's weights); the rest by verified
            range (docs/schedule.md, "What a node downloads"). Lower: fewer wasted bytes on
            short runs; higher: fewer requests. Default 400.
        partitions: P of the partitioned order, so that each node downloads only its
            share of the shards (docs/schedule.md); fixed for the run and saved in the
            state (a loaded state's P replaces this). Default: the node count where it is
            known (world_size and ranks_per_node, or torchrun's environment), else 1.
        allow_manifest_change: the default of `load_state_dict`'s argument of that name, for
            the loads a trainer integration makes on resume: True continues a state saved on an
            earlier version of a grown corpus (README, "Growing the corpus").
    """

    def __init__(
        self,
        sources: str | Sequence[str],
        weights,
        *,
        global_batch: int,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        cache_dir: str | None = None,
        cache_limit_bytes: int | None = None,
        prefetch_depth: int = 2,
        read_mode: str = "auto",
        storage=None,
        epoch_cap: float | None = None,
        on_epoch_cap: str = "error",
        window_shards: int = 4,
        stop_position: int | None = None,
        verify: str = "auto",
        columns: Sequence[str] | None = None,
        ranks_per_node: int | None = None,
        partitions: int | None = None,
        read_whole_within: float = DEFAULT_READ_WHOLE_WITHIN,
        allow_manifest_change: bool = False,
    ):
        sources, storage = stream_sources(sources), stream_storage(storage)
        check_reader_arguments(cache_dir=cache_dir, cache_limit_bytes=cache_limit_bytes, prefetch_depth=prefetch_depth,
                               read_mode=read_mode, verify=verify, window_shards=window_shards,
                               on_epoch_cap=on_epoch_cap)
        check_coordinates(rank, world_size)
        if epoch_cap is not None and not (is_number(epoch_cap) and epoch_cap > 0):
            raise ConfigError(f"epoch_cap: expected a positive number of epochs, got {epoch_cap!r}")
        check_int("seed", seed, 0, MAX_SEED)
        check_int("global_batch", global_batch, 1, MAX_GLOBAL_BATCH)
        if stop_position is not None:
            check_int("stop_position", stop_position, 0, MAX_POSITION)
            if stop_position % global_batch:
                raise ConfigError(f"stop_position {stop_position} is not a multiple of global_batch {global_batch}")
        self._global_batch = int(global_batch)
        self._coordinates = (rank, world_size)
        self._layout: Layout | None = None
        if rank is not None and world_size is not None:
            self._layout = Layout(self._global_batch, int(rank), int(world_size))  # checked now
        self.corpus = CorpusView.load(sources, storage)
        self.languages: list[str] = self.corpus.languages
        self.columns = _check_columns(columns, self.corpus)
        self.ranks_per_node = resolve_ranks_per_node(
            None if ranks_per_node is None else check_int("ranks_per_node", ranks_per_node, 1, 1 << 16))
        self.epoch_cap = epoch_cap
        self.on_epoch_cap = on_epoch_cap
        self.window_shards = int(window_shards)
        if not ((is_number(read_whole_within) or read_whole_within == float("inf")) and read_whole_within >= 0):
            raise ConfigError(f"read_whole_within: expected a number of global batches >= 0 (0: every sample by "
                              f"range; inf: every shard the node owns half of whole), got {read_whole_within!r}")
        self.read_whole_within = float(read_whole_within)
        self.stop_position = stop_position
        self.allow_manifest_change = bool(allow_manifest_change)
        self._reader_options = dict(cache_dir=cache_dir, cache_limit_bytes=cache_limit_bytes,
                                    prefetch_depth=prefetch_depth, storage=storage, read_mode=read_mode, verify=verify,
                                    window_shards=self.window_shards)
        self.planner = Planner(self.corpus, self._global_batch, self.window_shards, epoch_cap)
        partitions = resolve_partitions(partitions, self._global_batch, world_size, ranks_per_node)
        if self._layout is not None:
            check_nodes(partitions, self._layout.world_size, self.ranks_per_node)
        self.codec = StateCodec(self.corpus, self.languages, self._global_batch, self.planner)
        self.readers = ProcessReaders(self.corpus, self._reader_options, self.ranks_per_node)
        self.control = SharedControl(len(self.languages))
        cursor = Cursor(int(seed), ((0, self._weights_array(weights, "weights")),), 0, partitions=partitions)
        self.consumption = Consumption(cursor, self.control, self._global_batch)
        self._iterating_pid = None  # the process whose first iterator used the copy it was created with
        self._loaded_here = None  # a state loaded inside a worker, for its next iterator
        self._live: StreamIterator | None = None

    # -- public properties ----------------------------------------------------------------
    @property
    def global_batch(self) -> int:
        """B: positions per global batch (the schedule's block)."""
        return self._global_batch

    @property
    def partitions(self) -> int:
        """P of the partitioned order (1: unpartitioned); a loaded state's replaces the constructor's."""
        return self.consumption.cursor.partitions

    @property
    def layout(self) -> Layout:
        """This rank's batch layout; the data-parallel coordinates are resolved on first use."""
        if self._layout is None:
            self._layout = Layout(self._global_batch, *data_parallel_rank_and_size(*self._coordinates))
            check_nodes(self.partitions, self._layout.world_size, self.ranks_per_node)
        return self._layout

    @property
    def local_batch(self) -> int:
        """B / R: the DataLoader batch size on this rank."""
        return self.layout.local_batch

    @property
    def seed(self) -> int:
        """The stream's seed (a loaded state's seed replaces the constructor's)."""
        return self.consumption.cursor.seed

    @property
    def position(self) -> int:
        """First global position not yet consumed by the training loop (StateError if unknown)."""
        return self.consumption.position

    @property
    def schedule(self):
        """The Schedule for the current stages (rebuilt when stages change)."""
        return self.planner.schedule(self.consumption.cursor)

    def stages(self) -> list[dict]:
        """Stages as in the state: [{start, weights: {NAME: int}}]."""
        return stage_dicts(self.consumption.cursor, self.languages)

    def corpus_versions(self) -> list[dict]:
        """The corpus each stretch of positions read: `[{start, languages: {NAME: {shards, samples,
        digest}}}]`, one entry until the corpus changes during the run (README, "Growing the corpus")."""
        return [v.to_dict() for v in self.codec.corpus_versions(self.consumption.cursor)]

    def metrics(self) -> dict[str, float]:
        """Loader counters for the loss log: wait_s, cache_hit_rate, bytes_downloaded, samples."""
        return self.control.metrics()

    def samples_per_epoch(self) -> dict[str, int]:
        """Training samples of each language (one epoch)."""
        return dict(zip(self.languages, self.planner.samples_per_epoch(self.seed).tolist()))

    def shard_path(self, lang: str | int, shard: int) -> str:
        """The manifest-relative path of a sample's `shard` (lang by name or by its `lang` index)."""
        if isinstance(lang, (int, np.integer)) and not isinstance(lang, bool):
            if not 0 <= lang < len(self.languages):
                raise ConfigError(f"shard_path: language index {lang} is not in [0, {len(self.languages)})")
            lang = self.languages[int(lang)]
        return self.corpus.shard_path(lang, shard)

    # -- the training loop's side ---------------------------------------------------------
    def dataloader(self, **kwargs):
        """A DataLoader with the batch size this rank must use (B / R) that follows its batches.

        Its batches move the consumed position, so `stream.state_dict()` (or
        `loader.state_dict()`) after a step is exact with no further call.
        """
        from climbstream.stream.iteration.loader import ClimbDataLoader

        check_loader(kwargs.setdefault("batch_size", self.local_batch), kwargs.get("in_order", True),
                     self.global_batch, self.layout.world_size)
        return ClimbDataLoader(self, **kwargs)

    def follow_steps(self) -> None:
        """Let only `mark_consumed` move the consumed position from now on.

        For trainers that fetch a batch before the step that trains on it (Lightning,
        accelerate, the HF Trainer): the integrations call it and mark every step.
        """
        self.consumption.follow_steps()

    def mark_consumed(self, batch: Mapping) -> int:
        """Record that the loop trained on `batch`; returns the new consumed position.

        Needed with a plain DataLoader with workers (whose batches the stream cannot see),
        under `follow_steps()`, or to record a batch the loop skipped. Ranks consume
        global batches in lockstep, so the position is the end of the global batch
        holding the batch, identical on every rank. Checks the batch size and the order.
        """
        return self.consumption.trained(first_position(batch, self.local_batch, "mark_consumed"), "mark_consumed")

    def add_stage(self, weights, position: int | None = None) -> int:
        """Use `weights` from `position` on (default: the consumed position); returns the start.

        Nothing before the start changes; each language's cursor carries on, so nothing
        after it repeats or is skipped. Batches that running iterators prefetched past
        the start were made under the old stages: recreate the DataLoader iterator
        (`iter(loader)`, cheap) so the new stage takes effect; a stale iterator raises
        StateError rather than yield them. Under torch.distributed ranks agree on the
        start (the max over ranks).
        """
        array = self._weights_array(weights, "add_stage.weights")
        cursor = self.consumption.cursor
        stages = list(cursor.stages)
        last_start = stages[-1][0]
        consumed = self.position
        if position is not None:
            check_int("add_stage.position", position, 0, MAX_POSITION)
        position = _max_over_ranks(consumed if position is None else int(position))
        if position % self.global_batch:
            raise ScheduleError(f"stage start {position} is not a multiple of global_batch {self.global_batch}")
        if position < consumed:
            raise ScheduleError(
                f"stage start {position} is before the consumed position {consumed}: the loop already "
                f"trained on those batches; start the stage at {consumed} or later"
            )
        if position == last_start:
            stages[-1] = (position, array)
        elif position > last_start:
            stages.append((position, array))
        else:
            raise ScheduleError(f"stage start {position} is before the last stage's start {last_start}")
        self.consumption.replace(cursor.at(consumed).with_stages(stages))
        log.info("stage at position %d: %s", position, self.stages()[-1]["weights"])
        return position

    def state_dict(self) -> dict:
        """The resumable state (format in docs/interfaces.md).

        In the main process: the consumed position (StateError where it is unknown). In a
        DataLoader worker (where StatefulDataLoader asks): this worker's iterator's state.
        """
        if get_worker_info() is not None and self._live is not None:
            return self._live.state_dict()
        return self.codec.state_of(self.consumption.cursor.at(self.position))

    def load_state_dict(self, state: Mapping, *, allow_manifest_change: bool | None = None,
                        where: str = "state") -> None:
        """Continue from a saved state (any num_workers, any world size).

        Takes `state_dict()`'s output, a StatefulDataLoader's `state_dict()` or a
        torchtitan dataloader's (whose consumed position it reads out). A different
        manifest is refused unless `allow_manifest_change` (default: the constructor's),
        in which case the configured weights start a new stage at the saved position: a
        grown corpus continues exactly-once, a rewritten one is refused by name
        (CorpusRewriteError).
        """
        allow = self.allow_manifest_change if allow_manifest_change is None else bool(allow_manifest_change)
        current = self.consumption.cursor
        if get_worker_info() is not None:  # StatefulDataLoader restoring this worker
            saved_on = state.get("manifest_fingerprint") if isinstance(state, Mapping) else None
            if saved_on not in (None, self.corpus.fingerprint()):
                raise StateError(
                    f"{where}: this StatefulDataLoader state was saved on another version of the corpus; its workers "
                    f"saved positions of their own, so the change would start at different positions in each. Resume "
                    f"the stream instead: stream.load_state_dict(loader_state, allow_manifest_change=True), then "
                    f"iterate a new loader without load_state_dict")
            self._loaded_here = (self.codec.cursor_from(state, where, current, keep_generation=True), state)
            return
        self.consumption.replace(self.codec.cursor_from(stream_state_of(state, where), where, current,
                                                        allow_manifest_change=allow))
        if self._layout is not None:  # the saved P against this run's node count
            check_nodes(self.partitions, self._layout.world_size, self.ranks_per_node, f"{where}.partitions")

    # -- plans (no I/O) -------------------------------------------------------------------
    def plan(self, start: int, stop: int) -> Plan:
        """Which language, occurrence, shard and sample index each position in [start, stop) holds."""
        if is_number(start) and is_number(stop) and stop - start > MAX_PLAN_POSITIONS:
            raise ConfigError(f"plan({start}, {stop}): {stop - start} positions at once (about {(stop - start) * 40:.2g} "
                              f"bytes); plan at most {MAX_PLAN_POSITIONS} positions per call, in chunks")
        return self.planner.plan(self.consumption.cursor, start, stop)

    def describe(self, start: int, stop: int) -> list[dict]:
        """`plan` as one dict per position (for `climbstream inspect` and humans)."""
        plan = self.plan(start, stop)
        rows = []
        for j in range(len(plan)):
            name = self.languages[int(plan.lang[j])]
            rows.append({
                "position": start + j,
                "lang": name,
                "k": int(plan.k[j]),
                "epoch": int(plan.epoch[j]),
                "shard": self.corpus.shard_path(name, int(plan.shard[j])),
                "index": int(plan.index[j]),
            })
        return rows

    # -- iteration ------------------------------------------------------------------------
    def __iter__(self):
        """A new pass from the consumed position (read eagerly, so it is the one at iter())."""
        info = get_worker_info()
        try:
            consumer = self.check_consumer(in_main=info is None)
        except ConfigError as err:
            if info is not None:
                raise
            return refused(err)  # raised at the first batch, so a trainer's cleanup cannot hide it
        context = self._context()
        consumption = self.consumption
        if info is None:
            followed = consumer.loader is not None and _is_followed(consumer.loader)
            cursor = consumption.start_iterator(followed=False)
            iterator = StreamIterator(context, cursor, 0, 1, None if followed else consumption.handed_over)
        else:
            restored = self._loaded_here is not None
            iterator = self._worker_iterator(context, info)
            if not consumption.following_now:
                self.control.iterator_unfollowed(restored)
        self.control.iterator_started(iterator.generation)
        return pad_for_shard(iterator, consumer.shard) if consumer.shard is not None else iterator

    def _worker_iterator(self, context: StreamContext, info) -> StreamIterator:
        """A worker's iterator: from a state loaded into it, from the copy of the dataset it was
        created with (its first iterator), or from what the main process published last
        (a persistent worker's later iterators)."""
        first = self._iterating_pid != os.getpid()
        if first:
            self._iterating_pid = os.getpid()
            on_worker_exit(self.readers.close)
        if self._loaded_here is not None:
            (cursor, state), self._loaded_here = self._loaded_here, None
        else:
            cursor, state = (self.consumption.cursor if first else self.control.published()), None
        iterator = StreamIterator(context, cursor, info.id, info.num_workers)
        if state is not None:
            iterator.load_state_dict(state)
        self._live = iterator
        return iterator

    def _context(self) -> StreamContext:
        return StreamContext(self.layout, tuple(self.languages), self.columns, self.planner, self.codec,
                             self.control, self.readers, self.stop_position, self.epoch_cap, self.on_epoch_cap,
                             self.read_whole_within)

    def check_consumer(self, in_main: bool, skip: int = 2):
        """Find who iterates the stream (from the caller up), refuse what would train on wrong data,
        and in the main process note a fetcher that runs ahead of the step; returns the Consumer."""
        consumer = find_consumer(self, skip)
        layout = self._checked_layout(in_main)
        check_consumer(consumer, self.global_batch, layout.rank, layout.world_size, self.consumption.follows_steps)
        if consumer.look_ahead is not None:
            if in_main:
                self.consumption.fetched_ahead_by(consumer.look_ahead)
            else:
                self.control.worker_fetched_ahead_by(consumer.look_ahead)
        return consumer

    def _checked_layout(self, in_main: bool) -> Layout:
        """The layout, checked in the main process against torch.distributed where it was not given."""
        layout = self.layout
        if in_main and None in self._coordinates:
            found = distributed_rank_and_size()
            if found is not None and found != (layout.rank, layout.world_size):
                raise ConfigError(
                    f"this stream took its data-parallel rank and size as {layout.rank} of {layout.world_size} when "
                    f"first used, but torch.distributed now says {found[0]} of {found[1]}: first use the stream "
                    f"(local_batch, dataloader(), iteration) after init_process_group, or pass rank= and world_size="
                )
        return layout

    # -- helpers --------------------------------------------------------------------------
    def _weights_array(self, weights, where: str) -> np.ndarray:
        if isinstance(weights, Mapping) and are_integer_weights(weights.values()):
            resolve_ratios(weights, self.corpus.token_counts(), where)
            ints = {str(k): int(v) for k, v in weights.items()}
        else:
            ratios = resolve_ratios(weights, self.corpus.token_counts(), where)
            ints = integer_weights(ratios, where)
        for name in self.languages:
            if ints[name] and not self.corpus.samples(name):
                raise ConfigError(f"{where}.{name}: positive weight but the corpus has no training samples of {name}")
        return np.array([ints[n] for n in self.languages], dtype=np.uint64)

    def __getstate__(self):
        if get_worker_info() is None:  # pickled for spawned workers: the main process checks for them
            self.check_consumer(in_main=True)
        state = self.__dict__.copy()
        state["_live"] = None
        return state

    def heldout(self, lang: str):
        """The held-out split of `lang` in a fixed order, no mixing (an IterableDataset)."""
        from climbstream.stream.heldout import HeldoutStream

        return HeldoutStream(self.corpus, lang, self.languages.index(lang) if lang in self.languages else -1,
                             self._reader_options)

    @classmethod
    def from_config(cls, path_or_config, **overrides) -> "ClimbStream":
        """Build from a YAML file or a StreamConfig (see climbstream/stream/config/stream_config.py)."""
        from climbstream.stream.config.stream_config import StreamConfig

        config = path_or_config if isinstance(path_or_config, StreamConfig) else StreamConfig.from_yaml(path_or_config)
        return cls(**{**config.dataset_kwargs(), **overrides})


def _is_followed(loader) -> bool:
    from climbstream.stream.iteration.loader import ClimbDataLoader

    return isinstance(loader, ClimbDataLoader)


def _max_over_ranks(value: int) -> int:
    """Max of `value` over torch.distributed ranks (itself when not distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def _check_columns(columns, corpus: CorpusView) -> tuple[str, ...]:
    """The extra columns as a tuple, after checking they can be added to every sample."""
    if columns is None:
        return ()
    if isinstance(columns, str) or not isinstance(columns, Sequence) \
            or not all(isinstance(c, str) and c for c in columns):
        raise ConfigError(f"columns: expected a list of column names, got {columns!r}")
    taken = [c for c in columns if c in SAMPLE_FIELDS]
    if taken:
        raise ConfigError(f"columns: {taken} are fields every sample has already ({', '.join(SAMPLE_FIELDS)})")
    tar = [m.where for m in corpus.manifests if m.format != "mds"]
    if columns and tar:
        raise ConfigError(f"columns: {tar[0]} is a tar corpus, whose manifest indexes only the token member; "
                          f"extra columns need MDS shards")
    return tuple(dict.fromkeys(columns))
