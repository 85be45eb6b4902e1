"""Which node counts can read a run of P partitions, and which partitions a node reads."""

from __future__ import annotations

import pytest

from climbstream.errors import ConfigError
from climbstream.read.node_reads import check_nodes, node_partitions
from climbstream.stream.plan.partitioning import default_partitions, resolve_partitions


def test_nodes_that_divide_p_read_whole_partitions_and_multiples_share_one():
    assert [node_partitions(8, r, 8, 2) for r in (0, 1, 2, 7)] == [(0, 2), (0, 2), (2, 4), (6, 8)]
    assert [node_partitions(2, r, 8, 1) for r in range(8)] == [(0, 1)] * 4 + [(1, 2)] * 4
    assert check_nodes(8, 16, 8) == 2 and check_nodes(4, 64, 8) == 8


def test_other_node_counts_and_partial_nodes_are_errors_naming_the_fix():
    with pytest.raises(ConfigError, match=r"P = 8 partitions .* and 3 nodes .* divides P \(1, 2, 4, 8\)"):
        check_nodes(8, 24, 8)
    with pytest.raises(ConfigError, match="not a multiple of ranks_per_node 8"):
        check_nodes(8, 12, 8)


def test_the_default_is_the_node_count_only_where_it_is_known(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert default_partitions(16, 8) == 2
    assert default_partitions(16, None) == 1
    monkeypatch.setenv("WORLD_SIZE", "32")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert default_partitions(None, None) == 4
    assert resolve_partitions(None, 1024, None, None) == 4
    assert resolve_partitions(None, 6, None, None) == 1  # P must divide B: the derived value falls back
    with pytest.raises(ConfigError, match="partitions 4 does not divide global_batch 6"):
        resolve_partitions(4, 6, None, None)
