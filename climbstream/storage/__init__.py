"""Bytes of shards: local, s3:// and fsspec storage, the node-local cache and prefetch."""
