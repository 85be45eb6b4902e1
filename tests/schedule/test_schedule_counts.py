"""Block-exact counts: the tree counts, the proven bound and per-block compositions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from climbstream.schedule.schedule import Schedule
from climbstream.schedule.tree import build_tree
from schedule_helpers import TOTAL, dirichlet_weights, skewed_weights, to_weights
import schedule_reference as ref

raw_weights = st.lists(st.integers(0, 2**40), min_size=1, max_size=40).filter(lambda xs: sum(xs) > 0)


def boundary_deviation(schedule: Schedule, weights: np.ndarray, num_blocks: int) -> np.ndarray:
    """|count_i(p) - w_i p / 2**32| at every boundary p = B..num_blocks*B, from generated positions."""
    b = schedule.block_size
    langs, _ = schedule.lookup_range(0, num_blocks * b)
    per_block = np.zeros((num_blocks, schedule.num_languages), dtype=np.int64)
    np.add.at(per_block, (np.repeat(np.arange(num_blocks), b), langs), 1)
    counts = np.cumsum(per_block, axis=0)
    p = np.arange(1, num_blocks + 1, dtype=np.int64)[:, None] * b
    # Exact in integers: count * 2**32 - w * p, compared with 2 * 2**32 by the caller.
    return np.abs(counts.astype(object) * TOTAL - weights.astype(object)[None, :] * p.astype(object))


@settings(max_examples=60, deadline=None)
@given(raw=raw_weights, q_blocks=st.integers(0, 10**12), block_size=st.integers(1, 5000))
def test_counts_at_block_boundaries_equal_python_reference(raw, q_blocks, block_size):
    weights = to_weights(raw)
    schedule = Schedule(len(raw), block_size, seed=3, stages=[])
    schedule.add_stage(0, weights)
    p = q_blocks * block_size
    assert schedule.counts_at(p).tolist() == ref.tree_counts([int(w) for w in weights], p)


@settings(max_examples=60, deadline=None)
@given(raw=raw_weights, q_blocks=st.integers(0, 10**13))
def test_error_bound_holds_for_any_weights_at_any_boundary(raw, q_blocks):
    weights = to_weights(raw)
    schedule = Schedule(len(raw), 64, seed=0)
    schedule.add_stage(0, weights)
    p = q_blocks * 64
    counts = schedule.counts_at(p)
    errors = [abs(int(c) * TOTAL - int(w) * p) for c, w in zip(counts, weights)]
    assert max(errors) < schedule.bound * TOTAL
    assert max(errors) <= schedule.stage_bound(0) * TOTAL * (1 + 1e-12)
    assert sum(int(c) for c in counts) == p


@pytest.mark.parametrize(
    "name, weights",
    [
        ("dirichlet K=10", dirichlet_weights(10, 1)),
        ("dirichlet K=100", dirichlet_weights(100, 2)),
        ("dirichlet K=1000", dirichlet_weights(1000, 3)),
        ("skewed K=500", skewed_weights(500)),
        ("halving K=40", to_weights([2 ** (40 - i) for i in range(40)])),
        ("one dominant K=300", to_weights([10**9] + [1] * 299)),
    ],
)
def test_measured_deviation_below_two_at_every_block_boundary(name, weights):
    schedule = Schedule(weights.size, 4096, seed=11)
    schedule.add_stage(0, weights)
    deviation = boundary_deviation(schedule, weights, num_blocks=300)
    assert deviation.max() < 2 * TOTAL, name
    assert schedule.stage_bound(0) < 2.0


@settings(max_examples=40, deadline=None)
@given(raw=raw_weights, block_size=st.integers(1, 300), first_block=st.integers(0, 10**9))
def test_block_compositions_are_nonnegative_and_sum_to_block_size(raw, block_size, first_block):
    weights = to_weights(raw)
    schedule = Schedule(len(raw), block_size, seed=5)
    schedule.add_stage(0, weights)
    start = first_block * block_size
    langs, _ = schedule.lookup_range(start, start + 6 * block_size)
    for b in range(6):
        composition = schedule.block_counts(first_block + b)
        assert composition.min() >= 0
        assert composition.sum() == block_size
        in_block = langs[b * block_size:(b + 1) * block_size]
        assert np.bincount(in_block, minlength=len(raw)).tolist() == composition.tolist()


def test_zero_weight_language_gets_no_positions():
    weights = to_weights([3, 0, 5, 0, 1])
    schedule = Schedule(5, 97, seed=1)
    schedule.add_stage(0, weights)
    langs, _ = schedule.lookup_range(0, 97 * 50)
    assert set(np.unique(langs).tolist()) == {0, 2, 4}
    assert schedule.counts_at(10**12)[[1, 3]].tolist() == [0, 0]


def test_single_language_stage_takes_every_position():
    schedule = Schedule(3, 8, seed=1)
    schedule.add_stage(0, to_weights([0, 1, 0]))
    langs, ks = schedule.lookup_range(40, 56)
    assert langs.tolist() == [1] * 16
    assert ks.tolist() == list(range(40, 56))


def test_huffman_grandparent_weighs_at_least_twice_its_grandchild():
    tree = build_tree(dirichlet_weights(200, 9))
    parent = {}
    for v in range(tree.num_nodes):
        if tree.left[v] >= 0:
            parent[int(tree.left[v])] = v
            parent[int(tree.right[v])] = v
    checked = 0
    for v, p in parent.items():
        if p in parent:
            assert int(tree.weight[parent[p]]) >= 2 * int(tree.weight[v])
            checked += 1
    assert checked > 100
