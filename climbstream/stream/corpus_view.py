"""One view over the manifests a dataset reads: languages, counts, orders and readers.

A dataset may name several manifests (say one per language family); their language sets
must be disjoint and they must agree on seq_len and tokenizer, or the tokens would not be
comparable. Languages are sorted by name; that order is the `lang` id of a sample.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

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
        if name not in self._shards:
            raise ConfigError(f"shard_path: unknown language {name!r} (languages: {', '.join(sorted(self._shards))})")
        shards = self._shards[name]
        if isinstance(shard, bool) or not isinstance(shard, (int, np.integer)) or not 0 <= shard < len(shards):
            raise ConfigError(f"shard_path: {name} has train shards 0 to {len(shards) - 1}, got shard {shard!r}")
        return shards[int(shard)].path

    def fingerprint(self) -> str:
        """One fingerprint for all sources (order-independent)."""
        parts = sorted(m.fingerprint() for m in self.manifests)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def train_shards(self) -> dict[str, list]:
        """{NAME: its train ShardInfos in manifest order}."""
        return dict(self._shards)

    def orders(self, seed: int, window_shards: int, partitions: int = 1, versions: dict | None = None) -> list:
        """One LanguageOrder per language, keyed by the language name (not its index).

        With `partitions` P >= 2 the list is a PartitionedOrders, which `plan_range` reads
        as the partitioned order (docs/schedule.md); P = 1 is the unpartitioned order.
        `versions[NAME]`: the corpus versions of a language whose shards changed during the
        run (stream/plan/planner.py, language_versions); it gets a GrownOrder.
        """
        from climbstream.schedule.growth import GrownOrder
        from climbstream.schedule.order import LanguageOrder, language_key

        orders = []
        for n in self.languages:
            counts = [int(s.samples) for s in self._shards[n]]
            if versions and n in versions:
                orders.append(GrownOrder(seed, language_key(n), counts, versions[n], window_shards))
                continue
            orders.append(LanguageOrder(seed, language_key(n), counts, window_shards) if sum(counts)
                          else EmptyOrder(n))
        if partitions == 1:
            return orders
        from climbstream.schedule.partitioned import PartitionedOrders

        return PartitionedOrders(orders, [[int(s.samples) for s in self._shards[n]] for n in self.languages],
                                 [language_key(n) for n in self.languages], seed, window_shards, partitions)

    def open_readers(self, **options) -> "CorpusReader":
        """Readers for every source; call inside the process that reads (after fork)."""
        from climbstream.read.corpus_reader import CorpusReader
        from climbstream.read.reader import open_reader

        return CorpusReader(self._source_of, [open_reader(m, **options) for m in self.manifests])


class EmptyOrder:
    """The order of a language with no training samples: it may only ever have weight 0."""

    samples_per_epoch = 0

    def __init__(self, name: str):
        self.name = name

    def locate(self, ks):
        raise ConfigError(f"language {self.name} has no training samples but was scheduled; give it weight 0")
