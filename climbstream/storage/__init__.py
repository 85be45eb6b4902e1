"""Bytes of shards: local, s3:// and fsspec storage, the node-local cache and prefetch.

- options.py   StorageOptions: endpoint, region, credentials, retries, timeouts
- urls.py      url_scheme, is_remote, local_path, join_url, parent_url (pure functions)
- store.py     ObjectStore: the interface of a backend, atomic verified downloads
- registry.py  open_store(url): the backend for the URL's scheme; register_store
- local_store.py LocalStore (paths, file://); s3.py S3Store (boto3 + s3_direct.py GETs);
               fsspec_store.py: other schemes
- unpack.py    compressed shards, decompressed into the cache
- retry.py     which failures are retried (backoff with jitter) and the errors raised
- cache.py     ShardCache: one download per machine, fcntl locks, LRU within a limit
- prefetch.py  Prefetcher: fetch the shards wanted next, `depth` ahead, in order
- metrics.py   the loader counters and their names (COUNTERS, LOADER_METRICS) for the loss log
- cache_location.py where the cache lives when none is named; process_local.py state made per process
- redact.py    signatures and secrets taken out of log lines
"""
