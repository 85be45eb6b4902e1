"""The scale-out goals, on the pure plan (bytes, not time: deterministic, seconds to run).

`benchmarks/scaleout.py --quick` (100 global batches of 1,024 at 1, 8 and 128 nodes of 8
ranks, K = 16 and 1,000): at 128 nodes each node downloads at most 1.5/N of what the job
touches and the job at most 1.5 bytes per byte trained (K = 16), and at K = 1,000 no node
more than 3 bytes per byte it trains on, with the reader's rule (read/node_reads.py) and
what its range reads cost besides the samples; the unpartitioned order is far above both,
so a rule that stopped working would fail here.
"""

from __future__ import annotations

import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import scaleout  # noqa: E402


def test_at_128_nodes_the_reader_meets_the_download_goals_the_unpartitioned_order_misses(capsys):
    assert scaleout.main(["--quick", "--no-mosaic", "--sweep", "1e9"]) == 0
    rows = {(r["languages"], r["nodes"]): r for r in json.loads(capsys.readouterr().out)["rows"]}
    k16, k1000 = rows[(16, 128)], rows[(1000, 128)]
    reader = k16["after"]["reader"]
    assert reader["download_fraction_max"] <= 1.5 / 128 and reader["egress_per_trained"] <= 1.5, reader
    assert k1000["after"]["reader"]["read_amplification_max"] <= 3, k1000["after"]["reader"]
    assert k16["before"]["shard"]["egress_per_trained"] > 10 and k1000["before"]["shard"]["egress_per_trained"] > 100
    # the ownership rule alone (read_whole_within = inf) misses them over a short run too
    assert k16["after"]["reader_within_1000000000.0"]["egress_per_trained"] > 1.5
    for row in rows.values():  # every batch keeps the unpartitioned order's languages (checked inside run)
        assert row["after"]["foreign_share"] < 0.2 if "after" in row else row["nodes"] == 1
