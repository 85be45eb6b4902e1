"""Routes reads and prefetch hints of a corpus of several manifests to each manifest's reader.

A stream may read several manifests as one corpus (stream/corpus_view.py's CorpusView);
each manifest has its own SampleReader (reader.py). `CorpusReader` is what the iterator
holds: it sends each (language, shard, index) to the reader of the language's manifest and
sums their counters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from climbstream.storage.metrics import COUNTERS

TRAIN = "train"


class CorpusReader:
    """Routes reads and prefetch hints to the reader of the language's manifest."""

    def __init__(self, source_of: Mapping[str, int], readers: Sequence):
        """`source_of[name]`: the index in `readers` of the reader of language `name`'s manifest."""
        self.source_of = dict(source_of)
        self.readers = list(readers)
        self.may_read_ranges = any(r.may_read_ranges for r in self.readers)  # else fetch_ranges has nothing to do

    def read_with(self, name: str, shard: int, index: int, columns: tuple[str, ...] = (), split: str = TRAIN,
                  whole: bool = True):
        """(tokens, {column: value}) of sample `index` of shard `shard` of language `name`
        (see SampleReader.read_with; `whole=False`: this node does not read the shard whole)."""
        return self.readers[self.source_of[name]].read_with(name, split, shard, index, columns, whole)

    def fetch_ranges(self, reads: Sequence[tuple[str, int, int, bool]], split: str = TRAIN) -> None:
        """A batch's (name, shard, index, whole) in read order: each reader fetches its range
        reads among them concurrently (SampleReader.fetch_ranges)."""
        per_source: dict[int, list] = {}
        for name, shard, index, whole in reads:
            per_source.setdefault(self.source_of[name], []).append((name, split, shard, index, whole))
        for i, items in per_source.items():
            self.readers[i].fetch_ranges(items)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Every reader's `holding()` block: shards read inside stay acquired until it ends."""
        with contextlib.ExitStack() as stack:
            for r in self.readers:
                stack.enter_context(r.holding())
            yield

    def hint(self, upcoming: Sequence[tuple[str, int]], split: str = TRAIN,
             whole: Sequence[bool] | None = None) -> None:
        """Shards that will be read next, in need order.

        `whole[i]` False: this node does not read upcoming[i] whole (read/node_reads.py);
        it is left out wherever its reader reads such shards by range, so the prefetcher
        only ever downloads shards the node reads whole.
        """
        per_source: dict[int, list] = {}
        for i, (name, shard) in enumerate(upcoming):
            source = self.source_of[name]
            if whole is not None and not whole[i] and self.readers[source].unowned_by_range:
                continue
            per_source.setdefault(source, []).append((name, split, shard))
        for i, items in per_source.items():
            self.readers[i].hint(items)

    def metrics(self) -> dict[str, float]:
        """The readers' counters summed over sources (counts only: rates are derived from the sums)."""
        ms = [r.metrics() for r in self.readers]
        return {key: sum(m[key] for m in ms) for key in COUNTERS}

    def close(self) -> None:
        """Stop prefetch threads and release cached shards."""
        for r in self.readers:
            r.close()
