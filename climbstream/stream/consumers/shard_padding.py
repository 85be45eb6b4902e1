"""The stream under accelerate's IterableDatasetShard: exact batches, nothing read twice.

accelerate wraps every IterableDataset it prepares for several processes in an
IterableDatasetShard, which reads `real_batch` samples per step in every process and
keeps the `process_batch` of them at `offset` (accelerate/data_loader.py). The stream
already reads only this rank's slice, so under the wrapper it yields each of its
batches at the kept offset and fills the rest of the real batch with references to a
sample it already holds: the wrapper keeps exactly this rank's slice, and no byte is
read for the filler. consumer.check_consumer has checked that the kept slice is this
rank's slice (`process_batch == local_batch`).
"""

from __future__ import annotations

from collections.abc import Iterator

from climbstream.stream.consumers.consumer import ProcessShard


def pad_for_shard(iterator, shard: ProcessShard) -> Iterator[dict]:
    """Each batch of `iterator` (process_batch samples) placed at `shard.offset` of a real batch."""
    before = shard.offset
    after = shard.real_batch - shard.offset - shard.process_batch
    while True:
        batch = []
        for sample in iterator:
            batch.append(sample)
            if len(batch) == shard.process_batch:
                break
        if not batch:
            return
        filler = batch[0]
        yield from [filler] * before
        yield from batch
        yield from [filler] * after
