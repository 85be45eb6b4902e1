"""Every position exactly once, in global-batch order, for any number of workers."""

from __future__ import annotations

import numpy as np
import pytest

from climbstream import ClimbStream

from tests.corpora import WEIGHTS
from .helpers import by_position, describe_batch, read_batches

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


def test_spawned_persistent_workers_follow_the_loader_across_add_stage(mds_corpus):
    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1)
    reference = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=3, rank=0, world_size=1)
    loader = stream.dataloader(num_workers=2, persistent_workers=True, multiprocessing_context="spawn")
    new = {"aa": 0.1, "bb": 0.1, "cc": 0.1, "dd": 0.7}
    seen = []
    for round_ in range(2):  # two iterators over the same persistent workers, no mark_consumed
        it = iter(loader)
        for _ in range(N_BATCHES // 2):
            seen.append(describe_batch(next(it)))
        del it
        if round_ == 0:
            assert stream.add_stage(new) == N_BATCHES // 2 * B
            reference.add_stage(new, position=N_BATCHES // 2 * B)
    assert [p for b in seen for p in b["positions"]] == list(range(N_BATCHES * B))
    assert by_position(seen) == by_position(read_batches(reference, N_BATCHES))


DROPPED_SPAWN_ITERATORS = r"""
import sys
from climbstream import ClimbStream
from tests.corpora import WEIGHTS
if __name__ == "__main__":
    stream = ClimbStream(sys.argv[1], WEIGHTS, global_batch=16, seed=3, rank=0, world_size=1)
    loader = stream.dataloader(num_workers=2, multiprocessing_context="spawn")
    for _ in range(20):
        it = iter(loader)
        next(it)
        next(it)
        del it  # unfinished: its workers are shut down while they prefetch
    print(stream.position)
"""


def test_dropping_unfinished_spawn_iterators_twenty_times_kills_no_worker(mds_corpus, tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "drop.py"
    script.write_text(DROPPED_SPAWN_ITERATORS)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, str(script), mds_corpus], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": root})
    assert "terminate called" not in proc.stderr and "killed by signal" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.split()[-1]) == 40 * B  # and each new iterator went on where the last one stopped


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
    every_sample = {(s, i) for s, shard in enumerate(stream.corpus.manifest_of("dd").shards("dd", "train"))
                    for i in range(int(shard.samples))}
    plan = stream.plan(0, B * 60)
    mask = plan.lang == dd
    assert int(plan.epoch[mask].max()) >= 1, "the tiny language should wrap into a second epoch"
    for epoch in np.unique(plan.epoch[mask]):
        m = mask & (plan.epoch == epoch)
        pairs = set(zip(plan.shard[m].tolist(), plan.index[m].tolist()))
        assert len(pairs) == int(m.sum()), "a sample repeated inside one epoch"
        if int(m.sum()) == per_epoch:  # a whole epoch visits every sample of the language
            assert pairs == every_sample
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
