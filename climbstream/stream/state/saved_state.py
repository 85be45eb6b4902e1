"""The saved state, in one module: its format and checks, the keys an iterator adds, and the codec.

Change how the resume state is encoded here. `StreamState` is the format; `StateCodec`
turns a Cursor into it and back, checked against this corpus and global batch (the one
place that converts, for the dataset and for a worker restoring its iterator); an
iterator's state adds its place under ITERATOR (`with_iterator_place`,
`saved_next_batch`), which `without_iterator_place` strips when a loader's state is read
as the dataset's (loader_state.py).

The dataset state that goes into a checkpoint (format in docs/interfaces.md):

`{version, algorithm_version, seed, manifest_fingerprint, global_batch, position, stages}`
where stages are `[{start, weights: {NAME: int}}]` with integer weights summing to 2**32,
plus `partitions` (P of the partitioned order, fixed for the run like the seed) when it is
not 1: a state without it is P = 1, so states saved before it existed replay unchanged.
`algorithm_version` names the schedule and order algorithms: a state written by another
algorithm would give another stream, so loading it is refused rather than silently
producing different samples.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from climbstream.stream.config.checks import MAX_GLOBAL_BATCH, MAX_POSITION, MAX_SEED, check_int
from climbstream.errors import ConfigError, StateError
from climbstream.stream.plan.cursor import Cursor
from climbstream.stream.plan.layout import block_after
from climbstream.schedule.schedule import ALGORITHM_VERSION
from climbstream.schedule.weights import check_integer_weights

STATE_VERSION = 1
MAX_PARTITIONS = 2**20
_FIELDS = ("version", "algorithm_version", "seed", "manifest_fingerprint", "global_batch", "position", "stages")

# An iterator's state is the dataset state plus its place: {ITERATOR: {WORKER, NUM_WORKERS, NEXT_BATCH}}
ITERATOR = "iterator"
WORKER = "worker"
NUM_WORKERS = "num_workers"
NEXT_BATCH = "next_batch"

log = logging.getLogger(__name__)


@dataclass
class StreamState:
    """A validated dataset state."""

    seed: int
    manifest_fingerprint: str
    global_batch: int
    position: int
    stages: list[dict]
    version: int = STATE_VERSION
    algorithm_version: int = ALGORITHM_VERSION
    partitions: int = 1

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        out = {name: getattr(self, name) for name in _FIELDS}
        if self.partitions != 1:
            out["partitions"] = self.partitions
        return out

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "state") -> "StreamState":
        """Validate and parse; errors name `where` and the field."""
        if not isinstance(data, Mapping):
            raise StateError(f"{where}: expected a mapping, got {type(data).__name__}")
        missing = [f for f in _FIELDS if f not in data]
        if missing:
            raise StateError(f"{where}: missing field(s) {', '.join(missing)}; is this a climbstream dataset state?")
        if data["version"] != STATE_VERSION:
            raise StateError(
                f"{where}: state version {data['version']!r} is not supported (this climbstream reads "
                f"version {STATE_VERSION})"
            )
        if data["algorithm_version"] != ALGORITHM_VERSION:
            raise StateError(
                f"{where}: written by schedule algorithm version {data['algorithm_version']!r}, this climbstream "
                f"implements version {ALGORITHM_VERSION}; the stream would differ, so resume with the version that wrote it"
            )
        seed = check_int(f"{where}.seed", data["seed"], 0, MAX_SEED, StateError)
        global_batch = check_int(f"{where}.global_batch", data["global_batch"], 1, MAX_GLOBAL_BATCH, StateError)
        position = check_int(f"{where}.position", data["position"], 0, MAX_POSITION, StateError)
        stages = data["stages"]
        if not isinstance(stages, (list, tuple)) or not all(isinstance(s, Mapping) for s in stages):
            raise StateError(f"{where}.stages: expected a list of {{start, weights}} mappings, got {stages!r}")
        partitions = check_int(f"{where}.partitions", data["partitions"], 1, MAX_PARTITIONS, StateError) \
            if "partitions" in data else 1
        if global_batch % partitions:
            raise StateError(f"{where}.partitions: {partitions} does not divide global_batch {global_batch}; "
                             f"the state is damaged (a run's P always divides its global batch)")
        return cls(seed=seed, manifest_fingerprint=str(data["manifest_fingerprint"]), global_batch=global_batch,
                   position=position, stages=[dict(s) for s in stages], partitions=partitions)


def stages_from_state(state: StreamState, languages: Sequence[str], where: str = "state") -> list[tuple[int, np.ndarray]]:
    """Stages as [(start, uint64 weights in `languages` order)], checked against the languages."""
    if not state.stages:
        raise StateError(f"{where}.stages: empty; a state has at least the stage starting at 0")
    out = []
    for i, stage in enumerate(state.stages):
        if not isinstance(stage, dict) or not isinstance(stage.get("weights"), dict) or "start" not in stage:
            raise StateError(f"{where}.stages[{i}]: expected {{start: position, weights: {{NAME: int}}}}, got {stage!r}")
        weights = stage["weights"]
        unknown = sorted(set(weights) - set(languages))
        if unknown:
            raise StateError(
                f"{where}.stages[{i}]: language(s) {', '.join(unknown)} are not in this corpus; the saved stream "
                f"cannot be replayed over a different set of languages"
            )
        try:
            array = np.array([int(weights.get(n, 0)) for n in languages], dtype=np.uint64)
            start = int(stage["start"])
        except (TypeError, ValueError, OverflowError) as err:
            raise StateError(f"{where}.stages[{i}]: {err}") from None
        check_integer_weights(array.tolist(), f"{where}.stages[{i}]", StateError)
        out.append((start, array))
    return out


def stage_dicts(cursor: Cursor, languages: Sequence[str]) -> list[dict]:
    """Stages as in the state: [{start, weights: {NAME: int}}]."""
    return [{"start": start, "weights": {n: int(v) for n, v in zip(languages, w.tolist())}}
            for start, w in cursor.stages]


def with_iterator_place(state: dict, worker: int, num_workers: int, next_batch: int) -> dict:
    """`state` with an iterator's place added: DataLoader worker `worker` of `num_workers`, and the
    global batch it produces next."""
    state[ITERATOR] = {WORKER: worker, NUM_WORKERS: num_workers, NEXT_BATCH: next_batch}
    return state


def without_iterator_place(state: Mapping) -> dict:
    """The dataset state of an iterator's state (the place dropped: it binds to one worker of as many)."""
    return {k: v for k, v in state.items() if k != ITERATOR}


def saved_next_batch(state: Mapping, worker: int, num_workers: int) -> int | None:
    """The global batch worker `worker` of `num_workers` saved as its next, or None for a dataset state
    (no place in it); StateError when another worker count saved it."""
    place = state.get(ITERATOR)
    if place is None:
        return None
    if (int(place[WORKER]), int(place[NUM_WORKERS])) != (worker, num_workers):
        raise StateError(
            f"this loader state was saved by DataLoader worker {place[WORKER]} of {place[NUM_WORKERS]} and "
            f"is loaded into worker {worker} of {num_workers}; a StatefulDataLoader resumes only with "
            f"the num_workers it was saved with ({place[NUM_WORKERS]}). To change num_workers, resume the "
            f"stream instead: stream.load_state_dict(loader_state), then iterate a new loader without "
            f"load_state_dict"
        )
    return int(place[NEXT_BATCH])


class StateCodec:
    """`state_of(cursor)` and `cursor_from(state)` for one corpus and global batch.

    Converting needs the corpus (languages, fingerprint), the global batch and the planner
    (a saved stage must build a valid schedule).
    """

    def __init__(self, corpus, languages: Sequence[str], global_batch: int, planner):
        self.corpus = corpus
        self.languages = list(languages)
        self.global_batch = int(global_batch)
        self.planner = planner

    def state_of(self, cursor: Cursor) -> dict:
        """The saved form of `cursor` (interfaces: dataset state)."""
        return StreamState(
            seed=cursor.seed,
            manifest_fingerprint=self.corpus.fingerprint(),
            global_batch=self.global_batch,
            position=cursor.position,
            stages=stage_dicts(cursor, self.languages),
            partitions=cursor.partitions,
        ).to_dict()

    def cursor_from(self, state: Mapping, where: str, current: Cursor, *, keep_generation: bool = False,
                    allow_manifest_change: bool = False) -> Cursor:
        """A validated cursor for `state`: a new generation after `current`, or its own with `keep_generation`.

        A different manifest is refused unless `allow_manifest_change`, in which case the
        current last stage's weights start a new stage at the saved position.
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
        b = self.global_batch
        position = block_after(loaded.position, b)
        if position != loaded.position:  # a rank's "largest position + 1" (interfaces); say so, never silently
            log.warning("%s: position %d is inside global batch %d; resuming at its end, %d (ranks consume whole "
                        "global batches in lockstep)", where, loaded.position, loaded.position // b, position)
        if changed and position > stages[-1][0]:
            stages.append((position, current.stages[-1][1]))
        # P is fixed for the run, like the seed (a state without it: 1)
        cursor = current.with_stages(stages, seed=loaded.seed, position=position, partitions=loaded.partitions)
        self.planner.schedule(cursor, where)  # a bad saved stage fails here, naming the state
        return replace(cursor, generation=current.generation) if keep_generation else cursor
