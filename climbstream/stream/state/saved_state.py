"""The dataset state that goes into a checkpoint (format in docs/interfaces.md).

`{version, algorithm_version, seed, manifest_fingerprint, global_batch, position, stages}`
where stages are `[{start, weights: {NAME: int}}]` with integer weights summing to 2**32,
plus `partitions` (P of the partitioned order, fixed for the run like the seed) when it is
not 1: a state without it is P = 1, so states saved before it existed replay unchanged.
`algorithm_version` names the schedule and order algorithms: a state written by another
algorithm would give another stream, so loading it is refused rather than silently
producing different samples.

`corpus`: `{versions: [{start, languages: {NAME: {shards, samples, digest}}}], tags: {NAME:
str}}`, the corpus each stretch of positions read and the run tags of the last one
(formats/corpus_record.py): what a later corpus change needs to stay exactly-once, or to
be refused as a rewrite. A state without it (saved before it existed) read its corpus
from position 0, and cannot grow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from climbstream.stream.config.checks import MAX_GLOBAL_BATCH, MAX_POSITION, MAX_SEED, check_int
from climbstream.errors import StateError
from climbstream.schedule.schedule import ALGORITHM_VERSION
from climbstream.schedule.weights import WEIGHT_TOTAL

STATE_VERSION = 1
MAX_PARTITIONS = 2**20
_FIELDS = ("version", "algorithm_version", "seed", "manifest_fingerprint", "global_batch", "position", "stages")


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
    corpus: tuple | None = None  # CorpusVersions, None: not recorded (a state from before corpus records)
    corpus_tags: dict | None = None  # {NAME: run tags of the last version's shards}

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        out = {name: getattr(self, name) for name in _FIELDS}
        if self.partitions != 1:
            out["partitions"] = self.partitions
        if self.corpus is not None:
            out["corpus"] = {"versions": [v.to_dict() for v in self.corpus], "tags": dict(self.corpus_tags or {})}
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
        corpus, tags = _corpus_of(data.get("corpus"), f"{where}.corpus")
        return cls(seed=seed, manifest_fingerprint=str(data["manifest_fingerprint"]), global_batch=global_batch,
                   position=position, stages=[dict(s) for s in stages], partitions=partitions, corpus=corpus,
                   corpus_tags=tags)


def _corpus_of(data, where: str) -> tuple[tuple | None, dict | None]:
    """The saved corpus history and last tags, checked; (None, None) for a state without them."""
    from climbstream.formats.corpus_record import CorpusVersion

    if data is None:
        return None, None
    if not isinstance(data, Mapping) or not isinstance(data.get("versions"), (list, tuple)) or not data["versions"] \
            or not isinstance(data.get("tags", {}), Mapping):
        raise StateError(f"{where}: expected {{versions: [{{start, languages}}, ...], tags: {{NAME: str}}}}, "
                         f"got {data!r}")
    versions = tuple(CorpusVersion.from_dict(v, f"{where}.versions[{i}]") for i, v in enumerate(data["versions"]))
    starts = [v.start for v in versions]
    if starts[0] != 0 or any(b < a for a, b in zip(starts, starts[1:])):
        raise StateError(f"{where}.versions: starts {starts} must begin at 0 and never decrease; the state is damaged")
    return versions, {str(k): str(v) for k, v in data.get("tags", {}).items()}


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
                f"cannot be replayed over a different set of languages (to retire a language, keep it in the "
                f"manifest with no train shards, as 'climbstream manifest --append' does, and give it weight 0)"
            )
        try:
            array = np.array([int(weights.get(n, 0)) for n in languages], dtype=np.uint64)
            start = int(stage["start"])
        except (TypeError, ValueError, OverflowError) as err:
            raise StateError(f"{where}.stages[{i}]: {err}") from None
        if int(array.sum()) != WEIGHT_TOTAL:
            raise StateError(f"{where}.stages[{i}].weights: sum {int(array.sum())} != 2**32")
        out.append((start, array))
    return out
