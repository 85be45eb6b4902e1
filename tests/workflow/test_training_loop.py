"""The training loop end to end: re-solves append exact stages; kill + resume changes nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from climbstream.train.loop import TrainConfig, train
from climbstream.formats.loss_log import LossLog

LOADER_FIELDS = {"wait_s", "cache_hit_rate", "bytes_downloaded", "samples"}


def run_config(corpus, out_dir, **overrides):
    base = dict(corpus=corpus, out_dir=str(out_dir), weights={"method": "temperature", "alpha": 0.3}, steps=36,
                global_batch=8, d_model=32, n_layers=1, n_heads=2, flush_every=3, checkpoint_every=12,
                resolve_every=12, heldout_every=3, heldout_samples=4,
                reweight={"guard_threshold": 10.0, "min_points": 4})
    base.update(overrides)
    return TrainConfig(**base)


def comparable(records):
    """Loss-log records without the loader's timing counters (they differ run to run)."""
    return [{k: v for k, v in r.items() if k not in LOADER_FIELDS} for r in records]


@pytest.fixture(scope="module")
def uninterrupted(mds_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    summary = train(run_config(mds_corpus, out))
    return summary, LossLog.read(out).records


def test_resolve_appends_a_stage_and_the_stream_follows_it_exactly(mds_corpus, uninterrupted, tmp_path):
    summary, _ = uninterrupted
    resolved = [d for d in summary["resolves"] if d["verdict"] == "resolved"]
    assert resolved, f"no re-solve happened: {summary['resolves']}"
    stages = summary["stages"]
    assert [s["start"] for s in stages[1:]] == [d["stage_start"] for d in resolved]
    # the stream under these stages: per-batch counts follow each stage within the bound
    from climbstream import ClimbStream

    stream = ClimbStream(mds_corpus, {"aa": 1, "bb": 1, "cc": 1, "dd": 1}, global_batch=8, rank=0, world_size=1)
    state = stream.state_dict()
    stream.load_state_dict({**state, "stages": stages, "position": 0}, allow_manifest_change=False)
    sched = stream.schedule
    names = stream.languages
    for stage, nxt in zip(stages, stages[1:] + [None]):
        start, stop = stage["start"], (nxt["start"] if nxt else 36 * 8)
        w = np.array([stage["weights"][n] for n in names], dtype=np.float64) / 2**32
        base = sched.counts_at(start)
        for p in range(start, stop + 1, 8):
            assert np.max(np.abs(sched.counts_at(p) - base - w * (p - start))) < sched.bound
    # the new weights are what the decision said (damped solve, as integers)
    for d, stage in zip(resolved, stages[1:]):
        total = sum(stage["weights"].values())
        for n in names:
            assert stage["weights"][n] / total == pytest.approx(d["new"][n], abs=1e-8)


def test_killed_run_resumed_from_its_checkpoint_logs_the_same(mds_corpus, uninterrupted, tmp_path):
    summary, records = uninterrupted
    crashed = run_config(mds_corpus, tmp_path, stop_after_steps=19)  # dies between checkpoints 12 and 24
    assert train(crashed) == {"stopped_at": 19}
    resumed = train(run_config(mds_corpus, tmp_path))
    assert resumed["stages"] == summary["stages"]
    assert [d["verdict"] for d in resumed["resolves"]] == [d["verdict"] for d in summary["resolves"]]
    assert comparable(LossLog.read(tmp_path).records) == comparable(records)
    assert json.loads(json.dumps(resumed["tokens_per_language"])) == summary["tokens_per_language"]


def test_a_run_that_ends_between_flushes_logs_its_last_interval(mds_corpus, tmp_path):
    summary = train(TrainConfig(corpus=mds_corpus, out_dir=str(tmp_path), weights="uniform", steps=13,
                                global_batch=4, flush_every=5, checkpoint_every=13, heldout_every=None))
    records = [r for r in LossLog.read(str(tmp_path / "losses.jsonl")).records if r.get("kind") == "language"]
    assert sorted({r["step"] for r in records}) == [5, 10, 13]
    assert sum(summary["tokens_per_language"].values()) == 13 * 4 * 31  # every step, seq_len - 1 targets each
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 13
