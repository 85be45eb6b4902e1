"""The on-disk contracts both sides share: the manifest, MDS and WebDataset tar layouts, the loss log.

- manifest.py  Manifest: climbstream-manifest.json, loaded and checked
- mds.py       MDS headers and column decoding
- wds.py       tar member offsets
- sample_sums.py per-sample checksums of a shard (verified range reads)
- corpus_record.py what a saved state keeps of the corpus it read (growth told from rewrites)
- loss_log.py  the loss log: its records, and reading one back (train/ writes it, report/ and the re-weighter read it)

The read side is climbstream/read/, the write side climbstream/prepare/; the loss log is
written by climbstream/train/ and read by climbstream/report/.
"""
