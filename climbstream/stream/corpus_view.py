"""One view over the manifests a dataset reads: languages, counts, orders and readers.

A dataset may name several manifests (say one per language family); their language sets
must be disjoint and they must agree on seq_len and tokenizer, or the tokens would not be
comparable. Languages are sorted by name; that order is the `lang` id of a sample.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence

from climbstream.errors import ConfigError

TRAIN = "train"


class CorpusView:
    """The union of several manifests, keyed by language name."""

    def __init__(self, manifests: Sequence, sources: Sequence[str]):
        self.manifests = list(manifests)
        self.sources = list(sources)
        self._source_of: dict[str, int] = {}
        for i, m in enumerate(self.manifests):
            for name in m.languages:
                if name in self._source_of:
                    raise ConfigError(
                        f"sources: language {name} is in both {self.sources[self._source_of[name]]} and "
                        f"{self.sources[i]}; each language must come from one manifest"
                    )
                self._source_of[name] = i
        first = self.manifests[0]
        for src, m in zip(self.sources[1:], self.manifests[1:]):
            if m.seq_len != first.seq_len or m.tokenizer.get("hash") != first.tokenizer.get("hash"):
                raise ConfigError(
                    f"sources: {src} (seq_len {m.seq_len}, tokenizer {m.tokenizer.get('hash')}) does not match "
                    f"{self.sources[0]} (seq_len {first.seq_len}, tokenizer {first.tokenizer.get('hash')})"
                )
        self.languages = sorted(self._source_of)
        self.seq_len = first.seq_len
        self._shards = {n: self._manifest(n).shards(n, TRAIN) for n in self.languages}

    @classmethod
    def load(cls, sources: Sequence[str], storage=None) -> "CorpusView":
        """Load every manifest named in `sources` (paths or URLs)."""
        from climbstream.formats.manifest import Manifest

        if not sources:
            raise ConfigError("sources: name at least one manifest (a prepared corpus folder or URL)")
        return cls([Manifest.load(s, storage=storage) for s in sources], sources)

    def _manifest(self, name: str):
        return self.manifests[self._source_of[name]]

    def manifest_of(self, name: str):
        """The manifest that holds language `name`."""
        return self._manifest(name)

    def token_counts(self) -> dict[str, int]:
        """Training tokens available per language."""
        return {n: int(self._manifest(n).tokens(n)) for n in self.languages}

    def samples(self, name: str) -> int:
        """Training samples of language `name`."""
        return sum(int(s.samples) for s in self._shards[name])

    def shard_path(self, name: str, shard: int) -> str:
        """The manifest-relative path of train shard `shard` of `name`."""
        return self._shards[name][shard].path

    def fingerprint(self) -> str:
        """One fingerprint for all sources (order-independent)."""
        parts = sorted(m.fingerprint() for m in self.manifests)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def orders(self, seed: int, window_shards: int, partitions: int = 1) -> list:
        """One LanguageOrder per language, keyed by the language name (not its index).

        With `partitions` P >= 2 the list is a PartitionedOrders, which `plan_range` reads
        as the partitioned order (docs/schedule.md); P = 1 is the unpartitioned order.
        """
        from climbstream.schedule.order import LanguageOrder, language_key

        orders = []
        for n in self.languages:
            counts = [int(s.samples) for s in self._shards[n]]
            orders.append(LanguageOrder(seed, language_key(n), counts, window_shards) if sum(counts)
                          else EmptyOrder(n))
        if partitions == 1:
            return orders
        from climbstream.schedule.partitioned import PartitionedOrders

        return PartitionedOrders(orders, [[int(s.samples) for s in self._shards[n]] for n in self.languages],
                                 [language_key(n) for n in self.languages], seed, window_shards, partitions)

    def open_readers(self, **options) -> "CorpusReader":
        """Readers for every source; call inside the process that reads (after fork)."""
        from climbstream.read.reader import open_reader

        return CorpusReader(self, [open_reader(m, **options) for m in self.manifests])


class EmptyOrder:
    """The order of a language with no training samples: it may only ever have weight 0."""

    samples_per_epoch = 0

    def __init__(self, name: str):
        self.name = name

    def locate(self, ks):
        raise ConfigError(f"language {self.name} has no training samples but was scheduled; give it weight 0")


class CorpusReader:
    """Routes reads and prefetch hints to the reader of the language's manifest."""

    def __init__(self, view: CorpusView, readers: Sequence):
        self.view = view
        self.readers = list(readers)
        self.may_read_ranges = any(r.may_read_ranges for r in self.readers)  # else fetch_ranges has nothing to do

    def read_with(self, name: str, shard: int, index: int, columns: tuple[str, ...] = (), split: str = TRAIN,
                  whole: bool = True):
        """(tokens, {column: value}) of sample `index` of shard `shard` of language `name`
        (see SampleReader.read_with; `whole=False`: this node does not read the shard whole)."""
        return self.readers[self.view._source_of[name]].read_with(name, split, shard, index, columns, whole)

    def fetch_ranges(self, reads: Sequence[tuple[str, int, int, bool]], split: str = TRAIN) -> None:
        """A batch's (name, shard, index, whole) in read order: each reader fetches its range
        reads among them concurrently (SampleReader.fetch_ranges)."""
        per_source: dict[int, list] = {}
        for name, shard, index, whole in reads:
            per_source.setdefault(self.view._source_of[name], []).append((name, split, shard, index, whole))
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
            source = self.view._source_of[name]
            if whole is not None and not whole[i] and self.readers[source].unowned_by_range:
                continue
            per_source.setdefault(source, []).append((name, split, shard))
        for i, items in per_source.items():
            self.readers[i].hint(items)

    def metrics(self) -> dict[str, float]:
        """The readers' counters summed over sources (counts only: rates are derived from the sums)."""
        from climbstream.stream.control import COUNTERS

        ms = [r.metrics() for r in self.readers]
        return {key: sum(m[key] for m in ms) for key in COUNTERS}

    def close(self) -> None:
        """Stop prefetch threads and release cached shards."""
        for r in self.readers:
            r.close()
