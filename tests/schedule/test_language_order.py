"""LanguageOrder: epochs are permutations, windows keep shard locality, random access in k."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from climbstream.errors import ScheduleError
from climbstream.schedule.order import LanguageOrder, language_key
import schedule_reference as ref

SIZES = [100, 0, 37, 250, 1, 80, 99, 3, 500, 64, 64]

shard_sizes = st.lists(st.integers(0, 60), min_size=1, max_size=15).filter(lambda xs: sum(xs) > 0)


def all_pairs(order: LanguageOrder, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    n = order.samples_per_epoch
    shard, index, epochs = order.locate(np.arange(epoch * n, (epoch + 1) * n))
    assert (epochs == epoch).all()
    return shard, index


@settings(max_examples=40, deadline=None)
@given(sizes=shard_sizes, window=st.integers(1, 6), seed=st.integers(0, 2**64 - 1), epoch=st.integers(0, 10**9))
def test_every_epoch_is_a_permutation_of_all_samples(sizes, window, seed, epoch):
    order = LanguageOrder(seed, language_key("sw"), sizes, window_shards=window)
    shard, index = all_pairs(order, epoch)
    drawn = sorted(zip(shard.tolist(), index.tolist()))
    assert drawn == [(s, i) for s, size in enumerate(sizes) for i in range(size)]


@settings(max_examples=20, deadline=None)
@given(sizes=shard_sizes, window=st.integers(1, 4), ks=st.lists(st.integers(0, 10**13), min_size=1, max_size=20))
def test_locate_equals_python_reference(sizes, window, ks):
    key = language_key("yo")
    order = LanguageOrder(42, key, sizes, window_shards=window)
    shard, index, epoch = order.locate(np.array(ks))
    assert list(zip(shard.tolist(), index.tolist(), epoch.tolist())) == [
        ref.locate(42, key, sizes, window, k) for k in ks
    ]


def test_draws_of_each_window_come_only_from_its_shards():
    order = LanguageOrder(1, language_key("fr"), SIZES, window_shards=3)
    for epoch in (0, 5):
        shard, _ = all_pairs(order, epoch)
        shuffled = order.shard_order(epoch)
        offset = 0
        for w in range(0, len(SIZES), 3):
            members = [int(s) for s in shuffled[w:w + 3]]
            size = sum(SIZES[s] for s in members)
            assert set(shard[offset:offset + size].tolist()) == {s for s in members if SIZES[s] > 0}
            offset += size
        assert offset == order.samples_per_epoch


def test_different_epochs_give_different_orders():
    order = LanguageOrder(1, language_key("fr"), SIZES, window_shards=2)
    orders = [tuple(zip(*map(np.ndarray.tolist, all_pairs(order, e)))) for e in range(4)]
    assert len(set(orders)) == 4
    assert len({tuple(order.shard_order(e)) for e in range(4)}) > 1


def test_different_languages_and_seeds_give_different_orders():
    a = LanguageOrder(1, language_key("fr"), SIZES)
    b = LanguageOrder(1, language_key("de"), SIZES)
    c = LanguageOrder(2, language_key("fr"), SIZES)
    ks = np.arange(500)
    pairs = [tuple(o.locate(ks)[1].tolist()) for o in (a, b, c)]
    assert len(set(pairs)) == 3


def test_k_ten_to_the_twelve_starts_a_full_epoch_permutation():
    order = LanguageOrder(3, language_key("zu"), SIZES, window_shards=4)
    n = order.samples_per_epoch
    first = (10**12 // n) * n
    shard, index, epoch = order.locate(np.arange(first, first + n))
    assert (epoch == 10**12 // n).all()
    assert len(set(zip(shard.tolist(), index.tolist()))) == n
    single = [order.locate(np.array([k])) for k in (first, first + n - 1)]
    assert [(int(s[0]), int(i[0])) for s, i, _ in single] == [(shard[0], index[0]), (shard[-1], index[-1])]


def test_locate_handles_draws_spanning_many_epochs_in_any_order():
    order = LanguageOrder(3, language_key("zu"), SIZES, window_shards=4)
    rng = np.random.default_rng(0)
    ks = rng.integers(0, 50 * order.samples_per_epoch, size=300)
    shard, index, epoch = order.locate(ks)
    one_by_one = [order.locate(np.array([k])) for k in ks]
    assert shard.tolist() == [int(s[0]) for s, _, _ in one_by_one]
    assert index.tolist() == [int(i[0]) for _, i, _ in one_by_one]
    assert epoch.tolist() == (ks // order.samples_per_epoch).tolist()


def test_language_key_is_stable_and_name_based():
    # Pinned: the key seeds every saved run's per-language order.
    assert language_key("fr") == 0xBDD4732595D4218A
    assert language_key("fr") != language_key("de")
    assert 0 <= language_key("ñandú") < 2**64
    with pytest.raises(ScheduleError, match="language name ''"):
        language_key("")


@pytest.mark.parametrize(
    "sizes, window, message",
    [
        ([], 4, "shard_samples must be a non-empty list"),
        ([3, -1], 4, "shard 1 has -1 samples; counts must be >= 0"),
        ([0, 0], 4, "all 2 shards are empty"),
        ([1.5, 2], 4, "integer sample counts"),
        ([3, 4], 0, "window_shards 0: must be a positive integer"),
    ],
)
def test_bad_orders_are_rejected_with_what_to_do(sizes, window, message):
    with pytest.raises(ScheduleError) as info:
        LanguageOrder(0, language_key("fr"), sizes, window_shards=window)
    assert message in str(info.value)


def test_negative_or_fractional_draws_are_rejected():
    order = LanguageOrder(0, language_key("fr"), [5])
    with pytest.raises(ScheduleError, match="draw k = -3 is negative"):
        order.locate(np.array([1, -3]))
    with pytest.raises(ScheduleError, match="draws k must be integers"):
        order.locate(np.array([0.5]))
