"""Every position exactly once, in global-batch order, for any number of workers."""

from __future__ import annotations

import numpy as np
import pytest

from climbstream import ClimbStream

from tests.corpora import WEIGHTS
from .helpers import by_position, read_batches

B = 16
N_BATCHES = 12


@pytest.fixture(scope="module")
def reference(mds_corpus):
    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1)
    return by_position(read_batches(stream, N_BATCHES))


@pytest.mark.parametrize("num_workers", [0, 1, 2, 3])
def test_each_worker_count_yields_every_position_once_in_order(mds_corpus, reference, num_workers):
    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1)
    batches = read_batches(stream, N_BATCHES, num_workers=num_workers)
    for b, batch in enumerate(batches):
        assert batch["positions"] == list(range(b * B, (b + 1) * B))
    assert by_position(batches) == reference
    assert stream.position == N_BATCHES * B


def test_spawned_persistent_workers_continue_after_mark_consumed(mds_corpus, reference):
    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1)
    loader = stream.dataloader(num_workers=2, persistent_workers=True, multiprocessing_context="spawn")
    seen = []
    for _ in range(2):  # two iterators over the same persistent workers
        it = iter(loader)
        for _ in range(N_BATCHES // 2):
            batch = next(it)
            seen.extend(batch["position"].tolist())
            stream.mark_consumed(batch)
        del it
    assert seen == list(range(N_BATCHES * B))


def test_wds_and_mds_corpora_give_the_same_stream(mds_corpus, wds_corpus):
    a = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=1, rank=0, world_size=1)
    b = ClimbStream(wds_corpus, WEIGHTS, global_batch=B, seed=1, rank=0, world_size=1)
    ka = [k[:1] + k[2:] for k in by_position(read_batches(a, 4)).values()]
    kb = [k[:1] + k[2:] for k in by_position(read_batches(b, 4)).values()]
    assert ka == kb


def test_batch_composition_stays_within_the_schedule_bound(mds_corpus):
    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=0, rank=0, world_size=1)
    names = stream.languages
    w = np.array([WEIGHTS[n] for n in names])
    counts = np.zeros(len(names))
    for b in range(40):
        plan = stream.plan(b * B, (b + 1) * B)
        counts += np.bincount(plan.lang, minlength=len(names))
        assert np.max(np.abs(counts - w * (b + 1) * B)) < stream.schedule.bound


def test_small_language_is_upsampled_without_repeats_inside_an_epoch(mds_corpus):
    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=0, rank=0, world_size=1)
    dd = stream.languages.index("dd")
    per_epoch = stream.samples_per_epoch()["dd"]
    plan = stream.plan(0, B * 60)
    mask = plan.lang == dd
    assert int(plan.epoch[mask].max()) >= 1, "the tiny language should wrap into a second epoch"
    for epoch in np.unique(plan.epoch[mask]):
        m = mask & (plan.epoch == epoch)
        pairs = set(zip(plan.shard[m].tolist(), plan.index[m].tolist()))
        assert len(pairs) == int(m.sum()), "a sample repeated inside one epoch"
        if int(m.sum()) == per_epoch:
            assert len(pairs) == per_epoch
    assert plan.k[mask].tolist() == list(range(int(mask.sum())))


def test_loader_counters_are_exposed(mds_corpus):
    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=0, rank=0, world_size=1)
    read_batches(stream, 3, num_workers=0)
    m = stream.metrics()
    assert m["samples"] == 3 * B
    read_batches(stream, 3, num_workers=2)
    m = stream.metrics()
    assert m["samples"] >= 6 * B and m["samples"] % B == 0
    assert set(m) >= {"wait_s", "cache_hit_rate", "bytes_downloaded"}
    assert m["wait_s"] >= 0 and 0 <= m["cache_hit_rate"] <= 1
