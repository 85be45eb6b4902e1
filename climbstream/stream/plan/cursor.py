"""Where a new iterator starts: everything the stream is a function of, but the corpus.

The stream is a pure function of (seed, manifest, stages, position, partitions). A Cursor is
the (seed, stages, position, partitions) part, plus a generation number that changes whenever stages or
seed are replaced (`add_stage`, `load_state_dict`), so that an iterator started under
older stages can tell it is stale. It is immutable: the dataset swaps in a new one.

`corpus` is the corpus history once the corpus changed during the run: the CorpusVersion
(formats/corpus_record.py) each stretch of positions read, the last one this corpus. Empty:
the run has read this corpus from position 0 (every run before a change), so the stream is
the same as before corpus records existed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Cursor:
    """seed, stages [(start, uint64 weights[K]), ...], position (a global batch boundary), and P."""

    seed: int
    stages: tuple[tuple[int, np.ndarray], ...]
    position: int
    generation: int = 0
    partitions: int = 1  # P of the partitioned order: fixed for a run, like the seed
    corpus: tuple = ()  # CorpusVersion per corpus change; () = this corpus from position 0

    def at(self, position: int) -> "Cursor":
        """The same stages from another position (consumption moved on)."""
        return replace(self, position=int(position))

    def with_stages(self, stages, seed: int | None = None, position: int | None = None,
                    partitions: int | None = None, corpus: tuple | None = None) -> "Cursor":
        """New stages (and optionally seed, position, P and corpus history): a new generation."""
        return Cursor(
            self.seed if seed is None else int(seed),
            tuple((int(s), np.asarray(w, dtype=np.uint64)) for s, w in stages),
            self.position if position is None else int(position),
            self.generation + 1,
            self.partitions if partitions is None else int(partitions),
            self.corpus if corpus is None else tuple(corpus),
        )

    def stage_key(self) -> tuple:
        """Hashable identity of seed and stages (for caching the Schedule built from them)."""
        return (self.seed, tuple((s, w.tobytes()) for s, w in self.stages))
