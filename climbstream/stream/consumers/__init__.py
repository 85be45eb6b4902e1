"""Who iterates the stream, and what the stream refuses to be iterated by.

- consumer.py      the DataLoader and trainer wrappers found on the stack, and the checks
- shard_padding.py the stream's batches placed for accelerate's IterableDatasetShard
"""
