"""Samples out of shards: the read side of the formats.

- reader.py        open_reader / SampleReader: a sample of (language, shard, index) of one manifest, per process
- corpus_reader.py CorpusReader: routes reads and hints of a corpus of several manifests to their readers
- read_modes.py    which read mode a shard gets ("shard" through the cache or "range"): pure
- node_reads.py    under a partitioned order, the partitions a node reads, the node counts that fit P,
                   and the shards this node reads whole (the rest by range): pure
- range_batch.py   a batch's range reads, fetched concurrently
- range_sums.py    the per-sample checksums a range read is verified against
- byte_sources.py  where a shard's bytes come from (a cached file, byte ranges)
- mds_samples.py   samples of an MDS shard; tar_samples.py: samples of a WebDataset tar shard
"""
