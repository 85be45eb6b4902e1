"""Rank, world size and ranks per node are found in one place (climbstream/ranks.py), with one
behaviour for a bad environment: a one-line ConfigError naming the variable, whoever asks."""

from __future__ import annotations

import pytest

from climbstream import ClimbStream
from climbstream.errors import ConfigError
from climbstream.stream.plan.partitioning import default_partitions
from climbstream.train.sinks import JsonlSink
from tests.corpora import WEIGHTS

ENV = ("RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("value", ["eight", "0", "-2"])
def test_a_bad_local_world_size_is_the_same_error_for_the_stream_and_the_partition_default(
        mds_corpus, clean_env, value):
    clean_env.setenv("LOCAL_WORLD_SIZE", value)
    match = rf"^LOCAL_WORLD_SIZE='{value}' in the environment is not an integer >= 1; .*ranks_per_node="
    with pytest.raises(ConfigError, match=match):
        default_partitions(16, None)  # was silently "unknown": P = 1
    with pytest.raises(ConfigError, match=match):
        ClimbStream(mds_corpus, WEIGHTS, global_batch=8, rank=0, world_size=2)
    # an explicit ranks_per_node is the fix the message names
    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=8, rank=0, world_size=2, ranks_per_node=2)
    assert stream.ranks_per_node == 2 and stream.partitions == 1


def test_a_bad_world_size_is_an_error_for_the_layout_and_the_partition_default(mds_corpus, clean_env):
    clean_env.setenv("WORLD_SIZE", "two")
    match = r"^WORLD_SIZE='two' in the environment is not an integer >= 1"
    with pytest.raises(ConfigError, match=match):
        default_partitions(None, 8)  # was silently "unknown": P = 1
    with pytest.raises(ConfigError, match=match):
        ClimbStream(mds_corpus, WEIGHTS, global_batch=8, partitions=1).local_batch


def test_a_bad_rank_is_an_error_for_the_stream_and_the_loss_log_sinks(mds_corpus, clean_env, tmp_path):
    clean_env.setenv("RANK", "first")
    match = r"^RANK='first' in the environment is not an integer >= 0"
    with pytest.raises(ConfigError, match=match):
        ClimbStream(mds_corpus, WEIGHTS, global_batch=8).local_batch
    sink = JsonlSink(tmp_path / "losses.jsonl")
    with pytest.raises(ConfigError, match=match):  # was a bare ValueError from int()
        sink.write([{"kind": "loader", "step": 1}])


def test_torchruns_environment_is_read_the_same_way_by_every_question(mds_corpus, clean_env, tmp_path):
    clean_env.setenv("RANK", "3")
    clean_env.setenv("WORLD_SIZE", "4")
    clean_env.setenv("LOCAL_WORLD_SIZE", "2")
    stream = ClimbStream(mds_corpus, WEIGHTS, global_batch=8)
    assert (stream.layout.rank, stream.layout.world_size, stream.ranks_per_node) == (3, 4, 2)
    assert stream.partitions == default_partitions(None, None) == 2
    JsonlSink(tmp_path / "losses.jsonl").write([{"kind": "loader", "step": 1}])
    assert not (tmp_path / "losses.jsonl").exists()  # rank 3 writes no file
