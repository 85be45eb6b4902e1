"""Exact resume: other worker counts, other world sizes, new stages, killed workers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from climbstream import ClimbStream
from climbstream.errors import StateError
from climbstream.formats.manifest import to_json

from tests.corpora import WEIGHTS
from .helpers import by_position, read_batches, stream_of

B = 16


@pytest.fixture(scope="module")
def uninterrupted(mds_corpus):
    return by_position(read_batches(stream_of(mds_corpus), 20))


def test_resume_with_other_workers_and_world_size_continues_the_stream(mds_corpus, uninterrupted):
    first = stream_of(mds_corpus)
    part1 = read_batches(first, 7, num_workers=2)
    state = json.loads(json.dumps(first.state_dict()))
    assert state["position"] == 7 * B
    # the rest, read by two data-parallel ranks with three and one workers
    rest = []
    for rank, workers in ((0, 3), (1, 1)):
        s = stream_of(mds_corpus, rank=rank, world_size=2)
        s.load_state_dict(state)
        rest.extend(read_batches(s, 13, num_workers=workers))
    assert by_position(part1 + rest) == uninterrupted


def test_rank_zero_style_position_rounds_up_to_the_global_batch(mds_corpus):
    s = stream_of(mds_corpus, rank=0, world_size=2)
    state = s.state_dict()
    state["position"] = 3 * B + B // 2  # rank 0 of 2 recorded its largest position + 1
    s.load_state_dict(state)
    assert s.position == 4 * B


def test_stage_added_mid_stream_follows_new_weights_without_repeat_or_skip(mds_corpus):
    s = stream_of(mds_corpus)
    read_batches(s, 5)
    new = {"aa": 0.1, "bb": 0.1, "cc": 0.1, "dd": 0.7}
    start = s.add_stage(new)
    assert start == 5 * B
    after = read_batches(s, 10)
    assert after[0]["positions"][0] == start
    names = s.languages
    plan = s.plan(0, 15 * B)
    # k continues per language across the boundary: 0, 1, 2, ... with no gap
    for li in range(len(names)):
        assert plan.k[plan.lang == li].tolist() == list(range(int((plan.lang == li).sum())))
    # composition after the stage follows the new weights within the bound
    sched = s.schedule
    w = np.array([new[n] for n in names])
    base = sched.counts_at(start)
    for b in range(6, 16):
        dev = sched.counts_at(b * B) - base - w * (b * B - start)
        assert np.max(np.abs(dev)) < sched.bound
    # the stages survive a save/load and reproduce the same stream
    t = stream_of(mds_corpus)
    t.load_state_dict(s.state_dict())
    assert t.stages() == s.stages()
    assert np.array_equal(t.plan(0, 15 * B).k, plan.k)


def test_stage_cannot_start_before_the_consumed_position(mds_corpus):
    s = stream_of(mds_corpus)
    read_batches(s, 3)
    from climbstream.errors import ScheduleError

    with pytest.raises(ScheduleError, match="before the consumed position 48"):
        s.add_stage(WEIGHTS, position=B)


def test_a_stale_iterator_refuses_to_continue_after_add_stage(mds_corpus):
    s = stream_of(mds_corpus)
    it = iter(s.dataloader(num_workers=0))
    s.mark_consumed(next(it))
    s.add_stage({"aa": 0.7, "bb": 0.1, "cc": 0.1, "dd": 0.1})
    with pytest.raises(StateError, match="recreate the DataLoader iterator"):
        next(it)
    fresh = next(iter(s.dataloader(num_workers=0)))
    assert fresh["position"].tolist() == list(range(B, 2 * B))


def test_changed_manifest_is_refused_unless_allowed(mds_corpus, tmp_path):
    s = stream_of(mds_corpus)
    read_batches(s, 2)
    state = s.state_dict()
    changed = tmp_path / "changed"
    shutil.copytree(mds_corpus, changed)
    manifest = changed / "climbstream-manifest.json"
    data = json.loads(manifest.read_text())
    aa = data["languages"]["aa"]
    dropped = aa["train"].pop()  # the corpus lost its last shard of "aa"
    aa["samples"] -= dropped["samples"]
    aa["tokens"] -= dropped["tokens"]
    manifest.write_text(to_json(data))  # as 'climbstream manifest' would rewrite it
    t = stream_of(str(changed))
    with pytest.raises(StateError, match="corpus changed"):
        t.load_state_dict(state)
    t.load_state_dict(state, allow_manifest_change=True)
    assert t.position == 2 * B
    assert [st["start"] for st in t.stages()] == [0, 2 * B]


def test_unknown_state_version_is_refused_naming_both_versions(mds_corpus):
    s = stream_of(mds_corpus)
    state = s.state_dict()
    state["version"] = 99
    with pytest.raises(StateError, match="version 99.*version 1"):
        s.load_state_dict(state)


KILLED_WORKER_SCRIPT = r"""
import json, os, signal, sys
from climbstream import ClimbStream
from tests.corpora import WEIGHTS
from tests.dataset.helpers import describe_batch
corpus, out = sys.argv[1], sys.argv[2]
stream = ClimbStream(corpus, WEIGHTS, global_batch=16, seed=7, rank=0, world_size=1)
it = iter(stream.dataloader(num_workers=2))
for i in range(100):
    batch = next(it)
    stream.mark_consumed(batch)
    with open(out + ".batches", "a") as f:
        f.write(json.dumps(describe_batch(batch)) + "\n")
    with open(out + ".tmp", "w") as f:
        json.dump(stream.state_dict(), f)
    os.replace(out + ".tmp", out)
    if i == 3:
        os.kill(it._workers[0].pid, signal.SIGKILL)  # a worker dies mid-epoch
"""


def test_killed_worker_then_resume_from_saved_position_loses_and_repeats_nothing(mds_corpus, uninterrupted, tmp_path):
    import subprocess
    import sys

    saved = tmp_path / "state.json"
    proc = subprocess.run([sys.executable, "-c", KILLED_WORKER_SCRIPT, mds_corpus, str(saved)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0, "the loader should fail once a worker is killed"
    got = [json.loads(line) for line in (tmp_path / "state.json.batches").read_text().splitlines()]
    assert len(got) >= 4
    got = [{"positions": b["positions"], "keys": [tuple(k) for k in b["keys"]]} for b in got]
    state = json.loads(saved.read_text())
    assert state["position"] == len(got) * B
    resumed = stream_of(mds_corpus)
    resumed.load_state_dict(state)
    got.extend(read_batches(resumed, 20 - len(got), num_workers=2))
    assert by_position(got) == uninterrupted


def test_loading_a_state_with_another_seed_changes_the_whole_stream(mds_corpus):
    a = stream_of(mds_corpus)
    other = ClimbStream(mds_corpus, WEIGHTS, global_batch=B, seed=99, rank=0, world_size=1)
    a.load_state_dict(other.state_dict())
    assert a.seed == 99
    assert a.describe(0, 4 * B) == other.describe(0, 4 * B)
    assert read_batches(a, 2, num_workers=2) == read_batches(other, 2, num_workers=2)


def test_a_bad_saved_stage_is_refused_at_load_naming_the_state(mds_corpus):
    s = stream_of(mds_corpus)
    state = s.state_dict()
    bad = {**state, "stages": state["stages"] + [{"start": 13, "weights": state["stages"][0]["weights"]}]}
    with pytest.raises(StateError, match="ckpt.json.stages: .*not a multiple of the block size"):
        s.load_state_dict(bad, where="ckpt.json")
    with pytest.raises(StateError, match=r"ckpt.json.stages\[0\]: expected \{start"):
        s.load_state_dict({**state, "stages": [{"weights": {}}]}, where="ckpt.json")
    assert s.describe(0, B) == stream_of(mds_corpus).describe(0, B)  # the stream was left as it was


def test_a_language_without_training_samples_may_have_weight_zero(mds_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(mds_corpus, corpus)
    manifest = corpus / "climbstream-manifest.json"
    data = json.loads(manifest.read_text())
    data["languages"]["dd"].update(train=[], samples=0, tokens=0)
    manifest.write_text(to_json(data))  # as 'climbstream manifest' would rewrite it
    weights = {"aa": 0.5, "bb": 0.3, "cc": 0.2, "dd": 0.0}
    s = ClimbStream(str(corpus), weights, global_batch=B, rank=0, world_size=1)
    assert "dd" not in {r["lang"] for r in s.describe(0, 8 * B)}
    from climbstream.errors import ConfigError

    with pytest.raises(ConfigError, match="weights.dd: positive weight but the corpus has no training samples"):
        ClimbStream(str(corpus), WEIGHTS, global_batch=B, rank=0, world_size=1)
