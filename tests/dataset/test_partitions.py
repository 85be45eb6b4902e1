"""The partitioned order through ClimbStream: plan = stream, P in the state, the node rule."""

from __future__ import annotations

import numpy as np
import pytest

from climbstream import ClimbStream
from climbstream.errors import ConfigError
from climbstream.stream.config.stream_config import StreamConfig

from tests.corpora import WEIGHTS
from .helpers import batches_from, by_position, described_from, read_batches

B = 16


def _plan_keys(stream, start: int, stop: int) -> dict[int, tuple]:
    plan = stream.plan(start, stop)
    return {start + j: (int(plan.lang[j]), int(plan.shard[j]), int(plan.index[j])) for j in range(len(plan))}


def _read_keys(batches) -> dict[int, tuple]:
    """{position: (lang, shard, index)}; a sample's shard is its index in the language's list."""
    return {p: (int(k[0]), int(k[1]), int(k[2])) for p, k in by_position(batches).items()}


def test_ranks_and_workers_read_exactly_the_partitioned_plan(mds_corpus):
    ranks = [ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=r, world_size=2, partitions=4)
             for r in range(2)]
    got = {}
    for stream in ranks:
        got.update(_read_keys(read_batches(stream, 5, num_workers=2)))
    assert got == _plan_keys(ranks[0], 0, 5 * B)
    plan = ranks[0].plan(0, 5 * B)
    assert (np.bincount(plan.lang[:B], minlength=4) == ranks[0].schedule.block_counts(0)).all()
    slot = (np.arange(5 * B) % B) // (B // 4)
    assert (plan.owner == slot).mean() > 0.75  # most positions hold their own partition's sample


def test_the_state_carries_p_and_a_resume_on_another_world_size_continues_the_stream(mds_corpus):
    first = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1, partitions=4)
    read_batches(first, 3)
    state = first.state_dict()
    assert state["partitions"] == 4 and state["position"] == 3 * B
    later = [ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=0, rank=r, world_size=2) for r in range(2)]
    got = {}
    for stream in later:
        stream.load_state_dict(state)
        assert stream.partitions == 4 and stream.seed == 3
        got.update(_read_keys(read_batches(stream, 2)))
    assert got == _plan_keys(first, 3 * B, 5 * B)


def test_persistent_workers_see_p_of_a_state_loaded_after_they_started(mds_corpus):
    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1)
    loader = stream.dataloader(num_workers=2, persistent_workers=True)
    batches_from(loader, 2)  # the workers now exist, made with P = 1
    partitioned = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1, partitions=4)
    read_batches(partitioned, 2)
    stream.load_state_dict(partitioned.state_dict())
    assert _read_keys(described_from(loader, 3)) == _plan_keys(partitioned, 2 * B, 5 * B)


def test_a_state_without_partitions_is_the_unpartitioned_order(mds_corpus):
    old = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1)
    assert old.partitions == 1 and "partitions" not in old.state_dict()
    resumed = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1, partitions=4)
    resumed.load_state_dict(old.state_dict())
    assert resumed.partitions == 1
    assert _plan_keys(resumed, 0, 2 * B) == _plan_keys(old, 0, 2 * B)
    assert resumed.plan(0, B).owner is None


def test_a_node_count_that_neither_divides_p_nor_is_a_multiple_is_an_error_naming_the_fix(mds_corpus):
    four = ClimbStream(mds_corpus, WEIGHTS, global_batch=24, seed=3, rank=0, world_size=1, partitions=4)
    three = ClimbStream(mds_corpus, WEIGHTS, global_batch=24, seed=3, rank=0, world_size=3, ranks_per_node=1)
    with pytest.raises(ConfigError, match=r"P = 4 partitions .* and 3 nodes .* divides P \(1, 2, 4\)"):
        three.load_state_dict(four.state_dict())
    with pytest.raises(ConfigError, match="partitions 5 does not divide global_batch 16"):
        ClimbStream(mds_corpus, WEIGHTS, global_batch=B, rank=0, world_size=1, partitions=5)


def test_the_default_p_is_the_node_count_when_it_is_known(mds_corpus):
    known = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, rank=0, world_size=8, ranks_per_node=4)
    assert known.partitions == 2
    unknown = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, rank=0, world_size=2)
    assert unknown.partitions == 1


def test_the_config_key_reaches_the_dataset(mds_corpus):
    config = StreamConfig.from_dict({"sources": [mds_corpus], "weights": WEIGHTS, "global_batch": B,
                                     "partitions": 8, "rank": 0, "world_size": 1})
    assert ClimbStream.from_config(config).partitions == 8
    with pytest.raises(ConfigError, match="partitions: expected a positive integer"):
        StreamConfig.from_dict({"sources": [mds_corpus], "weights": WEIGHTS, "global_batch": B, "partitions": 0})


def test_a_scheduled_language_without_samples_is_named(mds_corpus):
    from climbstream.stream.corpus_view import EmptyOrder

    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, rank=0, world_size=1, partitions=2)
    orders = stream.corpus.orders(0, 4, 2)
    orders[3] = EmptyOrder("dd")
    orders.parts.samples[3] = 0
    with pytest.raises(ConfigError, match="language dd has no training samples"):
        from climbstream.stream.plan.plan import plan_range

        plan_range(stream.schedule, orders, 0, 4 * B)
