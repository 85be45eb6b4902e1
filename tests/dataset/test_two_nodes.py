"""Two nodes on one machine read the uninterrupted stream together, each downloading its half.

Four gloo ranks play two nodes of two ranks (ranks_per_node=2, one cache_dir per node)
over a corpus on the moto S3 server, in read_mode "shard" (whole shards through the
node's cache). P is left to its default, the node count (2). Every position must hold
what one process reading the whole stream holds, and each node's cache must download
about half the bytes the job touches (without partitions each node downloads over 3/4).

Foreign draws (the few a node reads from the other node's part) go through the cache
as whole shards for now; seed 2 has none in these 30 batches, so the half is exact up to
the shards the two parts share at their boundary. The pure plan predicts the downloads
of any seed, foreign draws included, and the test checks the prediction too.
"""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import torch.multiprocessing as mp

from climbstream import ClimbStream
from tests.corpora import SEQ_LEN, WEIGHTS
from tests.s3_server import s3_bucket, s3_env, s3_server  # noqa: F401  (fixtures)

from .helpers import by_position, read_batches

B = 16
BATCHES = 30
SEED = 2
RANKS_PER_NODE = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, url: str, options: dict, out_dir: str) -> None:
    import torch.distributed as dist

    from climbstream.storage.options import StorageOptions

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        node = rank // RANKS_PER_NODE
        stream = ClimbStream(url, WEIGHTS, global_batch=B, seed=SEED, ranks_per_node=RANKS_PER_NODE,
                             storage=StorageOptions.from_dict(options), read_mode="shard",
                             cache_dir=os.path.join(out_dir, f"cache-node{node}"), stop_position=BATCHES * B)
        assert stream.partitions == 2  # the node count, derived
        batches = _plain(read_batches(stream, BATCHES))
        dist.barrier()  # the node's other rank may still be downloading into the shared cache
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump({"batches": batches, "bytes": stream.metrics()["bytes_downloaded"],
                       "state": stream.state_dict()}, f)
    finally:
        dist.destroy_process_group()


def _plain(batches: list[dict]) -> list[dict]:
    """Batches with each key as plain [lang, shard, index, digest] (JSON-able)."""
    return [{"positions": b["positions"], "keys": [[int(k[0]), int(k[1]), int(k[2]), k[3]] for k in b["keys"]]}
            for b in batches]


def _predicted_node_bytes(stream, nodes: int) -> tuple[list[int], int]:
    """Bytes of the distinct shards each node's positions draw from, and of all the job touches."""
    plan = stream.plan(0, BATCHES * B)
    node = (np.arange(len(plan)) % B) // (B // nodes)
    size = {}
    for lang, shard in zip(plan.lang.tolist(), plan.shard.tolist()):
        name = stream.languages[lang]
        size[(lang, shard)] = stream.corpus.manifest_of(name).shards(name, "train")[shard].bytes
    per_node = [sum(size[k] for k in set(zip(plan.lang[node == n].tolist(), plan.shard[node == n].tolist())))
                for n in range(nodes)]
    return per_node, sum(size.values())


def test_two_nodes_read_the_stream_together_and_each_downloads_half(text_corpus, s3_bucket, tmp_path):  # noqa: F811
    from climbstream.cli import main

    url = f"{s3_bucket.url}/corpus"
    assert main(["prepare", text_corpus, "--out", url, "--format", "mds", "--seq-len", str(SEQ_LEN),
                 "--shard-samples", "16", "--endpoint-url", s3_bucket.endpoint_url, "--quiet"]) == 0
    options = {"endpoint_url": s3_bucket.endpoint_url}
    world = 2 * RANKS_PER_NODE
    mp.spawn(_rank_main, args=(world, _free_port(), url, options, str(tmp_path)), nprocs=world, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]

    # together: exactly the stream one process reads, position by position
    single = ClimbStream(url, WEIGHTS, global_batch=B, seed=SEED, rank=0, world_size=1, partitions=2,
                         storage=s3_bucket.options(), read_mode="shard", cache_dir=str(tmp_path / "cache-one"),
                         stop_position=BATCHES * B)
    reference = by_position(_plain(read_batches(single, BATCHES)))
    merged = by_position([b for res in results for b in res["batches"]])
    assert merged == reference
    assert all(res["state"] == {**single.state_dict()} for res in results)

    # each node: about half of what the job touches (the one process downloads it all once)
    job = single.metrics()["bytes_downloaded"]
    node_bytes = [sum(results[r]["bytes"] for r in range(n * RANKS_PER_NODE, (n + 1) * RANKS_PER_NODE))
                  for n in range(2)]
    predicted, touched = _predicted_node_bytes(single, 2)
    assert job == touched
    assert node_bytes == predicted
    assert all(0.4 * job <= b <= 0.6 * job for b in node_bytes), (node_bytes, job)

    # the same two nodes without partitions: each would download nearly everything
    unpartitioned = ClimbStream(url, WEIGHTS, global_batch=B, seed=SEED, rank=0, world_size=1,
                                storage=s3_bucket.options())
    before, touched_before = _predicted_node_bytes(unpartitioned, 2)
    assert min(before) >= 0.75 * touched_before, (before, touched_before)
