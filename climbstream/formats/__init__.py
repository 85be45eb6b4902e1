"""Shard formats (MDS, WebDataset tar), the manifest and `prepare`."""
