"""What the main process publishes to DataLoader workers, and what they report back.

A worker's first iterator starts from the copy of the dataset it was created with (fork
and spawn both copy it when the DataLoader iterator is created), so it needs nothing
from here. Persistent workers outlive that copy: at each later iterator they read the
cursor the main process published last (seed, stages, start position). Workers report
loader counters, and whether an iterator ran in worker processes that the main process
does not follow (a plain DataLoader), in which case the main process no longer knows
the consumed position unless the loop tells it (`mark_consumed`).

Everything lives in a few shared-memory tensors, which torch hands to workers under
both start methods.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from climbstream.stream.plan.cursor import Cursor
from climbstream.errors import ConfigError
from climbstream.storage.metrics import COUNTERS, LOADER_METRICS, summarize

METRIC_NAMES = (*COUNTERS, "samples")

# header slots
(_POSITION, _N_STAGES, _GENERATION, _SEED, _UNFOLLOWED, _REPORTED, _SEQUENCE, _FRESH, _RESTORED, _PARTITIONS,
 _CORPUS_BYTES, _AHEAD) = range(12)
MAX_CORPUS_BYTES = 1 << 18  # the corpus history as JSON: ~100 bytes per language and corpus change
_AHEAD_FRAMEWORKS = (None, "accelerate", "Lightning")  # what _AHEAD holds, by index


class SharedControl:
    """The published cursor, loader counters and consumption flags, in shared memory."""

    def __init__(self, num_languages: int, max_stages: int = 1024, max_workers: int = 256):
        self.num_languages = num_languages
        self.max_workers = max_workers
        self._header = torch.zeros(12, dtype=torch.int64).share_memory_()
        self._corpus = torch.zeros(MAX_CORPUS_BYTES, dtype=torch.uint8).share_memory_()
        self._corpus_written = None  # (the history last written, its length): this process's memo
        self._stages = torch.zeros(max_stages, 1 + num_languages, dtype=torch.int64).share_memory_()
        self._metrics = torch.zeros(max_workers, len(METRIC_NAMES), dtype=torch.float64).share_memory_()

    # -- the published cursor -------------------------------------------------------------
    def publish(self, cursor: Cursor) -> None:
        """Make `cursor` what the next iterator of a persistent worker starts from.

        A sequence counter, odd while writing, lets a reader retry a torn read.
        """
        if len(cursor.stages) > self._stages.shape[0]:
            raise ConfigError(f"too many stages ({len(cursor.stages)}); at most {self._stages.shape[0]} are supported")
        self._header[_SEQUENCE] += 1
        for i, (start, weights) in enumerate(cursor.stages):
            self._stages[i, 0] = int(start)
            self._stages[i, 1:] = torch.from_numpy(np.asarray(weights, dtype=np.int64))
        self._header[_N_STAGES] = len(cursor.stages)
        self._header[_CORPUS_BYTES] = self._publish_corpus(cursor.corpus)
        self._header[_POSITION] = cursor.position
        self._header[_SEED] = cursor.seed
        self._header[_PARTITIONS] = cursor.partitions
        if int(self._header[_GENERATION]) != cursor.generation:
            self._header[_FRESH] = 0
        self._header[_GENERATION] = cursor.generation
        self._header[_SEQUENCE] += 1

    def published(self) -> Cursor:
        """The cursor last published (a consistent copy)."""
        while True:
            before = int(self._header[_SEQUENCE])
            header = self._header.clone()
            table = self._stages[: int(header[_N_STAGES])].numpy().copy()
            corpus = bytes(self._corpus[: int(header[_CORPUS_BYTES])].numpy())
            if before % 2 == 0 and int(self._header[_SEQUENCE]) == before:
                break
        stages = tuple((int(row[0]), row[1:].astype(np.uint64)) for row in table)
        return Cursor(int(header[_SEED]), stages, int(header[_POSITION]), int(header[_GENERATION]),
                      int(header[_PARTITIONS]), _corpus_of(corpus))

    def _publish_corpus(self, corpus: tuple) -> int:
        """Write the corpus history (JSON) where workers read it; its length in bytes (0: none).

        Written again only when the history changed (every step publishes the position)."""
        if not corpus:
            return 0
        if self._corpus_written is not None and self._corpus_written[0] is corpus:
            return self._corpus_written[1]
        data = json.dumps([v.to_dict() for v in corpus], separators=(",", ":")).encode()
        if len(data) > MAX_CORPUS_BYTES:
            raise ConfigError(f"the corpus history is {len(data)} bytes as JSON, more than the {MAX_CORPUS_BYTES} "
                              f"DataLoader workers can be handed; fewer corpus changes per run, or num_workers=0")
        self._corpus[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        self._corpus_written = (corpus, len(data))
        return len(data)

    @property
    def generation(self) -> int:
        """Generation of the published stages: iterators started under another one are stale."""
        return int(self._header[_GENERATION])

    def iterator_started(self, generation: int) -> None:
        """An iterator began under stages of `generation`; its batches may be consumed if current."""
        if generation == self.generation:
            self._header[_FRESH] = 1

    @property
    def fresh(self) -> bool:
        """True once an iterator started under the current stages (after the last change)."""
        return bool(self._header[_FRESH])

    # -- whether the main process follows consumption -------------------------------------
    def iterator_unfollowed(self, restored: bool) -> None:
        """A worker started an iterator whose batches the main process does not see; `restored`:
        from a StatefulDataLoader state the main process never loaded."""
        self._header[_UNFOLLOWED] = 1
        if restored:  # where the loop is now is unknown until its next report
            self._header[_RESTORED] = 1
            self._header[_REPORTED] = 0

    @property
    def restored_unreported(self) -> bool:
        """True when workers restored from a loader state run and no step reported since."""
        return bool(self._header[_RESTORED]) and not bool(self._header[_REPORTED])

    def consumption_reported(self) -> None:
        """The loop reports what it consumed (`mark_consumed`): the position is known again."""
        self._header[_REPORTED] = 1

    def worker_fetched_ahead_by(self, framework: str) -> None:
        """A worker's iterator runs under `framework`'s fetcher, which takes batches before the step
        trains on them (the main process does not see that fetcher when only workers iterate)."""
        self._header[_AHEAD] = _AHEAD_FRAMEWORKS.index(framework)

    @property
    def ahead(self) -> str | None:
        """The framework a worker reported fetching ahead of the step since the position was last known."""
        return _AHEAD_FRAMEWORKS[int(self._header[_AHEAD])]

    def position_known(self) -> None:
        """A loaded state (or a followed iterator) fixes the position: forget unfollowed runs."""
        self._header[_AHEAD] = 0
        self._header[_UNFOLLOWED] = 0
        self._header[_REPORTED] = 0
        self._header[_RESTORED] = 0

    @property
    def position_unknown(self) -> bool:
        """True when unfollowed iterators ran and the loop never reported consumption."""
        return bool(self._header[_UNFOLLOWED]) and not bool(self._header[_REPORTED])

    # -- counters -------------------------------------------------------------------------
    def add_metrics(self, slot: int, **values: float) -> None:
        """Add to worker `slot`'s counters (names from METRIC_NAMES): counts only, never rates."""
        for name, value in values.items():
            self._metrics[slot, METRIC_NAMES.index(name)] += float(value)

    def metrics(self) -> dict[str, float]:
        """`{wait_s, cache_hit_rate, bytes_downloaded, samples}` (the loss log's loader line): counts
        summed over workers, the cache hit rate derived once from the summed hits and misses
        (storage/metrics.py's `summarize`)."""
        values = dict(zip(METRIC_NAMES, self._metrics.sum(dim=0).tolist()))
        summary = summarize(**{k: values[k] for k in COUNTERS})
        return {**{k: summary[k] for k in LOADER_METRICS}, "samples": values["samples"]}

    def check_slot(self, slot: int) -> int:
        """Validate a worker slot index."""
        if not 0 <= slot < self.max_workers:
            raise ConfigError(f"at most {self.max_workers} DataLoader workers per rank are supported (got worker {slot})")
        return slot


def _corpus_of(data: bytes) -> tuple:
    from climbstream.formats.corpus_record import CorpusVersion

    return tuple(CorpusVersion.from_dict(v, "published corpus") for v in json.loads(data)) if data else ()
