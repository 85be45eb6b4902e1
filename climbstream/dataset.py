"""ClimbStream: the torch IterableDataset that drops into an existing training loop.

It composes the parts and re-implements none of them: manifests (what exists), a
Schedule (which language and which occurrence of it at global position p), one
LanguageOrder per language (which sample that occurrence is), a SampleReader per process
(the bytes), a Layout (which positions this rank and worker read) and a SharedControl
(what the loop and the workers must tell each other).

Promises:
- The stream is a pure function of (seed, manifests, stages, position): every sample
  carries its global `position`, and together all ranks and workers produce each position
  exactly once, in global batches of `global_batch` positions.
- Resume: `state_dict()` / `load_state_dict()`; a different num_workers or world size
  continues the same global stream.
- `add_stage(weights)` changes the mixture from the
  consumed position on; nothing before it changes, nothing after it repeats or is skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from climbstream.control import SharedControl
from climbstream.corpus_view import CorpusView
from climbstream.errors import ConfigError, EpochCapError, ScheduleError, StateError
from climbstream.partition import Layout, data_parallel_rank_and_size
from climbstream.plan import Plan, plan_range
from climbstream.state import StreamState, stages_from_state
from climbstream.weight_spec import resolve_ratios
from climbstream.weights import WEIGHT_TOTAL, integer_weights
from climbstream.schedule.warm import warm_kernels

# Load the compiled schedule kernels here, once, so the DataLoader workers forked later
# inherit them instead of each paying ~0.6 s before its first batch (schedule/warm.py).
warm_kernels()

log = logging.getLogger(__name__)


class ClimbStream(IterableDataset):
    """Multilingual shards mixed at exact ratios, as a resumable torch IterableDataset.

    Use it with `torch.utils.data.DataLoader(stream, batch_size=stream.local_batch)` (or
    `stream.dataloader(...)`), and call `stream.mark_consumed(batch)` after each training
    step so that `state_dict()` records the exact position.
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
        verify: str = "size",
    ):
        if on_epoch_cap not in ("error", "stop"):
            raise ConfigError(f"on_epoch_cap: expected 'error' or 'stop', got {on_epoch_cap!r}")
        if epoch_cap is not None and not epoch_cap > 0:
            raise ConfigError(f"epoch_cap: must be positive, got {epoch_cap}")
        self.corpus = CorpusView.load([sources] if isinstance(sources, str) else list(sources), storage)
        self.languages: list[str] = self.corpus.languages
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
        self._control = SharedControl(len(self.languages), int(seed))
        self._control.set_stages([(0, self._weights_array(weights, "weights"))])
        self._orders_cache: tuple | None = None
        self._schedule_cache: tuple | None = None
        self._published = False  # set while ClimbDataLoader creates its workers
        self._readers = None
        self._reader_pid = None
        self._reported: dict = {}

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
        return self._control.seed

    @property
    def _orders(self) -> list:
        """One LanguageOrder per language for the current seed."""
        seed = self.seed
        if self._orders_cache is None or self._orders_cache[0] != seed:
            self._orders_cache = (seed, self.corpus.orders(seed, self.window_shards))
        return self._orders_cache[1]

    @property
    def position(self) -> int:
        """First global position not yet consumed by the training loop."""
        return self._control.position

    @property
    def schedule(self):
        """The Schedule for the current stages (rebuilt when stages change)."""
        from climbstream.schedule.schedule import Schedule, Stage

        stages = self._control.stages()
        key = (self.seed, tuple((s, w.tobytes()) for s, w in stages))
        if self._schedule_cache is None or self._schedule_cache[0] != key:
            schedule = Schedule(len(self.languages), self.global_batch, self.seed, [Stage(s, w) for s, w in stages])
            self._schedule_cache = (key, schedule)
        return self._schedule_cache[1]

    def stages(self) -> list[dict]:
        """Stages as in the state: [{start, weights: {NAME: int}}]."""
        return [
            {"start": start, "weights": {n: int(v) for n, v in zip(self.languages, w.tolist())}}
            for start, w in self._control.stages()
        ]

    def metrics(self) -> dict[str, float]:
        """Loader counters for the loss log: wait_s, cache_hit_rate, bytes_downloaded, samples."""
        return self._control.metrics()

    def samples_per_epoch(self) -> dict[str, int]:
        """Training samples of each language (one epoch)."""
        return {n: o.samples_per_epoch for n, o in zip(self.languages, self._orders)}

    # -- the training loop's side ---------------------------------------------------------
    def dataloader(self, **kwargs) -> DataLoader:
        """A DataLoader with the batch size this rank must use (B / R), batches in order.

        Prefer it to a plain DataLoader: it tells the workers where each new iterator
        starts from the main process, which is exact however the loader is seeded.
        """
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

        Ranks consume global batches in lockstep, so the consumed position is the end of
        the global batch holding the batch's largest position, identical on every rank.
        Also checks that the DataLoader batch size is B / R.
        """
        positions = batch["position"]
        n = int(positions.numel()) if isinstance(positions, torch.Tensor) else len(positions)
        if n != self.local_batch:
            raise ConfigError(
                f"a batch of {n} samples: the DataLoader batch_size must be global_batch / world size = "
                f"{self.global_batch} / {self.layout.world_size} = {self.local_batch}"
            )
        first = int(positions.min()) if isinstance(positions, torch.Tensor) else min(positions)
        if not self._control.fresh:
            raise StateError(
                "this batch comes from an iterator created before add_stage or load_state_dict; recreate the "
                "DataLoader iterator (iter(loader)) and train on its batches"
            )
        expected = self._control.position
        if first // self.global_batch != expected // self.global_batch:
            raise StateError(
                f"a batch of global batch {first // self.global_batch} (position {first}) arrived, but global "
                f"batch {expected // self.global_batch} is next: call mark_consumed for every batch, in order "
                f"(a DataLoader with in_order=True, one iterator at a time)"
            )
        self._control.position = self.layout.block_after(first + 1)
        return self._control.position

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
        stages = self._control.stages()
        last_start = stages[-1][0]
        consumed = self._control.position
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
        self._control.set_stages(stages)
        log.info("stage at position %d: %s", position, self.stages()[-1]["weights"])
        return position

    def state_dict(self) -> dict:
        """The resumable state (format in docs/interfaces.md)."""
        return StreamState(
            seed=self.seed,
            manifest_fingerprint=self.corpus.fingerprint(),
            global_batch=self.global_batch,
            position=self.position,
            stages=self.stages(),
        ).to_dict()

    def load_state_dict(self, state: Mapping, *, allow_manifest_change: bool = False, where: str = "state") -> None:
        """Continue from a saved state (any num_workers, any world size).

        A different manifest is refused unless `allow_manifest_change`, in which case the
        configured weights start a new stage at the saved position.
        """
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
        current = self._control.stages()[-1][1]
        position = self.layout.block_after(loaded.position)
        if changed and position > stages[-1][0]:
            stages.append((position, current))
        self._check_stages(stages, loaded.seed, where)
        self._control.set_stages(stages)
        self._control.restart_at(position, loaded.seed)

    def _check_stages(self, stages, seed: int, where: str) -> None:
        """Build the schedule once, so a bad saved stage fails here, naming the state."""
        from climbstream.schedule.schedule import Schedule, Stage

        try:
            Schedule(len(self.languages), self.global_batch, seed, [Stage(s, w) for s, w in stages])
        except ScheduleError as err:
            raise StateError(f"{where}.stages: {err}") from None

    # -- plans (no I/O) -------------------------------------------------------------------
    def plan(self, start: int, stop: int) -> Plan:
        """Which language, occurrence, shard and sample index each position in [start, stop) holds."""
        return plan_range(self.schedule, self._orders, start, stop)

    def describe(self, start: int, stop: int) -> list[dict]:
        """`plan` as one dict per position (for `climbstream inspect` and humans)."""
        plan = self.plan(start, stop)
        rows = []
        for j in range(len(plan)):
            lang = int(plan.lang[j])
            name = self.languages[lang]
            shard = int(plan.shard[j])
            rows.append(
                {
                    "position": start + j,
                    "lang": name,
                    "k": int(plan.k[j]),
                    "epoch": int(plan.epoch[j]),
                    "shard": self.corpus.shard_path(name, shard),
                    "index": int(plan.index[j]),
                }
            )
        return rows

    # -- iteration (runs in each DataLoader worker) ---------------------------------------
    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        slot = self._control.check_slot(worker)
        generation = self._control.generation
        first = self._start_position(info) // self.global_batch
        schedule = self.schedule
        stop = None if self.stop_position is None else self.stop_position // self.global_batch
        caps = self._cap_samples()
        readers = self._open_readers(num_workers)
        batches = self.layout.batches_for_worker(first, worker, num_workers, stop)
        upcoming = self._planned(schedule, batches)
        current = next(upcoming, None)
        while current is not None:
            block, plan = current
            if self._control.generation != generation:
                raise StateError(
                    f"stages or position changed (add_stage or load_state_dict) after this iterator started; "
                    f"it stopped before global batch {block}; recreate the DataLoader iterator"
                )
            if caps is not None and self._over_cap(schedule, block, caps):
                return
            current = next(upcoming, None)
            self._hint(readers, plan, current[1] if current is not None else None)
            samples = self._read_samples(readers, plan)
            self._report_metrics(slot, readers, len(plan))
            yield from samples

    def _start_position(self, info) -> int:
        """Where this iterator starts: the consumed position when it was created."""
        if info is None:
            self._control.iterator_started()
            return self._control.position
        if self._published:
            return self._control.published_start
        loader_seed = int(info.seed) - int(info.id)  # the same for all workers of one iterator
        self._iterations = getattr(self, "_iterations", -1) + 1  # persistent workers: one per reset
        if info.id == 0:
            return self._control.claim_start(loader_seed, self._iterations)
        return self._control.wait_for_start(loader_seed, self._iterations)

    def _planned(self, schedule, batches) -> Iterator[tuple[int, Plan]]:
        for block in batches:
            a, z = self.layout.slice_of(block)
            yield block, plan_range(schedule, self._orders, a, z)

    def _read_samples(self, readers, plan: Plan) -> list[dict]:
        """The samples of one local batch, read before any is yielded (so counters are exact)."""
        names = self.languages
        out = []
        with readers.holding():  # each cached shard acquired once per batch, not per sample
            for j in range(len(plan)):
                lang = int(plan.lang[j])
                name = names[lang]
                shard = int(plan.shard[j])
                index = int(plan.index[j])
                tokens = readers.read(name, shard, index)
                out.append({
                    "tokens": torch.from_numpy(np.asarray(tokens, dtype=np.int64)),
                    "lang": lang,
                    "position": plan.start + j,
                    "shard": self.corpus.shard_path(name, shard),
                    "index": index,
                })
        return out

    def _hint(self, readers, plan: Plan, following: Plan | None) -> None:
        """Prefetch this batch's shards, then the next one's (the plan replaces the last)."""
        names = self.languages
        pairs = plan.shards_in_need_order() + (following.shards_in_need_order() if following is not None else [])
        readers.hint([(names[lang], shard) for lang, shard in dict.fromkeys(pairs)])

    def _report_metrics(self, slot: int, readers, samples: int) -> None:
        m = readers.metrics()
        last = self._reported
        self._control.add_metrics(
            slot,
            wait_s=m["wait_s"] - last.get("wait_s", 0.0),
            bytes_downloaded=m["bytes_downloaded"] - last.get("bytes_downloaded", 0.0),
            hit_weighted=m["cache_hit_rate"] * samples,
            samples=samples,
        )
        self._reported = m

    def _open_readers(self, num_workers: int = 1):
        if self._readers is None or self._reader_pid != os.getpid():
            sharing = num_workers * int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
            self._readers = self.corpus.open_readers(**self._reader_options, readers_sharing_cache=sharing)
            self._reader_pid = os.getpid()
            self._reported = {}
        return self._readers

    # -- epoch caps -----------------------------------------------------------------------
    def _cap_samples(self) -> np.ndarray | None:
        if self.epoch_cap is None:
            return None
        per_epoch = np.array([o.samples_per_epoch for o in self._orders], dtype=np.float64)
        return np.floor(per_epoch * self.epoch_cap).astype(np.int64)

    def _over_cap(self, schedule, block: int, caps: np.ndarray) -> bool:
        """True when global batch `block` would pass a language's epoch cap (same on every rank)."""
        counts = schedule.counts_at((block + 1) * self.global_batch)
        over = np.nonzero(counts > caps)[0]
        if not len(over):
            return False
        name = self.languages[int(over[0])]
        if self.on_epoch_cap == "stop":
            log.info("stream ends at position %d: %s reached its epoch cap", block * self.global_batch, name)
            return True
        raise EpochCapError(
            f"language {name} would pass its epoch cap of {self.epoch_cap} epochs "
            f"({int(caps[over[0]])} samples) in global batch {block} (position {block * self.global_batch}); "
            f"lower its weight with add_stage, raise epoch_cap, or set on_epoch_cap='stop'"
        )

    # -- helpers --------------------------------------------------------------------------
    def _weights_array(self, weights, where: str) -> np.ndarray:
        if isinstance(weights, Mapping) and weights and all(isinstance(v, int) for v in weights.values()) \
                and sum(weights.values()) == WEIGHT_TOTAL:
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
        state["_readers"] = None
        state["_reader_pid"] = None
        state["_schedule_cache"] = None
        state["_orders_cache"] = None
        return state

    def heldout(self, lang: str):
        """The held-out split of `lang` in a fixed order, no mixing (an IterableDataset)."""
        from climbstream.heldout import HeldoutStream

        return HeldoutStream(self.corpus, lang, self.languages.index(lang) if lang in self.languages else -1,
                             self._reader_options)

    @classmethod
    def from_config(cls, path_or_config, **overrides) -> "ClimbStream":
        """Build from a YAML file or a StreamConfig (see climbstream/config.py)."""
        from climbstream.config import StreamConfig

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


class ClimbDataLoader(DataLoader):
    """A DataLoader that publishes each new iterator's start before its workers begin.

    Workers created while `dataset._published` is set read the start the main process
    published; persistent workers keep reading it at every new iterator.
    """

    def __iter__(self):
        dataset = self.dataset
        dataset._control.publish_start()
        dataset._published = True
        try:
            return super().__iter__()
        finally:
            dataset._published = False
