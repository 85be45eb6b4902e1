"""Benchmark: what each node downloads at 1 to 1,024 nodes, from the pure plan (no I/O).

Prints one JSON object (and writes it with --out): for K = 16, 145 and 1,000 languages and
N nodes of 8 ranks, the first `horizon` global batches of the stream, before (P = 1, the
unpartitioned order) and after (P = N, the partitioned order), and mosaicml-streaming's
partitioning of the same corpus where its own code can compute it.

Corpus (synthetic, seeded): shards of 2,000 samples of 4 KiB; K = 16 has skewed sizes
(1,024 shards halving down to 1); K = 145 and K = 1,000 have log-normal shard counts.
Weights: temperature 0.5 over sample counts (small languages upsampled). Global batch:
max(1024, ranks) (a rank reads at least one sample), window 4, seed 0.

How a node reads (one column per way):
  shard  every shard it draws from is downloaded whole (the cache; today's default)
  range  every sample is one byte-range request: it downloads exactly what it trains on
  owned  (after) a shard whole where the node's partitions own at least half of it, every
         other sample (slivers of shared shards, foreign draws) by range
  mixed  (after) a shard whole where the node's partitions own at least half of it and the
         node trains on at least half the bytes of that language's shards it would download
         within the horizon, else ranges; foreign draws (samples the node reads from another
         node's part) always by range
  reader (after) what climbstream's reader does (read/node_reads.py): `owned` where the
         node trains through its window of the language within --within global batches
         (`read_whole_within`, PartitionedOrders.window_batches), else ranges; plus what its
         range reads cost besides the samples: per shard, once per node into its cache, the
         sums' head and the MDS header (about 4 bytes per sample of the shard; two
         requests), and per rank one 256-byte block of sums per 64 samples it reads from
         (read/range_sums.py). `reader_within_W`: the same at --sweep values W
  long_run (after) over whole epochs: shards the node owns at least half of whole, every
         other sample by range (the ownership rule alone, with a cache that holds the
         node's windows; the sums and headers, fetched once per node and shard, are left
         out); egress per trained byte and the largest node's share. `long_run_reader`: the
         same with the reader's density test (languages slower than --within by range only)
Metrics per node (mean and max over nodes):
  download_fraction        bytes it downloads / bytes of all shards the job touches
                           (ideal 1/N); `shards_fraction`: whole shards, by count
  read_amplification       bytes it downloads / bytes it trains on
  egress_per_trained       all nodes' bytes / all bytes trained on (job egress)
  working_set_bytes        peak bytes of whole shards a node holds, a shard held from its
                           first to its last use within the horizon
  peak_requesters          most nodes asking for one object in one global batch
  requests_per_node_batch  GETs per node per global batch (a whole shard, one sample, and
                           for `reader*` each sums head, block and header)
  foreign_share            (after) positions whose sample another node's partition owns
mosaic: streaming.base.partition.get_partitions('orig') and get_shuffle('py1e') on an
epoch of horizon x batch samples, each stream's share of it taken as its first samples
(repeated when upsampled); whole shards; its batches are not exact per language.

Run:  .venv/bin/python benchmarks/scaleout.py [--quick] [--out benchmarks/results/scaleout.json]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from json_report import emit  # benchmarks/ is on sys.path: run as a script

from climbstream.read.node_reads import DEFAULT_READ_WHOLE_WITHIN
from climbstream.schedule.order import LanguageOrder, language_key
from climbstream.schedule.partitioned import PartitionedOrders
from climbstream.schedule.schedule import Schedule
from climbstream.schedule.weights import WEIGHT_TOTAL, integer_weights
from climbstream.stream.plan.plan import plan_range

SHARD = 2000
SAMPLE_BYTES = 4096
RANKS_PER_NODE = 8
WINDOW = 4
NODES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
SUMS_BLOCK = 64  # samples per block of a shard's sums (formats/sample_sums.py), 4 B each
SUMS_HEAD_FIXED = 32  # the sums' fixed fields; then 4 B per block of the block table
MDS_HEADER_FIXED = 4 + 256  # the MDS header's sample count and column table; then 4 B per offset


def corpus(k: int) -> list[list[int]]:
    """Shard sizes per language."""
    if k == 16:
        counts = [max(1, round(1024 * 0.55**i)) for i in range(k)]
    else:
        rng = np.random.default_rng(k)
        counts = np.maximum(1, np.round(np.exp(rng.normal(1.5, 1.5, k)))).astype(int).tolist()
    return [[SHARD] * int(c) for c in counts]


def weights_of(sizes: list[list[int]]) -> np.ndarray:
    samples = np.array([sum(s) for s in sizes], dtype=np.float64)
    ratios = samples**0.5 / (samples**0.5).sum()
    names = [f"l{i:04d}" for i in range(len(sizes))]
    ints = integer_weights(dict(zip(names, ratios.tolist())), "weights")
    return np.array([ints[n] for n in names], dtype=np.uint64)


def orders_of(sizes, partitions: int, seed: int = 0):
    keys = [language_key(f"l{i:04d}") for i in range(len(sizes))]
    base = [LanguageOrder(seed, key, s, WINDOW) for key, s in zip(keys, sizes)]
    return base if partitions == 1 else PartitionedOrders(base, sizes, keys, seed, WINDOW, partitions)


def node_metrics(nodes: int, block: int, horizon: int, lang, shard, owner, offsets, sizes, partitions: int = 1,
                 owned_share=None, dense=None, sweep=None, sample=None) -> dict:
    """Per-node download metrics of one plan (positions [0, horizon * block))."""
    positions = np.arange(lang.size)
    batch = positions // block
    node = (positions % block) // (block // nodes)
    obj = offsets[lang] + shard  # a global shard id
    shard_bytes = np.concatenate([np.asarray(s, dtype=np.int64) for s in sizes]) * SAMPLE_BYTES
    job_bytes = int(shard_bytes[np.unique(obj)].sum())
    job_shards = int(np.unique(obj).size)
    trained = np.bincount(node, minlength=nodes) * SAMPLE_BYTES
    mine = np.ones(lang.size, dtype=bool) if owner is None else owner * nodes // partitions == node
    out: dict = {}
    # (node, object) pairs: first and last batch of use, samples used
    pair = node.astype(np.int64) * (obj.max() + 1) + obj
    order = np.argsort(pair, kind="stable")
    p_sorted = pair[order]
    starts = np.flatnonzero(np.r_[True, p_sorted[1:] != p_sorted[:-1]])
    pair_node = node[order][starts]
    pair_obj = obj[order][starts]
    pair_lang = lang[order][starts]
    used = np.diff(np.r_[starts, pair.size])
    first = batch[order][starts]
    last = np.maximum.reduceat(batch[order], starts)
    pair_mine = np.logical_or.reduceat(mine[order], starts) if owner is not None else np.ones(starts.size, bool)
    modes = {"shard": np.ones(starts.size, dtype=bool), "range": np.zeros(starts.size, dtype=bool)}
    index: dict = {}
    if owner is not None:
        # per (node, language): whole shards when it trains on >= half of what it would download
        nl = pair_node.astype(np.int64) * len(sizes) + pair_lang
        own = pair_mine
        dl = np.bincount(nl[own], weights=shard_bytes[pair_obj[own]], minlength=nodes * len(sizes))
        use = np.bincount(nl[own], weights=used[own] * SAMPLE_BYTES, minlength=nodes * len(sizes))
        owned = own & (owned_share[pair_node, pair_obj] >= 0.5)
        modes["owned"] = owned
        modes["mixed"] = owned & (use >= 0.5 * dl)[nl]
        rules = {"reader": dense, **{f"reader_within_{w}": d for w, d in (sweep or {}).items()}}
        for name, rule in rules.items():  # rule[node, lang]: the node's window of lang turns over within `within`
            modes[name] = owned & rule[pair_node, pair_lang]
            index[name] = range_index(nodes, block, sample, obj, order, used, modes[name], shard_bytes)
    for name, whole in modes.items():
        got = np.where(whole, shard_bytes[pair_obj], used * SAMPLE_BYTES)
        per_node = np.bincount(pair_node, weights=got, minlength=nodes)
        requests = float(np.where(whole, 1, used).sum())
        if name in index:
            per_node = per_node + index[name][0]
            requests += index[name][1]
        shards = np.bincount(pair_node[whole], minlength=nodes)
        held = np.zeros((nodes, horizon + 1))
        np.add.at(held, (pair_node[whole], first[whole]), shard_bytes[pair_obj[whole]])
        np.add.at(held, (pair_node[whole], last[whole] + 1), -shard_bytes[pair_obj[whole]])
        working = np.cumsum(held, axis=1).max(axis=1)
        # requesters per (batch, object): whole shards ask once (first use), ranges on every use
        ask_batch = np.where(whole, first, -1)
        asks = [np.stack([ask_batch[whole], pair_obj[whole]], 1)]
        if (~whole).any():
            ranged = np.isin(pair, p_sorted[starts][~whole])
            asks.append(np.unique(np.stack([batch[ranged], obj[ranged], node[ranged]], 1), axis=0)[:, :2])
        asks = np.concatenate(asks)
        peak = int(np.unique(asks, axis=0, return_counts=True)[1].max()) if asks.size else 0
        out[name] = {
            "download_fraction_mean": float(per_node.mean() / job_bytes),
            "download_fraction_max": float(per_node.max() / job_bytes),
            "shards_fraction_max": float(shards.max() / job_shards),
            "read_amplification_mean": float((per_node / trained).mean()),
            "read_amplification_max": float((per_node / trained).max()),
            "egress_per_trained": float(per_node.sum() / trained.sum()),
            "working_set_bytes_max": int(working.max()),
            "peak_requesters": peak,
            "requests_per_node_batch": float(requests / (nodes * horizon)),
        }
    if owner is not None:
        out["foreign_share"] = float(1 - mine.mean())
    return out


def range_index(nodes: int, block: int, sample, obj, order, used, whole, shard_bytes):
    """(float[nodes], requests): what a node fetches besides the samples it reads by range
    (`whole[pair]` False for the node's (node, shard) pair): per shard, once per node through
    its cache, the sums' head (fixed fields and the block table) and the MDS header (offsets
    and column table), two GETs; per (rank, shard, block of SUMS_BLOCK samples) read, one
    GET of that block's sums (read/range_sums.py keeps blocks per process)."""
    positions = np.arange(obj.size)
    pair_of = np.empty(obj.size, dtype=np.int64)
    pair_of[order] = np.repeat(np.arange(used.size), used)
    ranged = ~whole[pair_of]
    width = int(obj.max()) + 1
    rank = (positions % block) // (block // (nodes * RANKS_PER_NODE))
    node_obj = np.unique((rank[ranged] // RANKS_PER_NODE).astype(np.int64) * width + obj[ranged])
    samples = shard_bytes[node_obj % width] // SAMPLE_BYTES
    heads = SUMS_HEAD_FIXED + 4 * -(-samples // SUMS_BLOCK) + MDS_HEADER_FIXED + 4 * (samples + 1)
    blocks = np.unique(np.stack([rank[ranged], obj[ranged], sample[ranged] // SUMS_BLOCK], 1), axis=0)
    per_node = np.bincount(node_obj // width, weights=heads, minlength=nodes)
    per_node += np.bincount(blocks[:, 0] // RANKS_PER_NODE, minlength=nodes) * 4.0 * SUMS_BLOCK
    return per_node, 2.0 * node_obj.size + blocks.shape[0]


def owned_matrix(orders, i: int, nodes: int, shard_sizes) -> np.ndarray:
    """int[nodes, shards]: samples of each shard of language i that node n's partition owns (P = nodes)."""
    bounds = orders.parts.offsets(i, np.arange(nodes + 1))
    cum = np.concatenate([[0], np.cumsum(shard_sizes)])
    return np.maximum(np.minimum(cum[None, 1:], bounds[1:, None]) - np.maximum(cum[None, :-1], bounds[:-1, None]), 0)


def owned_shares(orders, nodes: int, sizes, offsets) -> np.ndarray:
    """float[nodes, shards]: the share of each shard that node n's partition owns (P = nodes)."""
    share = np.zeros((nodes, int(offsets[-1])))
    for i, s in enumerate(sizes):
        share[:, offsets[i]:offsets[i + 1]] = owned_matrix(orders, i, nodes, s) / np.asarray(s)[None, :]
    return share


def long_run(orders, nodes: int, sizes, weights, foreign_share: float, dense=None) -> dict:
    """Over whole epochs (a node's cache holding its windows): each node reads the shards
    its partitions own at least half of whole, every other sample it trains on by range
    (its slivers of shared shards, and its foreign draws). Per language, bytes read per
    epoch over the language's bytes, weighted by the language's share of training;
    `download_fraction_max`: the largest node's bytes over the bytes the job trains on
    (ideal 1/N). `dense[i]` False (the reader's rule, `read_whole_within`): language i is
    read by range only, exactly what the node trains on. The sums and headers are left out."""
    ratio, fraction = 0.0, np.zeros(nodes)
    for i, s in enumerate(sizes):
        s = np.asarray(s)
        own = owned_matrix(orders, i, nodes, s)
        whole = own * 2 >= s[None, :]
        if dense is not None and not dense[i]:
            whole[:] = False
        got = np.where(whole, s[None, :], own).sum(axis=1)
        share = float(weights[i]) / WEIGHT_TOTAL
        ratio += share * got.sum() / s.sum()
        fraction += share * got / s.sum()
    return {"egress_per_trained": ratio + foreign_share,
            "download_fraction_max": float(fraction.max())}


def mosaic_metrics(nodes: int, block: int, horizon: int, sizes, weights) -> dict | None:
    """mosaicml-streaming's partition of an epoch of horizon x block samples, whole shards."""
    try:
        from streaming.base.partition import get_partitions
        from streaming.base.shuffle import get_shuffle
    except ImportError:
        return None
    total = horizon * block
    ratios = weights.astype(np.float64) / WEIGHT_TOTAL
    choose = np.floor(ratios * total).astype(np.int64)
    choose[np.argmax(choose)] += total - choose.sum()
    units, unit_obj = [], []
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sizes])])
    for i, s in enumerate(sizes):
        left, j = int(choose[i]), 0
        while left > 0:
            take = min(left, s[j % len(s)])
            units.append(take)
            unit_obj.append(offsets[i] + j % len(s))
            left -= take
            j += 1
    units = np.array(units, dtype=np.int64)
    unit_obj = np.array(unit_obj, dtype=np.int64)
    ids = get_partitions("orig", total, nodes, nodes, RANKS_PER_NODE, 1, block // (nodes * RANKS_PER_NODE))
    big = get_shuffle("py1e", units, nodes, 0, 0)
    ids = np.where(ids == -1, -1, big[ids])
    unit_of = np.repeat(np.arange(units.size), units)
    shard_bytes = np.concatenate([np.asarray(s, dtype=np.int64) for s in sizes]) * SAMPLE_BYTES
    per_node, per_node_shards, touched = [], [], set()
    for n in range(nodes):
        got = ids[n, :, :, :horizon].ravel()
        objs = np.unique(unit_obj[unit_of[got[got >= 0]]])
        touched.update(objs.tolist())
        per_node.append(int(shard_bytes[objs].sum()))
        per_node_shards.append(objs.size)
    job = int(shard_bytes[np.array(sorted(touched))].sum())
    trained = block // nodes * horizon * SAMPLE_BYTES
    per_node = np.array(per_node, dtype=np.float64)
    return {
        "download_fraction_mean": float(per_node.mean() / job),
        "download_fraction_max": float(per_node.max() / job),
        "shards_fraction_max": float(max(per_node_shards) / len(touched)),
        "read_amplification_mean": float(per_node.mean() / trained),
        "egress_per_trained": float(per_node.sum() / (trained * nodes)),
        "exact_batches": False,
    }


def dense_rule(orders, nodes: int, weights, block: int, within: float) -> np.ndarray:
    """bool[nodes, languages]: the reader's density test (`PartitionedOrders.window_batches`
    <= `within`); the same for every node, P = nodes."""
    shares = weights.astype(np.float64) / WEIGHT_TOTAL
    fast = np.array([orders.window_batches(i, shares[i], block) <= within for i in range(len(orders))])
    return np.broadcast_to(fast, (nodes, fast.size))


def run(k: int, nodes: int, horizon: int, mosaic: bool, within: float, sweep=()) -> dict:
    sizes = corpus(k)
    weights = weights_of(sizes)
    block = max(1024, nodes * RANKS_PER_NODE)
    schedule = Schedule(k, block, 0)
    schedule.add_stage(0, weights)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sizes])]).astype(np.int64)
    row: dict = {"languages": k, "nodes": nodes, "ranks": nodes * RANKS_PER_NODE, "global_batch": block,
                 "horizon_batches": horizon, "ideal_fraction": 1 / nodes}
    t0 = time.perf_counter()
    before = plan_range(schedule, orders_of(sizes, 1), 0, horizon * block)
    row["before"] = node_metrics(nodes, block, horizon, before.lang, before.shard, None, offsets, sizes)
    t1 = time.perf_counter()
    if nodes > 1:
        orders = orders_of(sizes, nodes)
        after = plan_range(schedule, orders, 0, horizon * block)
        assert all((np.bincount(after.lang[b * block:(b + 1) * block], minlength=k)
                    == np.bincount(before.lang[b * block:(b + 1) * block], minlength=k)).all()
                   for b in range(0, horizon, max(1, horizon // 10)))
        share = owned_shares(orders, nodes, sizes, offsets)
        dense = dense_rule(orders, nodes, weights, block, within)
        row["after"] = node_metrics(nodes, block, horizon, after.lang, after.shard, after.owner, offsets, sizes,
                                    nodes, share, dense,
                                    {w: dense_rule(orders, nodes, weights, block, w) for w in sweep}, after.index)
        row["after"]["long_run"] = long_run(orders, nodes, sizes, weights, row["after"]["foreign_share"])
        row["after"]["long_run_reader"] = long_run(orders, nodes, sizes, weights, row["after"]["foreign_share"],
                                                   dense[0])
    t2 = time.perf_counter()
    row["plan_seconds"] = {"before": round(t1 - t0, 3), "after": round(t2 - t1, 3)}
    if mosaic and nodes > 1:
        row["mosaic"] = mosaic_metrics(nodes, block, horizon, sizes, weights)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="K = 16 and 1,000 at 1, 8 and 128 nodes, 100 batches")
    parser.add_argument("--no-mosaic", action="store_true")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--within", type=float, default=DEFAULT_READ_WHOLE_WITHIN,
                        help="the reader's read_whole_within (global batches; default: the stream's)")
    parser.add_argument("--sweep", type=float, nargs="*", default=(),
                        help="also the reader's columns at these read_whole_within values")
    args = parser.parse_args(argv)
    plan = ([(16, n, 100) for n in (1, 8, 128)] + [(1000, n, 100) for n in (1, 8, 128)]) if args.quick else \
        [(16, n, 300) for n in NODES] + [(145, n, 300) for n in NODES] + [(1000, n, 200) for n in NODES]
    t0 = time.perf_counter()
    rows = [run(k, n, h, not args.no_mosaic, args.within, args.sweep) for k, n, h in plan]
    report = {"benchmark": "scaleout", "shard_samples": SHARD, "sample_bytes": SAMPLE_BYTES,
              "ranks_per_node": RANKS_PER_NODE, "window_shards": WINDOW, "read_whole_within": args.within,
              "rows": rows,
              "seconds": round(time.perf_counter() - t0, 1)}
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
