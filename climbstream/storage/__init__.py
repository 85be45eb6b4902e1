"""Bytes of shards: local, s3:// and fsspec storage, the node-local cache and prefetch.

- options.py   StorageOptions: endpoint, region, credentials, retries, timeouts
- remote.py    ObjectStore, open_store(url), join_url; LocalStore (paths, file://)
- s3.py        S3Store (boto3, one client per process); fsspec_store.py: other schemes
- retry.py     which failures are retried (backoff with jitter) and the errors raised
- cache.py     ShardCache: one download per machine, fcntl locks, LRU within a limit
- prefetch.py  Prefetcher: fetch the shards wanted next, `depth` ahead, in order
- metrics.py   wait_s, cache_hit_rate, bytes_downloaded for the loss log
"""
