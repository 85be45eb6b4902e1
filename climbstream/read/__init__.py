"""Samples out of shards: the read side of the formats.

- reader.py       CorpusReader / SampleReader: a sample of (language, shard, index), per process
- read_modes.py   which read mode a shard gets ("shard" through the cache or "range"): pure
- node_reads.py   under a partitioned order, the shards this node reads whole (the rest by range): pure
- byte_sources.py where a shard's bytes come from (a cached file, byte ranges)
- mds_samples.py  samples of an MDS shard; tar_samples.py: samples of a WebDataset tar shard
"""
