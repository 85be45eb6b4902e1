"""Two nodes on one machine read the uninterrupted stream together, each downloading its half.

Four gloo ranks play two nodes of two ranks (ranks_per_node=2, one cache_dir per node)
over a corpus on the moto S3 server, in read_mode "shard". P is left to its default, the
node count (2). Every position must hold what one process reading the whole stream
holds. Each node reads whole (through its cache) exactly the shards its partition owns
at least half of (read/node_reads.py) and every other sample it trains on by verified
range: its slivers of the shards the two parts share, and its foreign draws. Seed 8 has
36 foreign draws in these 30 batches (22 range reads per node in all).

Measured here (bytes per node): 51,485 and 47,711 before, every shard a node touched
downloaded whole (what "shard" mode did without the per-shard rule, and still does under
verify="sha256"); after, the whole shards the plan predicts plus the range reads: 38,619
and 37,710 with each rank fetching a range-read shard's sample sums and MDS header, 37,925
and 35,895 with the node fetching them once into its cache (read/range_sums.py), which
the test checks: two cache entries per range-read shard.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch.multiprocessing as mp

from climbstream import ClimbStream
from climbstream.formats import sample_sums
from tests.corpora import SEQ_LEN, WEIGHTS
from tests.s3_server import s3_bucket, s3_env, s3_server  # noqa: F401  (fixtures)

from .helpers import by_position, free_port, read_batches

B = 16
BATCHES = 30
SEED = 8
RANKS_PER_NODE = 2


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


def _cached_bytes(cache_dir) -> int:
    """Bytes of the whole shards a node's cache downloaded."""
    return sum(f.stat().st_size for f in _cache_files(cache_dir) if not f.name.endswith(_INDEX))


def _index_files(cache_dir) -> list:
    """The sample sums and MDS headers of the shards a node read by range, in its cache."""
    return [f for f in _cache_files(cache_dir) if f.name.endswith(_INDEX)]


def _cache_files(cache_dir) -> list:
    data = cache_dir / "data"
    return list(data.iterdir()) if data.exists() else []


_INDEX = (".sums", "_header")  # read/range_sums.py's cache entries: `<shard>.sums` and `<shard>#header`


def _node_reads(stream, nodes: int) -> list[dict]:
    """Per node, from the pure plan: bytes of the shards it reads whole, the samples it reads by
    range (and from how many shards), the bytes of the samples it trains on, its foreign draws."""
    from climbstream.read.node_reads import NodeReads

    plan = stream.plan(0, BATCHES * B)
    node = (np.arange(len(plan)) % B) // (B // nodes)
    out = []
    for n in range(nodes):
        mine = node == n
        lang, shard = plan.lang[mine], plan.shard[mine]
        whole = _stream_node_reads(stream, n).whole(lang, shard)
        pairs = set(zip(lang[whole].tolist(), shard[whole].tolist()))
        ranged = set(zip(lang[~whole].tolist(), shard[~whole].tolist()))
        trained = sum(_shard_info(stream, *key).bytes / _shard_info(stream, *key).samples
                      for key in zip(lang.tolist(), shard.tolist()))
        out.append({"whole_bytes": sum(_shard_info(stream, lang, shard).bytes for lang, shard in pairs),
                    "range_samples": int((~whole).sum()), "range_shards": len(ranged),
                    "trained_bytes": trained, "foreign": int((plan.owner[mine] != n).sum())})
    return out


def _stream_node_reads(stream, node: int):
    """The stream's rule for `node` (one partition per node, P = 2) under its first stage."""
    from climbstream.read.node_reads import NodeReads

    shares = stream.consumption.cursor.stages[0][1].astype(np.float64) / 2**32
    return NodeReads(stream.corpus.orders(SEED, stream.window_shards, 2), node, node + 1, shares,
                     stream.global_batch, stream.read_whole_within)


def _shard_info(stream, lang: int, shard: int):
    name = stream.languages[lang]
    return stream.corpus.manifest_of(name).shards(name, "train")[shard]


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


def test_two_nodes_read_the_stream_together_and_each_downloads_its_share(text_corpus, s3_bucket, tmp_path):  # noqa: F811
    from climbstream.cli import main

    url = f"{s3_bucket.url}/corpus"
    assert main(["prepare", text_corpus, "--out", url, "--format", "mds", "--seq-len", str(SEQ_LEN),
                 "--shard-samples", "16", "--endpoint-url", s3_bucket.endpoint_url, "--quiet"]) == 0
    options = {"endpoint_url": s3_bucket.endpoint_url}
    world = 2 * RANKS_PER_NODE
    mp.spawn(_rank_main, args=(world, free_port(), url, options, str(tmp_path)), nprocs=world, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]

    # together: exactly the stream one process reads, position by position
    single = ClimbStream(url, WEIGHTS, global_batch=B, seed=SEED, rank=0, world_size=1, partitions=2,
                         storage=s3_bucket.options(), read_mode="shard", cache_dir=str(tmp_path / "cache-one"),
                         stop_position=BATCHES * B)
    reference = by_position(_plain(read_batches(single, BATCHES)))
    merged = by_position([b for res in results for b in res["batches"]])
    assert merged == reference
    assert all(res["state"] == {**single.state_dict()} for res in results)

    # each node: the whole shards the rule names, through its cache, and the rest by range
    node_bytes = [sum(results[r]["bytes"] for r in range(n * RANKS_PER_NODE, (n + 1) * RANKS_PER_NODE))
                  for n in range(2)]
    cached = [_cached_bytes(tmp_path / f"cache-node{n}") for n in range(2)]
    reads = _node_reads(single, 2)
    assert [r["foreign"] for r in reads] == [18, 18] and all(r["range_samples"] for r in reads)
    assert cached == [r["whole_bytes"] for r in reads]
    shards = [s for n in single.languages for s in single.corpus.manifest_of(n).shards(n, "train")]
    sample_bytes = max(s.bytes / s.samples for s in shards)
    per_shard = max(s.extra["sample_sums"]["head_bytes"] + s.extra["header_bytes"] for s in shards)  # once per node
    block = 4 * sample_sums.BLOCK  # at most one block of sums per sample read by range, per process
    for n, r in enumerate(reads):
        ranged = node_bytes[n] - cached[n]
        index = _index_files(tmp_path / f"cache-node{n}")
        # each range-read shard's sums and header: fetched once by the node (both ranks), through its cache
        assert len(index) == 2 * r["range_shards"], (n, sorted(f.name for f in index), r)
        assert 0 < ranged <= r["range_samples"] * (sample_bytes + block) + sum(f.stat().st_size for f in index)
        assert ranged <= r["range_samples"] * (sample_bytes + block) + r["range_shards"] * per_shard
        # docs/schedule.md's bound: whole shards at most 2x, with the ranges at most 3x what it trains on
        assert cached[n] <= 2 * r["trained_bytes"] and node_bytes[n] <= 3 * r["trained_bytes"], (n, r)
    print("bytes per node:", node_bytes)

    # against before (every shard a node touches downloaded whole, measured 51,485 and 47,711): less
    before, touched = _predicted_node_bytes(single, 2)
    job = single.metrics()["bytes_downloaded"]
    assert job == touched  # one process (P = 2, one node) reads every shard whole: it owns them all
    assert all(after < was for after, was in zip(node_bytes, before)), (node_bytes, before)

    # the same two nodes without partitions: each would download nearly everything
    unpartitioned = ClimbStream(url, WEIGHTS, global_batch=B, seed=SEED, rank=0, world_size=1,
                                storage=s3_bucket.options())
    before, touched_before = _predicted_node_bytes(unpartitioned, 2)
    assert min(before) >= 0.75 * touched_before, (before, touched_before)


@pytest.mark.parametrize("within", [None, 0])
def test_dataloader_workers_of_a_node_download_only_its_whole_shards(text_corpus, s3_bucket, tmp_path,  # noqa: F811
                                                                     within):
    """Rank 0 of 2, one rank per node, 2 DataLoader workers: each worker decides alone, and
    together they cache exactly the whole shards of this node's positions; with
    read_whole_within=0 none (every sample by verified range), the same samples."""
    from climbstream.cli import main

    url = f"{s3_bucket.url}/corpus"
    assert main(["prepare", text_corpus, "--out", url, "--format", "mds", "--seq-len", str(SEQ_LEN),
                 "--shard-samples", "16", "--endpoint-url", s3_bucket.endpoint_url, "--quiet"]) == 0
    batches = 12
    stream = ClimbStream(url, WEIGHTS, global_batch=B, seed=SEED, rank=0, world_size=2, ranks_per_node=1,
                         storage=s3_bucket.options(), read_mode="shard", cache_dir=str(tmp_path / "cache"),
                         stop_position=batches * B, **({} if within is None else {"read_whole_within": within}))
    assert stream.partitions == 2
    got = by_position(_plain(read_batches(stream, batches, num_workers=2)))
    plan = stream.plan(0, batches * B)
    mine = (np.arange(len(plan)) % B) < B // 2
    positions = np.arange(len(plan))[mine]
    assert {p: tuple(k[:3]) for p, k in got.items()} == {
        int(p): (int(lang), int(shard), int(index))
        for p, lang, shard, index in zip(positions, plan.lang[mine], plan.shard[mine], plan.index[mine])}
    whole = _stream_node_reads(stream, 0).whole(plan.lang[mine], plan.shard[mine])
    assert (~whole).any()  # some samples were read by range
    assert whole.any() == (within is None)
    expected = {(int(lang), int(shard)) for lang, shard in zip(plan.lang[mine][whole], plan.shard[mine][whole])}
    assert _cached_bytes(tmp_path / "cache") == sum(_shard_info(stream, *key).bytes for key in expected)
