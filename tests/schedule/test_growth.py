"""GrownOrder: appended shards mid-epoch, each sample once per epoch, draws before the change unchanged."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from climbstream.errors import ScheduleError
from climbstream.schedule.growth import GrownOrder, Version
from climbstream.schedule.order import LanguageOrder, language_key

KEY = language_key("fr")
shard_lists = st.lists(st.integers(0, 40), min_size=1, max_size=8)


def pairs(order, start: int, stop: int) -> list[tuple[int, int]]:
    shard, index, _ = order.locate(np.arange(start, stop))
    return list(zip(shard.tolist(), index.tolist()))


def samples_of(sizes) -> list[tuple[int, int]]:
    return [(s, i) for s, n in enumerate(sizes) for i in range(n)]


def test_one_version_is_the_language_order_bit_for_bit():
    sizes = [30, 0, 17, 41]
    grown = GrownOrder(5, KEY, sizes, [Version(0, 4, 88)], window_shards=2)
    plain = LanguageOrder(5, KEY, sizes, window_shards=2)
    ks = np.arange(0, 400)
    for a, b in zip(grown.locate(ks), plain.locate(ks)):
        assert a.tolist() == b.tolist()
    assert grown.draws_within_epochs(1.5) == int(np.floor(1.5 * 88))


@settings(max_examples=60, deadline=None)
@given(old=shard_lists.filter(lambda xs: sum(xs) > 0), new=shard_lists, frac=st.floats(0, 2.99),
       window=st.integers(1, 3), seed=st.integers(0, 2**32))
def test_appended_shards_mid_epoch_are_each_drawn_once_with_the_unseen_old_ones(old, new, frac, window, seed):
    sizes = old + new
    n_old, n_new = sum(old), sum(sizes)
    c = int(frac * n_old)
    grown = GrownOrder(seed, KEY, sizes, [Version(0, len(old), n_old), Version(c, len(sizes), n_new)], window)
    before = LanguageOrder(seed, KEY, old, window)
    # draws before the change are the old order's, unchanged
    assert pairs(grown, 0, c) == pairs(before, 0, c)
    epoch, start, length = grown.epoch_at(c)
    assert (epoch, start) == (c // n_old, (c // n_old) * n_old)
    assert length == n_new  # inside an epoch: it grows by what was appended; at its start: a grown epoch
    # the epoch holding the change: its consumed prefix, then the unseen old and all the new, each once
    assert sorted(pairs(grown, start, start + length)) == samples_of(sizes)
    # the next two epochs cover the whole grown set, each once
    for j in range(2):
        assert sorted(pairs(grown, start + length + j * n_new, start + length + (j + 1) * n_new)) == \
            samples_of(sizes)
        assert grown.epoch_at(start + length + j * n_new)[0] == epoch + 1 + j


def test_appended_samples_are_spread_evenly_over_the_rest_of_the_epoch():
    old, new = [32] * 28, [32] * 29
    sizes = old + new
    c = 240
    grown = GrownOrder(0, KEY, sizes, [Version(0, 28, 896), Version(c, 57, 1824)])
    shard, _, _ = grown.locate(np.arange(c, 896 + 928))
    is_new = shard >= 28
    total, appended = is_new.size, int(is_new.sum())
    assert appended == 928
    for t in (100, 500, 1000, total):
        assert int(is_new[:t].sum()) == (t * appended) // total


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 30), min_size=3, max_size=9), cuts=st.lists(st.floats(0, 1), min_size=2,
       max_size=2), seed=st.integers(0, 2**32))
def test_two_changes_inside_one_epoch_still_draw_each_sample_once(sizes, cuts, seed):
    m0 = max(1, len(sizes) // 3)
    m1 = max(m0, 2 * len(sizes) // 3)
    n0, n1, n2 = sum(sizes[:m0]), sum(sizes[:m1]), sum(sizes)
    c1 = int(cuts[0] * (n0 - 1))
    c2 = c1 + int(cuts[1] * (n1 - c1 - 1))
    versions = [Version(0, m0, n0), Version(c1, m1, n1), Version(c2, len(sizes), n2)]
    grown = GrownOrder(seed, KEY, sizes, versions, window_shards=2)
    one_change = GrownOrder(seed, KEY, sizes, versions[:2], window_shards=2)
    assert pairs(grown, 0, c2) == pairs(one_change, 0, c2)
    epoch, start, length = grown.epoch_at(c2)
    assert (start, length) == (0, n2)
    assert sorted(pairs(grown, start, start + length)) == samples_of(sizes)


def test_epoch_caps_count_epochs_across_the_change():
    sizes = [10, 10, 10, 10]
    grown = GrownOrder(1, KEY, sizes, [Version(0, 2, 20), Version(25, 4, 40)])
    # epoch 0: [0, 20); epoch 1 grows to 20 + 20 = 40 draws: [20, 60); then 40 a piece
    assert grown.epoch_at(25) == (1, 20, 40)
    assert grown.draws_within_epochs(1) == 20
    assert grown.draws_within_epochs(2) == 60
    assert grown.draws_within_epochs(2.5) == 80
    assert grown.draws_within_epochs(3) == 100


def test_a_restarted_language_begins_fresh_epochs_and_refuses_draws_before_the_change():
    sizes = [7, 9]  # the current shards: the old ones (12 samples) were rewritten
    grown = GrownOrder(3, KEY, sizes, [Version(0, 2, 12), Version(30, 2, 16, restart=True)])
    assert sorted(pairs(grown, 30, 46)) == samples_of(sizes)
    assert grown.epoch_at(30) == (3, 30, 16)  # draw 30 was inside epoch 2 [24, 36): the next epoch starts fresh
    with pytest.raises(ScheduleError, match="no longer in the corpus"):
        grown.locate([29])


def test_a_retired_language_cannot_be_drawn_after_the_change():
    grown = GrownOrder(3, KEY, [], [Version(0, 0, 0), Version(0, 0, 0, restart=True)])
    with pytest.raises(ScheduleError, match="weight 0"):
        grown.locate([0])


def test_an_added_language_starts_its_first_epoch_at_the_change():
    sizes = [5, 6]
    grown = GrownOrder(3, KEY, sizes, [Version(0, 0, 0), Version(0, 2, 11)])
    assert sorted(pairs(grown, 0, 11)) == samples_of(sizes)
    assert sorted(pairs(grown, 11, 22)) == samples_of(sizes)


def test_a_version_that_is_not_a_prefix_of_the_current_shards_is_refused():
    with pytest.raises(ScheduleError, match="not a prefix"):
        GrownOrder(3, KEY, [5, 6], [Version(0, 2, 12), Version(4, 3, 20)])


def test_reads_stay_window_local_across_the_change():
    sizes = [16] * 20
    grown = GrownOrder(9, KEY, sizes, [Version(0, 10, 160), Version(70, 20, 320)], window_shards=2)
    shard, _, _ = grown.locate(np.arange(0, 160 + 160 + 320))
    # any 16 consecutive draws touch at most two windows (4 shards) of the old shards and two of the new
    for t in range(0, shard.size - 16, 4):
        run = shard[t:t + 16]
        assert len(set(run[run < 10].tolist())) <= 4 and len(set(run[run >= 10].tolist())) <= 4
    assert len(Counter(shard[160:170].tolist())) >= 2


def test_under_partitions_appended_shards_get_owners_and_each_sample_is_drawn_once():
    from climbstream.schedule.partitioned import PartitionedOrders
    from climbstream.schedule.schedule import Schedule
    from climbstream.schedule.weights import integer_weights

    P, B, seed, change = 4, 16, 11, 96
    old, grown = [24] * 6, [24] * 6 + [20] * 5
    other = [30] * 4
    keys = [language_key("aa"), language_key("bb")]
    w = integer_weights({"aa": 0.6, "bb": 0.4})
    weights = [w["aa"], w["bb"]]
    schedule = Schedule(2, B, seed, [])
    schedule.add_stage(0, weights)
    schedule.add_stage(change, weights)
    c = int(schedule.counts_at(change)[0])
    versions = [Version(0, 6, sum(old)), Version(c, 11, sum(grown))]
    before = PartitionedOrders([LanguageOrder(seed, keys[0], old, 2), LanguageOrder(seed, keys[1], other, 2)],
                               [old, other], keys, seed, 2, P)
    after = PartitionedOrders([GrownOrder(seed, keys[0], grown, versions, 2), LanguageOrder(seed, keys[1], other, 2)],
                              [grown, other], keys, seed, 2, P)
    a, b = before.plan_arrays(schedule, 0, change), after.plan_arrays(schedule, 0, change)
    for x, y in zip(a, b):  # positions before the change: unchanged, owners included
        assert x.tolist() == y.tolist()
    lang, k, shard, index, epoch, owner = after.plan_arrays(schedule, 0, 1200)
    first_epoch = (lang == 0) & (k < sum(grown))
    assert sorted(zip(shard[first_epoch].tolist(), index[first_epoch].tolist())) == samples_of(grown)
    assert (epoch[first_epoch] == 0).all()
    assert (epoch[(lang == 0) & (k >= sum(grown)) & (k < 2 * sum(grown))] == 1).all()
    other_epoch = (lang == 1) & (k < sum(other))
    assert sorted(zip(shard[other_epoch].tolist(), index[other_epoch].tolist())) == samples_of(other)
    # each partition owns about 1/P of the appended samples, and its draws of them come from what it owns
    appended = (lang == 0) & (shard >= 6) & (k < sum(grown))
    per_partition = np.bincount(owner[appended], minlength=P)
    assert per_partition.max() - per_partition.min() <= 1
    for q in range(P):
        pieces = {s for s, _, _ in after.part_shards(0, q) if s >= 6}
        assert set(shard[appended & (owner == q)].tolist()) <= pieces
