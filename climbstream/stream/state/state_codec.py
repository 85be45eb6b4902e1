"""A cursor to and from the saved dataset state, checked against this corpus and batch size.

The state (stream/state/saved_state.py) is what a checkpoint holds; a Cursor is what an iterator
starts from. Converting between them needs the corpus (languages, fingerprint), the
global batch and the planner (a saved stage must build a valid schedule); this is the
one place that does it, for the dataset and for a worker restoring its iterator.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from collections.abc import Mapping, Sequence

from climbstream.errors import ConfigError, StateError
from climbstream.stream.plan.cursor import Cursor
from climbstream.stream.plan.layout import block_after
from climbstream.stream.state.corpus_change import continued_history
from climbstream.stream.state.saved_state import StreamState, stages_from_state

log = logging.getLogger(__name__)


class StateCodec:
    """`state_of(cursor)` and `cursor_from(state)` for one corpus and global batch."""

    def __init__(self, corpus, languages: Sequence[str], global_batch: int, planner):
        self.corpus = corpus
        self.languages = list(languages)
        self.global_batch = int(global_batch)
        self.planner = planner
        self._record = None  # (this corpus as CorpusVersion at 0, its run tags): computed once, when first saved

    def corpus_record(self) -> tuple:
        """(CorpusVersion of this corpus from 0, {NAME: run tags}) (formats/corpus_record.py)."""
        if self._record is None:
            from climbstream.formats.corpus_record import CorpusVersion, shard_tags

            shards = self.corpus.train_shards()
            self._record = (CorpusVersion.of(0, shards), {n: shard_tags(s) for n, s in shards.items()})
        return self._record

    def corpus_versions(self, cursor: Cursor) -> tuple:
        """The CorpusVersions the cursor's stream read (one: this corpus from position 0)."""
        return cursor.corpus or (self.corpus_record()[0],)

    def state_of(self, cursor: Cursor) -> dict:
        """The saved form of `cursor` (interfaces: dataset state)."""
        return StreamState(
            seed=cursor.seed,
            manifest_fingerprint=self.corpus.fingerprint(),
            global_batch=self.global_batch,
            position=cursor.position,
            stages=stage_dicts(cursor, self.languages),
            partitions=cursor.partitions,
            corpus=self.corpus_versions(cursor),
            corpus_tags=self.corpus_record()[1],
        ).to_dict()

    def cursor_from(self, state: Mapping, where: str, current: Cursor, *, keep_generation: bool = False,
                    allow_manifest_change: bool = False) -> Cursor:
        """A validated cursor for `state`: a new generation after `current`, or its own with `keep_generation`.

        A different manifest is refused unless `allow_manifest_change`, in which case the
        current last stage's weights start a new stage at the saved position (or replace the
        weights of a saved stage starting there: nothing was drawn under it yet). A grown
        corpus continues exactly-once; a rewritten one is refused (stream/state/corpus_change.py).
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
        elif changed:
            stages[-1] = (position, current.stages[-1][1])
        history = continued_history(loaded.corpus, loaded.corpus_tags, self.corpus.train_shards(), self.languages,
                                    stages[-1][1], position, changed, where)
        # P is fixed for the run, like the seed (a state without it: 1)
        cursor = current.with_stages(stages, seed=loaded.seed, position=position, partitions=loaded.partitions,
                                     corpus=history)
        self.planner.schedule(cursor, where)  # a bad saved stage fails here, naming the state
        return replace(cursor, generation=current.generation) if keep_generation else cursor


def stage_dicts(cursor: Cursor, languages: Sequence[str]) -> list[dict]:
    """Stages as in the state: [{start, weights: {NAME: int}}]."""
    return [{"start": start, "weights": {n: int(v) for n, v in zip(languages, w.tolist())}}
            for start, w in cursor.stages]
