"""Two real gloo processes: emitted means are global, identical on both ranks, rank 0 writes."""

from __future__ import annotations

import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.train.tracker_data import LANGUAGES, random_batches, reference, reference_means

STEPS, FLUSH_EVERY, BATCH = 6, 3, 4


def _rank_batches(rank: int):
    # rank 1 never sees 'fi' (id 2), rank 0 never sees 'sw' (id 4)
    return random_batches(seed=100 + rank, steps=STEPS, batch=BATCH, absent=(4,) if rank == 0 else (2,))


def _worker(rank: int, world: int, tmp: str) -> None:
    from climbstream.train.losses import LanguageLossTracker
    from climbstream.train.sinks import CallbackSink, JsonlSink

    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world)
    try:
        seen = []
        tracker = LanguageLossTracker(LANGUAGES, flush_every=FLUSH_EVERY,
                                      sinks=[JsonlSink(f"{tmp}/rank{rank}/losses.jsonl"), CallbackSink(seen.extend)])
        for step, (loss, lang, mask) in enumerate(_rank_batches(rank)):
            tracker.update(loss, lang, mask=mask)
            # each rank reports the end of its own slice of the global batch
            tracker.step(step, step * BATCH * world + (rank + 1) * BATCH, stage=0)
        scores = tracker.score_heldout(lambda tokens: tokens.float(),
                                       {"de": [torch.full((3,), float(rank + 1))] * 2}, max_samples=2)
        tracker.close()
        with open(f"{tmp}/history{rank}.json", "w") as handle:
            json.dump({"history": tracker.history, "callback": seen, "scores": scores,
                       "state": tracker.state_dict()}, handle)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def gloo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gloo")
    mp.spawn(_worker, args=(2, str(tmp)), nprocs=2, join=True)
    results = [json.loads((tmp / f"history{rank}.json").read_text()) for rank in range(2)]
    return tmp, results


@pytest.mark.slow
def test_two_rank_means_equal_direct_computation_over_both_ranks(gloo_run):
    _, results = gloo_run
    history = results[0]["history"]
    for flush in range(STEPS // FLUSH_EVERY):
        part = slice(flush * FLUSH_EVERY, (flush + 1) * FLUSH_EVERY)
        both = _rank_batches(0)[part] + _rank_batches(1)[part]
        expected, direct = reference_means(both, masked=True), reference(both, masked=True)
        step = (flush + 1) * FLUSH_EVERY - 1
        got = {r["lang"]: r for r in history if r["kind"] == "language" and r["step"] == step}
        for name in LANGUAGES:
            assert got[name]["tokens_interval"] == direct[name][1]
            assert got[name]["samples_interval"] == direct[name][2]
            assert got[name]["loss_mean"] == pytest.approx(expected[name], rel=1e-9)
            assert got[name]["position"] == (step + 1) * BATCH * 2  # the largest over ranks
    assert results[0]["scores"] == {"de": pytest.approx(1.5)}  # rank 1 scores 2s, rank 0 scores 1s


@pytest.mark.slow
def test_two_rank_histories_are_identical_and_reach_callbacks_on_every_rank(gloo_run):
    _, results = gloo_run
    assert results[0]["history"] == results[1]["history"]
    assert results[0]["callback"] == results[0]["history"] == results[1]["callback"]
    assert results[0]["state"]["tokens_total"] == results[1]["state"]["tokens_total"]
    assert [r["state"]["pending"]["rank"] for r in results] == [0, 1]


@pytest.mark.slow
def test_only_rank_zero_writes_the_loss_log(gloo_run):
    tmp, results = gloo_run
    assert not (tmp / "rank1").exists()
    lines = [json.loads(line) for line in (tmp / "rank0" / "losses.jsonl").read_text().splitlines()]
    assert lines == results[0]["history"]
