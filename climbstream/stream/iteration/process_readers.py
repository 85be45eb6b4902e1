"""This process's readers of the corpus: opened on first use, after fork, kept across iterators.

boto3 clients and prefetch threads do not survive fork, so readers are opened in the
process that reads (a DataLoader worker, or the main process) and never pickled: a copy
of the dataset starts with none. How many readers share the machine's cache (workers x
ranks per node) is fixed when the first one opens, so the cache limit can be checked
against what they hold at once.
"""

from __future__ import annotations

from climbstream.storage.process_local import PerProcess


class ProcessReaders:
    """`get(num_workers)`: the CorpusReader of this process; `close()` at worker exit."""

    def __init__(self, corpus, options: dict, ranks_per_node: int):
        self.corpus = corpus
        self.options = dict(options)
        self.ranks_per_node = int(ranks_per_node)
        self._sharing = 1
        self._readers = PerProcess(self._open)

    def get(self, num_workers: int):
        """This process's readers; the first call fixes how many readers share the cache."""
        if self._readers.peek() is None:
            self._sharing = max(1, num_workers) * self.ranks_per_node
        return self._readers.get()

    def close(self) -> None:
        """Stop prefetch threads and release cached shards (a parent's readers, seen after fork, are left alone)."""
        readers = self._readers.clear()
        if readers is not None:
            readers.close()

    def _open(self):
        return self.corpus.open_readers(**self.options, readers_sharing_cache=self._sharing)
