"""ClimbStream: the torch IterableDataset that drops into an existing training loop.

It composes the parts and re-implements none of them: manifests (what exists), a
Schedule (which language and which occurrence of it at global position p), one
LanguageOrder per language (which sample that occurrence is), a SampleReader per process
(the bytes), a Layout (which positions this rank and worker read), a StreamIterator per
pass (which owns its position) and a SharedControl (what persistent workers must see).

Promises:
- The stream is a pure function of (seed, manifests, stages, position): every sample
  carries its global `position`, and together all ranks and workers produce each position
  exactly once, in global batches of `global_batch` positions.
- The position travels with the batches. `state_dict()` is the end of the last batch the
  loop received: from `stream.dataloader()` (which follows its batches), from an
  iterator in the main process (num_workers=0), or from `mark_consumed`. torchdata's
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

from climbstream.stream.checks import MAX_GLOBAL_BATCH, MAX_POSITION, MAX_SEED, check_int, is_number
from climbstream.stream.control import SharedControl
from climbstream.stream.corpus_view import CorpusView
from climbstream.stream.cursor import Cursor
from climbstream.errors import ConfigError, ScheduleError, StateError
from climbstream.stream.loader_state import stream_state_of
from climbstream.stream.layout import Layout, data_parallel_rank_and_size
from climbstream.stream.plan import Plan, plan_range
from climbstream.storage.process_local import PerProcess
from climbstream.stream.state import StreamState, stages_from_state
from climbstream.stream.iterator import StreamIterator
from climbstream.stream.weight_spec import resolve_ratios
from climbstream.schedule.weights import WEIGHT_TOTAL, integer_weights
from climbstream.stream.worker_exit import on_worker_exit
from climbstream.schedule.warm import warm_kernels

# Load the compiled schedule kernels here, once, so the DataLoader workers forked later
# inherit them instead of each paying ~0.6 s before its first batch (schedule/warm.py).
warm_kernels()

log = logging.getLogger(__name__)

_UNKNOWN_POSITION = (
    "the consumed position is unknown: this stream was read by DataLoader workers whose batches the main "
    "process does not see (a plain DataLoader, or a StatefulDataLoader), and the loop never called "
    "mark_consumed. Use stream.dataloader() (it follows its batches), save loader.state_dict() of a "
    "StatefulDataLoader (stream.load_state_dict accepts it), or call stream.mark_consumed(batch) after each step"
)


class ClimbStream(IterableDataset):
    """Multilingual shards mixed at exact ratios, as a resumable torch IterableDataset.

    Args:
        sources: prepared corpus folders or URLs (local, s3://, any fsspec URL); several
            are merged (their languages must not overlap).
        weights: `{NAME: ratio}`, `{NAME: int}` summing to 2**32, an allocation file
            (`climbstream solve --out`), or a method spec such as `{method: temperature}`.
        global_batch: B, positions per global batch (the exactness block).
        seed: the stream's seed (orders and in-block permutations).
        rank, world_size: data-parallel coordinates (default: torch.distributed's).
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
    ):
        if on_epoch_cap not in ("error", "stop"):
            raise ConfigError(f"on_epoch_cap: expected 'error' or 'stop', got {on_epoch_cap!r}")
        if epoch_cap is not None and not (is_number(epoch_cap) and epoch_cap > 0):
            raise ConfigError(f"epoch_cap: expected a positive number of epochs, got {epoch_cap!r}")
        check_int("seed", seed, 0, MAX_SEED)
        check_int("global_batch", global_batch, 1, MAX_GLOBAL_BATCH)
        if stop_position is not None:
            check_int("stop_position", stop_position, 0, MAX_POSITION)
        self.corpus = CorpusView.load([sources] if isinstance(sources, str) else list(sources), storage)
        self.languages: list[str] = self.corpus.languages
        self.columns = _check_columns(columns, self.corpus)
        self.ranks_per_node = _ranks_per_node(ranks_per_node)
        self.layout = Layout(int(global_batch), *data_parallel_rank_and_size(rank, world_size))
        if stop_position is not None and stop_position % self.layout.global_batch:
            raise ConfigError(f"stop_position {stop_position} is not a multiple of global_batch {global_batch}")
        self.epoch_cap = epoch_cap
        self.on_epoch_cap = on_epoch_cap
        self.window_shards = int(window_shards)
        self.stop_position = stop_position
        self._reader_options = dict(
            cache_dir=cache_dir,
            cache_limit_bytes=cache_limit_bytes,
            prefetch_depth=prefetch_depth,
            storage=storage,
            read_mode=read_mode,
            verify=verify,
        )
        self._control = SharedControl(len(self.languages))
        self._set_cursor(Cursor(int(seed), ((0, self._weights_array(weights, "weights")),), 0))
        self._followed = False  # set while ClimbDataLoader creates its workers
        self._orders_cache: tuple | None = None
        self._schedule_cache: tuple | None = None
        self._readers = PerProcess(self._open_readers)  # this process's readers, opened on first use
        self._readers_sharing = 1
        self._iterator_pid = None  # the process whose first iterator used the dataset's own cursor
        self._loaded_here = None  # a state loaded inside a worker, for its next iterator
        self._live: StreamIterator | None = None

    # -- public properties ----------------------------------------------------------------
    @property
    def global_batch(self) -> int:
        """B: positions per global batch (the schedule's block)."""
        return self.layout.global_batch

    @property
    def local_batch(self) -> int:
        """B / R: the DataLoader batch size on this rank."""
        return self.layout.local_batch

    @property
    def seed(self) -> int:
        """The stream's seed (a loaded state's seed replaces the constructor's)."""
        return self._cursor.seed

    @property
    def position(self) -> int:
        """First global position not yet consumed by the training loop (StateError if unknown)."""
        if self._control.position_unknown:
            raise StateError(_UNKNOWN_POSITION)
        return self._cursor.position

    @property
    def schedule(self):
        """The Schedule for the current stages (rebuilt when stages change)."""
        return self._schedule_of(self._cursor)

    def stages(self) -> list[dict]:
        """Stages as in the state: [{start, weights: {NAME: int}}]."""
        return _stage_dicts(self._cursor, self.languages)

    def metrics(self) -> dict[str, float]:
        """Loader counters for the loss log: wait_s, cache_hit_rate, bytes_downloaded, samples."""
        return self._control.metrics()

    def samples_per_epoch(self) -> dict[str, int]:
        """Training samples of each language (one epoch)."""
        return {n: o.samples_per_epoch for n, o in zip(self.languages, self._orders_of(self.seed))}

    # -- the training loop's side ---------------------------------------------------------
    def dataloader(self, **kwargs):
        """A DataLoader with the batch size this rank must use (B / R) that follows its batches.

        Its batches move the consumed position, so `stream.state_dict()` (or
        `loader.state_dict()`) after a step is exact with no further call.
        """
        from climbstream.stream.loader import ClimbDataLoader

        if kwargs.setdefault("batch_size", self.local_batch) != self.local_batch:
            raise ConfigError(
                f"DataLoader batch_size {kwargs['batch_size']} != global_batch {self.global_batch} / "
                f"world size {self.layout.world_size} = {self.local_batch}"
            )
        if kwargs.get("in_order") is False:
            raise ConfigError("in_order=False: batches must reach the loop in stream order for exact resume")
        return ClimbDataLoader(self, **kwargs)

    def mark_consumed(self, batch: Mapping) -> int:
        """Record that the loop trained on `batch`; returns the new consumed position.

        Needed only with a plain DataLoader with workers (whose batches the stream cannot
        see), or to record a batch the loop skipped. Ranks consume global batches in
        lockstep, so the position is the end of the global batch holding the batch,
        identical on every rank. Checks the batch size and that batches come in order.
        """
        first, end = self._batch_span(batch, "mark_consumed", behind_ok=True)
        if not self._control.fresh:
            raise StateError(
                "this batch comes from an iterator created before add_stage or load_state_dict; recreate the "
                "DataLoader iterator (iter(loader)) and train on its batches"
            )
        self._control.consumption_reported()
        self._set_cursor(self._cursor.at(end))  # published: a plain loader's persistent workers start there
        return end

    def _batch_span(self, batch: Mapping, where: str, *, behind_ok: bool = False) -> tuple[int, int]:
        """(first position, end of its global batch), checked to be the next global batch.

        The batch may also end exactly at the consumed position (a main-process iterator
        moved it already), or, with `behind_ok`, anywhere before it (a loop that marks a
        batch its loader already followed).
        """
        try:
            positions = batch["position"]
        except (KeyError, TypeError, IndexError):
            raise ConfigError(f"{where}: the batch has no 'position' field; a collate_fn must keep it") from None
        n = int(positions.numel()) if isinstance(positions, torch.Tensor) else len(positions)
        if n != self.local_batch:
            raise ConfigError(
                f"a batch of {n} samples: the DataLoader batch_size must be global_batch / world size = "
                f"{self.global_batch} / {self.layout.world_size} = {self.local_batch}"
            )
        first = int(positions.min()) if isinstance(positions, torch.Tensor) else min(positions)
        end = self.layout.block_after(first + 1)
        expected = self._cursor.position
        if not (end == expected or first // self.global_batch == expected // self.global_batch
                or (behind_ok and end < expected)):
            raise StateError(
                f"a batch of global batch {first // self.global_batch} (position {first}) arrived, but global "
                f"batch {expected // self.global_batch} is next: batches must reach the loop in order "
                f"(a DataLoader with in_order=True, one iterator at a time)"
            )
        return first, max(end, expected)

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
        stages = list(self._cursor.stages)
        last_start = stages[-1][0]
        consumed = self.position
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
        self._set_cursor(self._cursor.with_stages(stages))
        log.info("stage at position %d: %s", position, self.stages()[-1]["weights"])
        return position

    def state_dict(self) -> dict:
        """The resumable state (format in docs/interfaces.md).

        In the main process: the consumed position (StateError where it is unknown). In a
        DataLoader worker (where StatefulDataLoader asks): this worker's iterator's state.
        """
        if get_worker_info() is not None and self._live is not None:
            return self._live.state_dict()
        return self._state_of(self._cursor.at(self.position))

    def load_state_dict(self, state: Mapping, *, allow_manifest_change: bool = False, where: str = "state") -> None:
        """Continue from a saved state (any num_workers, any world size).

        Takes `state_dict()`'s output or a StatefulDataLoader's `state_dict()` (whose
        consumed position it reads out). A different manifest is refused unless
        `allow_manifest_change`, in which case the configured weights start a new stage
        at the saved position.
        """
        if get_worker_info() is not None:  # StatefulDataLoader restoring this worker
            self._loaded_here = (self._cursor_from(state, where, generation=self._control.generation), state)
            return
        cursor = self._cursor_from(stream_state_of(state, where), where, allow_manifest_change=allow_manifest_change)
        self._set_cursor(cursor)
        self._control.position_known()

    def _cursor_from(self, state: Mapping, where: str, *, generation: int | None = None,
                     allow_manifest_change: bool = False) -> Cursor:
        """A validated Cursor for `state` (a new generation unless `generation` is given)."""
        loaded = StreamState.from_dict(state, where)
        if loaded.global_batch != self.global_batch:
            raise ConfigError(
                f"{where}: saved global_batch {loaded.global_batch} != this dataset's {self.global_batch}; "
                f"resume with global_batch={loaded.global_batch}"
            )
        stages = stages_from_state(loaded, self.languages, where)
        changed = loaded.manifest_fingerprint != self.corpus.fingerprint()
        if changed and not allow_manifest_change:
            raise StateError(
                f"{where}: the corpus changed since the state was saved (manifest fingerprint "
                f"{loaded.manifest_fingerprint[:12]}... != {self.corpus.fingerprint()[:12]}...); pass "
                f"allow_manifest_change=True to continue with a new stage from position {loaded.position}"
            )
        position = self.layout.block_after(loaded.position)
        if position != loaded.position:  # a rank's "largest position + 1" (interfaces); say so, never silently
            log.warning("%s: position %d is inside global batch %d; resuming at its end, %d (ranks consume whole "
                        "global batches in lockstep)", where, loaded.position, loaded.position // self.global_batch,
                        position)
        if changed and position > stages[-1][0]:
            stages.append((position, self._cursor.stages[-1][1]))
        cursor = self._cursor.with_stages(stages, seed=loaded.seed, position=position)
        self._schedule_of(cursor, where)  # a bad saved stage fails here, naming the state
        return cursor if generation is None else Cursor(cursor.seed, cursor.stages, cursor.position, generation)

    def _state_of(self, cursor: Cursor) -> dict:
        return StreamState(
            seed=cursor.seed,
            manifest_fingerprint=self.corpus.fingerprint(),
            global_batch=self.global_batch,
            position=cursor.position,
            stages=_stage_dicts(cursor, self.languages),
        ).to_dict()

    def _set_cursor(self, cursor: Cursor) -> None:
        """The main process's cursor, published for persistent workers."""
        self._cursor = cursor
        self._control.publish(cursor)

    def _consumed_to(self, position: int) -> None:
        """The loop received everything before `position` (a global batch boundary).

        Not published: a followed iterator is running, and its workers already started;
        ClimbDataLoader publishes at the next `iter(loader)`.
        """
        self._cursor = self._cursor.at(position)

    # -- plans (no I/O) -------------------------------------------------------------------
    def plan(self, start: int, stop: int) -> Plan:
        """Which language, occurrence, shard and sample index each position in [start, stop) holds."""
        return plan_range(self.schedule, self._orders_of(self.seed), start, stop)

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
    def __iter__(self) -> StreamIterator:
        """A new pass from the consumed position (read eagerly, so it is the one at iter())."""
        info = get_worker_info()
        if info is None:
            iterator = StreamIterator(self, self._cursor, 0, 1, in_main=True)
        else:
            iterator = self._worker_iterator(info)
            if not self._followed:
                self._control.iterator_unfollowed()
        self._control.iterator_started(iterator._cursor.generation)
        return iterator

    def _worker_iterator(self, info) -> StreamIterator:
        """A worker's iterator: from a state loaded into it, from the copy of the dataset it was
        created with (its first iterator), or from what the main process published last
        (a persistent worker's later iterators)."""
        first = self._iterator_pid != os.getpid()
        if first:
            self._iterator_pid = os.getpid()
            on_worker_exit(self._close_readers)
        if self._loaded_here is not None:
            (cursor, state), self._loaded_here = self._loaded_here, None
        else:
            cursor, state = (self._cursor if first else self._control.published()), None
        iterator = StreamIterator(self, cursor, info.id, info.num_workers, in_main=False)
        if state is not None:
            iterator.load_state_dict(state)
        self._live = iterator
        return iterator

    def _schedule_of(self, cursor: Cursor, where: str | None = None):
        from climbstream.schedule.schedule import Schedule, Stage

        key = cursor.stage_key()
        if self._schedule_cache is None or self._schedule_cache[0] != key:
            try:
                schedule = Schedule(len(self.languages), self.global_batch, cursor.seed,
                                    [Stage(s, w) for s, w in cursor.stages])
            except ScheduleError as err:
                if where is None:
                    raise
                raise StateError(f"{where}.stages: {err}") from None
            self._schedule_cache = (key, schedule)
        return self._schedule_cache[1]

    def _orders_of(self, seed: int) -> list:
        """One LanguageOrder per language for `seed`."""
        if self._orders_cache is None or self._orders_cache[0] != seed:
            self._orders_cache = (seed, self.corpus.orders(seed, self.window_shards))
        return self._orders_cache[1]

    def _readers_for(self, num_workers: int):
        """This process's readers (opened after fork, kept across iterators)."""
        if self._readers.peek() is None:
            self._readers_sharing = max(1, num_workers) * self.ranks_per_node  # readers of this machine's cache
        return self._readers.get()

    def _open_readers(self):
        return self.corpus.open_readers(**self._reader_options, readers_sharing_cache=self._readers_sharing)

    def _close_readers(self) -> None:
        readers = self._readers.clear()  # None when they are a parent's, seen after a fork
        if readers is not None:
            readers.close()

    def _cap_samples(self) -> np.ndarray | None:
        if self.epoch_cap is None:
            return None
        per_epoch = np.array([o.samples_per_epoch for o in self._orders_of(self.seed)], dtype=np.float64)
        return np.floor(per_epoch * self.epoch_cap).astype(np.int64)

    # -- helpers --------------------------------------------------------------------------
    def _weights_array(self, weights, where: str) -> np.ndarray:
        if isinstance(weights, Mapping) and weights and all(isinstance(v, int) for v in weights.values()) \
                and sum(weights.values()) == WEIGHT_TOTAL and all(v >= 0 for v in weights.values()):
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
        state = self.__dict__.copy()
        state["_readers"] = PerProcess(self._open_readers)
        state["_schedule_cache"] = None
        state["_orders_cache"] = None
        state["_live"] = None
        return state

    def heldout(self, lang: str):
        """The held-out split of `lang` in a fixed order, no mixing (an IterableDataset)."""
        from climbstream.stream.heldout import HeldoutStream

        return HeldoutStream(self.corpus, lang, self.languages.index(lang) if lang in self.languages else -1,
                             self._reader_options)

    @classmethod
    def from_config(cls, path_or_config, **overrides) -> "ClimbStream":
        """Build from a YAML file or a StreamConfig (see climbstream/stream/config.py)."""
        from climbstream.stream.config import StreamConfig

        config = path_or_config if isinstance(path_or_config, StreamConfig) else StreamConfig.from_yaml(path_or_config)
        return cls(**{**config.dataset_kwargs(), **overrides})


def _max_over_ranks(value: int) -> int:
    """Max of `value` over torch.distributed ranks (itself when not distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return value
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def _stage_dicts(cursor: Cursor, languages: Sequence[str]) -> list[dict]:
    return [{"start": start, "weights": {n: int(v) for n, v in zip(languages, w.tolist())}}
            for start, w in cursor.stages]


SAMPLE_FIELDS = ("tokens", "lang", "position", "shard", "index")


def _check_columns(columns, corpus: CorpusView) -> tuple[str, ...]:
    """The extra columns as a tuple, after checking they can be added to every sample."""
    if columns is None:
        return ()
    if isinstance(columns, str) or not all(isinstance(c, str) and c for c in columns):
        raise ConfigError(f"columns: expected a list of column names, got {columns!r}")
    taken = [c for c in columns if c in SAMPLE_FIELDS]
    if taken:
        raise ConfigError(f"columns: {taken} are fields every sample has already ({', '.join(SAMPLE_FIELDS)})")
    tar = [m.where for m in corpus.manifests if m.format != "mds"]
    if columns and tar:
        raise ConfigError(f"columns: {tar[0]} is a tar corpus, whose manifest indexes only the token member; "
                          f"extra columns need MDS shards")
    return tuple(dict.fromkeys(columns))


def _ranks_per_node(value: int | None) -> int:
    """The explicit setting, else torchrun's LOCAL_WORLD_SIZE, else 1."""
    if value is None:
        env = os.environ.get("LOCAL_WORLD_SIZE")
        if env is None:
            return 1
        if not env.isdigit() or int(env) < 1:
            raise ConfigError(f"LOCAL_WORLD_SIZE={env!r} in the environment is not a positive integer; "
                              f"fix it or pass ranks_per_node")
        return int(env)
    return check_int("ranks_per_node", value, 1, 1 << 16)
