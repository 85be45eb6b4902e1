"""The partitioned order: same batches as the schedule, own shards per slice, exact epochs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from climbstream.errors import ScheduleError
from climbstream.schedule.order import LanguageOrder, language_key
from climbstream.schedule.partitioned import PartitionedOrders
from climbstream.schedule.parts import LanguageParts
from climbstream.schedule.schedule import Schedule
from climbstream.stream.plan.plan import plan_range
import partition_reference as pref
from schedule_helpers import dirichlet_weights, to_weights

NAMES = [f"l{i:03d}" for i in range(64)]


def build(sizes, weights, block, partitions, seed=7, window=2, stages=()):
    keys = [language_key(n) for n in NAMES[:len(sizes)]]
    schedule = Schedule(len(sizes), block, seed)
    schedule.add_stage(0, weights)
    for start, w in stages:
        schedule.add_stage(start, w)
    base = [LanguageOrder(seed, k, s, window) if sum(s) else None for k, s in zip(keys, sizes)]
    return schedule, PartitionedOrders(base, sizes, keys, seed, window, partitions), keys


corpora = st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=6).filter(lambda xs: sum(xs) > 0),
                   min_size=1, max_size=5)


@settings(max_examples=25, deadline=None)
@given(sizes=corpora, p_exp=st.integers(1, 3), width=st.integers(1, 4), seed=st.integers(0, 2**64 - 1),
       blocks=st.integers(1, 6), wseed=st.integers(0, 1000))
def test_plan_equals_the_python_reference(sizes, p_exp, width, seed, blocks, wseed):
    partitions = 2**p_exp
    block = partitions * width
    weights = dirichlet_weights(len(sizes), wseed)
    schedule, orders, keys = build(sizes, weights, block, partitions, seed=seed)
    plan = plan_range(schedule, orders, 0, blocks * block)
    languages = [pref.ReferenceLanguage(seed, k, s, 2, partitions) for k, s in zip(keys, sizes)]
    for b in range(blocks):
        langs, ks = (a.tolist() for a in schedule.lookup_range(b * block, (b + 1) * block))
        drawn = [languages[i].sample(k) for i, k in zip(langs, ks)]
        at, _ = pref.arrange([d[0] for d in drawn], partitions, seed, b)
        got = slice(b * block, (b + 1) * block)
        assert plan.lang[got].tolist() == [langs[d] for d in at]
        assert plan.k[got].tolist() == [ks[d] for d in at]
        assert plan.owner[got].tolist() == [drawn[d][0] for d in at]
        assert plan.shard[got].tolist() == [drawn[d][1] for d in at]
        assert plan.index[got].tolist() == [drawn[d][2] for d in at]
        assert plan.epoch[got].tolist() == [drawn[d][3] for d in at]


@settings(max_examples=20, deadline=None)
@given(k=st.integers(1, 6), p_exp=st.integers(1, 5), width=st.integers(1, 8), seed=st.integers(0, 2**32),
       start=st.integers(0, 10**6))
def test_every_global_batch_keeps_the_schedules_composition(k, p_exp, width, seed, start):
    partitions = 2**p_exp
    block = partitions * width
    sizes = [[13 + 5 * i, 3] for i in range(k)]
    schedule, orders, _ = build(sizes, dirichlet_weights(k, seed % 1000), block, partitions, seed=seed)
    first = start // block
    plan = plan_range(schedule, orders, first * block, (first + 3) * block)
    for b in range(3):
        got = np.bincount(plan.lang[b * block:(b + 1) * block], minlength=k)
        assert got.tolist() == schedule.block_counts(first + b).tolist()
        # the same draws, only arranged: the multiset of (lang, k) is the schedule's
        langs, ks = schedule.lookup_range((first + b) * block, (first + b + 1) * block)
        assert sorted(zip(langs.tolist(), ks.tolist())) == sorted(
            zip(plan.lang[b * block:(b + 1) * block].tolist(), plan.k[b * block:(b + 1) * block].tolist()))


@settings(max_examples=15, deadline=None)
@given(sizes=corpora, p_exp=st.integers(1, 3), seed=st.integers(0, 2**32))
def test_no_sample_repeats_within_a_language_epoch_and_each_epoch_is_complete(sizes, p_exp, seed):
    partitions = 2**p_exp
    block = 4 * partitions
    schedule, orders, _ = build(sizes, dirichlet_weights(len(sizes), seed % 997), block, partitions, seed=seed)
    blocks = 1 + 3 * sum(map(sum, sizes)) // block
    plan = plan_range(schedule, orders, 0, blocks * block)
    drawn = Counter(zip(plan.lang.tolist(), plan.epoch.tolist(), plan.shard.tolist(), plan.index.tolist()))
    assert max(drawn.values()) == 1
    for i, s in enumerate(sizes):
        for sh, index in zip(plan.shard[plan.lang == i].tolist(), plan.index[plan.lang == i].tolist()):
            assert 0 <= index < s[sh]
        epochs = Counter(plan.epoch[plan.lang == i].tolist())
        for e, n in epochs.items():
            if e + 1 in epochs:  # a finished epoch visited every sample once
                assert n == sum(s)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 40), p_exp=st.integers(1, 6), width=st.integers(1, 16), seed=st.integers(0, 2**32),
       first=st.integers(0, 10**7))
def test_foreign_draws_are_the_minimum_and_within_the_proven_bound(k, p_exp, width, seed, first):
    partitions = 2**p_exp
    block = partitions * width
    sizes = [[50 + 7 * (i % 5)] * (1 + i % 3) for i in range(k)]
    schedule, orders, _ = build(sizes, dirichlet_weights(k, seed % 1000), block, partitions, seed=seed)
    lang, ks, owner, _, _, foreign = orders.arrange(schedule, first, first + 2)
    samples = [sum(s) for s in sizes]
    for b in range(3):
        got = slice(b * block, (b + 1) * block)
        slot = np.arange(block) // width
        assert int((owner[got] != slot).sum()) == foreign[b]
        counts = np.bincount(owner[got], minlength=partitions)
        assert foreign[b] == int(np.maximum(counts - width, 0).sum())
        assert foreign[b] <= pref.foreign_bound(lang[got].tolist(), ks[got].tolist(), samples, partitions) + 1e-9


def test_random_access_equals_a_slice_of_a_long_range():
    sizes = [[40, 40, 3], [9], [100] * 5, [2, 0, 5]]
    schedule, orders, _ = build(sizes, to_weights([5, 1, 8, 2]), 32, 8)
    whole = plan_range(schedule, orders, 0, 32 * 40)
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = int(rng.integers(0, 32 * 40))
        b = int(rng.integers(a, 32 * 40 + 1))
        part = plan_range(schedule, orders, a, b)
        for name in ("lang", "k", "shard", "index", "epoch", "owner"):
            assert getattr(part, name).tolist() == getattr(whole, name)[a:b].tolist()


def test_far_positions_cost_the_same_and_stay_exact():
    sizes = [[2000] * 30, [2000] * 3, [500]]
    schedule, orders, _ = build(sizes, to_weights([6, 3, 1]), 1024, 128, window=4)
    start = 10**12 // 1024 * 1024
    plan = plan_range(schedule, orders, start, start + 2048)
    assert np.bincount(plan.lang[:1024], minlength=3).tolist() == schedule.block_counts(start // 1024).tolist()
    assert (plan.index >= 0).all()


def test_a_stage_appended_later_changes_nothing_before_it():
    sizes = [[30, 30], [11], [70]]
    schedule, orders, _ = build(sizes, to_weights([1, 1, 1]), 16, 4)
    before = plan_range(schedule, orders, 0, 16 * 12)
    later, orders2, _ = build(sizes, to_weights([1, 1, 1]), 16, 4, stages=[(16 * 6, to_weights([5, 0, 1]))])
    after = plan_range(later, orders2, 0, 16 * 12)
    assert after.shard[:96].tolist() == before.shard[:96].tolist()
    assert after.lang[96:].tolist() != before.lang[96:].tolist()
    drawn = Counter(zip(after.lang.tolist(), after.epoch.tolist(), after.shard.tolist(), after.index.tolist()))
    assert max(drawn.values()) == 1  # k carries over the stage boundary: nothing repeats


def test_parts_tile_each_language_and_sizes_differ_by_at_most_one():
    parts = LanguageParts([1, 5, 128, 1000, 7], [0, 3, 7, 15, 2], 16)
    for i, n in enumerate([1, 5, 128, 1000, 7]):
        q = np.arange(17)
        offsets = parts.offsets(i, q)
        assert offsets[0] == 0 and offsets[-1] == n
        sizes = np.diff(offsets)
        assert sizes.min() >= n // 16 and sizes.max() <= -(-n // 16)
        qq, j, e = parts.deal(np.full(3 * n, i), np.arange(3 * n))
        assert sorted(zip(qq[:n].tolist(), j[:n].tolist())) == [(a, b) for a in range(16) for b in range(sizes[a])]
        assert (e == np.arange(3 * n) // n).all()


def test_a_block_not_divisible_by_partitions_is_an_error_naming_both():
    schedule, orders, _ = build([[10], [10]], to_weights([1, 1]), 12, 8)
    with pytest.raises(ScheduleError, match="12 is not divisible by partitions 8"):
        plan_range(schedule, orders, 0, 12)


def test_a_language_without_samples_cannot_be_drawn():
    schedule, orders, _ = build([[10], [0]], to_weights([1, 1]), 8, 2)
    with pytest.raises(ScheduleError, match="no training samples"):
        plan_range(schedule, orders, 0, 64)


def test_owned_samples_tile_every_shard_and_match_the_parts():
    sizes = [[40, 40, 3], [9], [100] * 5, [2, 0, 5]]
    _, orders, _ = build(sizes, to_weights([5, 1, 8, 2]), 32, 8)
    for i, s in enumerate(sizes):
        per_partition = np.stack([orders.owned_samples(i, q, q + 1) for q in range(8)])
        assert per_partition.sum(axis=0).tolist() == s  # every sample owned once
        assert orders.owned_samples(i, 0, 8).tolist() == s
        for q in range(8):
            pieces = orders.part_shards(i, q)
            assert {sh: n for sh, _, n in pieces} == {sh: int(n) for sh, n in enumerate(per_partition[q]) if n}


def test_at_most_two_nodes_read_a_shard_whole_and_the_rest_is_read_by_range():
    sizes = [[16] * 7, [16], [5, 16, 16, 3]]
    _, orders, _ = build(sizes, to_weights([5, 1, 8]), 32, 8)
    for nodes in (2, 4, 8):
        per = 8 // nodes
        for i, s in enumerate(sizes):
            whole = np.stack([orders.read_whole(i, n * per, (n + 1) * per) for n in range(nodes)])
            owned = np.stack([orders.owned_samples(i, n * per, (n + 1) * per) for n in range(nodes)])
            assert whole.sum(axis=0).max() <= 2
            read = np.where(whole, np.asarray(s)[None, :], owned).sum()  # bytes per epoch, in samples
            assert read <= 2 * sum(s)
