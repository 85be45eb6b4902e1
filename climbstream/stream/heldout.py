"""A language's held-out split as a plain, unmixed stream in a fixed order.

Evaluation needs the same samples in the same order every time: shard order as in the
manifest, then sample order inside each shard. Positions count from 0 within the split.
Read it in the main process or with a single DataLoader worker (more workers would
interleave the order).
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import IterableDataset

from climbstream.errors import ConfigError
from climbstream.stream.iteration.sample import make_sample

HELDOUT = "heldout"


class HeldoutStream(IterableDataset):
    """Held-out samples of one language: dicts like the training stream's."""

    def __init__(self, corpus, lang: str, lang_id: int, reader_options: dict, max_samples: int | None = None):
        if lang not in corpus.languages:
            raise ConfigError(f"heldout: unknown language {lang!r} (languages: {', '.join(corpus.languages)})")
        self.corpus = corpus
        self.lang = lang
        self.lang_id = lang_id
        self.max_samples = max_samples
        self._reader_options = reader_options
        self._shards = corpus.manifest_of(lang).shards(lang, HELDOUT)

    def __len__(self) -> int:
        total = sum(int(s.samples) for s in self._shards)
        return total if self.max_samples is None else min(total, self.max_samples)

    def limit(self, max_samples: int) -> "HeldoutStream":
        """The same stream cut to its first `max_samples` samples."""
        return HeldoutStream(self.corpus, self.lang, self.lang_id, self._reader_options, max_samples)

    def __iter__(self) -> Iterator[dict]:
        from climbstream.read.reader import open_reader

        options = dict(self._reader_options)
        reader = open_reader(self.corpus.manifest_of(self.lang), **options)
        try:
            reader.hint([(self.lang, HELDOUT, i) for i in range(len(self._shards))])
            position = 0
            for shard_id, shard in enumerate(self._shards):
                for index in range(int(shard.samples)):
                    if self.max_samples is not None and position >= self.max_samples:
                        return
                    tokens = reader.read(self.lang, HELDOUT, shard_id, index)
                    yield make_sample(tokens, self.lang_id, position, shard_id, index)
                    position += 1
        finally:
            reader.close()
