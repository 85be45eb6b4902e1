"""Benchmark: the block-exact schedule against the usual ways of mixing languages.

Prints one JSON object (or, with --markdown, a table): for each (method, K) the positions
generated per second on one core, the largest deviation |count_i - w_i p| over all
languages and all block boundaries p, and the time of a random-access lookup at
p = 10**12 where the method has one. All methods see the same Dirichlet(1) weights.

Methods:
  block-exact       climbstream.schedule.Schedule.lookup_range (languages and ks), in
                    calls of `--chunk-blocks` blocks; `per_block_call_positions_per_s`
                    is the same stream asked for one global batch per call (the hot path)
  numpy-choice      numpy.random.Generator.choice(K, n, p=w) (i.i.d.)
  torch-multinomial torch.multinomial(w, n, replacement=True), one thread (i.i.d.)
  megatron-greedy   Megatron-LM's build_blending_indices rule (pick the largest deficit
                    w_i * max(p, 1) - count_i), compiled with numba; O(K) per position
                    and no random access (the index is built by replaying from 0)

Run:  .venv/bin/python benchmarks/sampler.py [--quick] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
from numba import njit

from climbstream.schedule.order import LanguageOrder, language_key
from climbstream.schedule.schedule import Schedule, Stage
from climbstream.schedule.weights import WEIGHT_TOTAL, integer_weights

TOTAL = WEIGHT_TOTAL


@njit(cache=True)
def megatron_greedy(weights, n, out_dataset, out_sample):
    """Megatron-LM helpers.cpp build_blending_indices, line for line."""
    current = np.zeros(weights.shape[0], dtype=np.int64)
    for i in range(n):
        scale = max(float(i), 1.0)
        best = 0
        best_error = weights[0] * scale - current[0]
        for j in range(1, weights.shape[0]):
            error = weights[j] * scale - current[j]
            if error > best_error:
                best_error = error
                best = j
        out_dataset[i] = best
        out_sample[i] = current[best]
        current[best] += 1


def uint_weights(ratios: np.ndarray) -> np.ndarray:
    named = integer_weights({f"l{i:05d}": float(r) for i, r in enumerate(ratios)})
    return np.array([named[f"l{i:05d}"] for i in range(ratios.size)], dtype=np.uint64)


def max_abs_dev(labels: np.ndarray, weights: np.ndarray, block_size: int) -> float:
    """max over i and block boundaries p <= n of |count_i(p) - w_i p / 2**32|."""
    k = weights.size
    blocks = labels.size // block_size
    per_block = np.bincount(
        np.repeat(np.arange(blocks, dtype=np.int64), block_size) * k + labels[: blocks * block_size],
        minlength=blocks * k,
    ).reshape(blocks, k)
    counts = np.cumsum(per_block, axis=0).astype(np.float64)
    p = np.arange(1, blocks + 1, dtype=np.float64)[:, None] * block_size
    return float(np.abs(counts - weights.astype(np.float64)[None, :] / TOTAL * p).max())


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_block_exact(weights, n, block_size, chunk_blocks, repeats, family):
    schedule = Schedule(weights.size, block_size, seed=1234, stages=[Stage(0, weights)])
    chunk = chunk_blocks * block_size
    schedule.lookup_range(0, block_size)  # compile / load the cache
    labels = np.empty(n, dtype=np.int32)

    def run_chunks():
        for start in range(0, n, chunk):
            langs, _ = schedule.lookup_range(start, min(start + chunk, n))
            labels[start:start + langs.size] = langs

    seconds = best_time(run_chunks, repeats)
    one_block_n = min(n, 512 * block_size)

    def run_blocks():
        for start in range(0, one_block_n, block_size):
            schedule.lookup_range(start, start + block_size)

    block_seconds = best_time(run_blocks, repeats)
    schedule.lookup(10**12)
    lookups = [10**12 + j * 7919 for j in range(200)]
    t0 = time.perf_counter()
    for p in lookups:
        schedule.lookup(p)
    random_access_us = (time.perf_counter() - t0) / len(lookups) * 1e6
    return {
        "method": "block-exact", "family": family, "K": int(weights.size), "n": n,
        "block_size": block_size, "positions_per_s": n / seconds,
        "per_block_call_positions_per_s": one_block_n / block_seconds,
        "max_abs_dev": max_abs_dev(labels, weights, block_size),
        "proven_bound": schedule.bound, "tree_bound": schedule.stage_bound(0),
        "random_access_us": random_access_us,
    }


def bench_numpy(weights, n, block_size, repeats):
    p = weights.astype(np.float64) / TOTAL
    rng = np.random.default_rng(0)
    out = {}
    seconds = best_time(lambda: out.__setitem__("x", rng.choice(weights.size, size=n, p=p)), repeats)
    return {"method": "numpy-choice", "family": "dirichlet", "K": int(weights.size), "n": n,
            "block_size": block_size, "positions_per_s": n / seconds,
            "max_abs_dev": max_abs_dev(out["x"], weights, block_size), "random_access_us": None}


def bench_torch(weights, n, block_size, repeats):
    import torch

    torch.set_num_threads(1)
    probs = torch.tensor(weights.astype(np.float64) / TOTAL)
    gen = torch.Generator().manual_seed(0)
    out = {}
    seconds = best_time(lambda: out.__setitem__("x", torch.multinomial(probs, n, replacement=True, generator=gen)),
                        repeats)
    return {"method": "torch-multinomial", "family": "dirichlet", "K": int(weights.size), "n": n,
            "block_size": block_size, "positions_per_s": n / seconds,
            "max_abs_dev": max_abs_dev(out["x"].numpy(), weights, block_size), "random_access_us": None}


def bench_greedy(weights, n, block_size, repeats):
    w = weights.astype(np.float64) / TOTAL
    dataset = np.empty(n, dtype=np.int64)
    sample = np.empty(n, dtype=np.int64)
    megatron_greedy(w, 10, dataset, sample)
    seconds = best_time(lambda: megatron_greedy(w, n, dataset, sample), repeats)
    return {"method": "megatron-greedy", "family": "dirichlet", "K": int(weights.size), "n": n,
            "block_size": block_size, "positions_per_s": n / seconds,
            "max_abs_dev": max_abs_dev(dataset, weights, block_size), "random_access_us": None}


def bench_order(n_draws: int) -> dict:
    sizes = np.full(2000, 4096, dtype=np.int64)
    order = LanguageOrder(7, language_key("fr"), sizes, window_shards=4)
    ks = np.arange(10**12, 10**12 + n_draws, dtype=np.int64)
    order.locate(ks[:10])
    seconds = best_time(lambda: order.locate(ks), 3)
    t0 = time.perf_counter()
    for j in range(200):
        order.locate(np.array([10**12 + j * 104729]))
    return {"shards": int(sizes.size), "samples_per_epoch": order.samples_per_epoch, "n": n_draws,
            "draws_per_s": n_draws / seconds,
            "random_access_us": (time.perf_counter() - t0) / 200 * 1e6}


def machine() -> dict:
    import numba
    import torch

    return {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_model": next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                           if line.startswith("model name")), None) if os.path.exists("/proc/cpuinfo") else None,
        "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
        "python": sys.version.split()[0], "numpy": np.__version__, "numba": numba.__version__,
        "torch": torch.__version__, "threads": "one (numba kernels are serial; torch.set_num_threads(1))",
    }


def markdown(report: dict) -> str:
    rows = ["| method | family | K | n | positions/s | max abs dev | random access (us) |",
            "|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        ra = "n/a" if r["random_access_us"] is None else f"{r['random_access_us']:.1f}"
        rows.append(f"| {r['method']} | {r['family']} | {r['K']} | {r['n']:,} | {r['positions_per_s'] / 1e6:.1f} M "
                    f"| {r['max_abs_dev']:.3f} | {ra} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small n; finishes in under a minute")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table instead of JSON")
    parser.add_argument("--block-size", type=int, default=4096, help="B, the global batch size (default 4096)")
    parser.add_argument("--chunk-blocks", type=int, default=64, help="blocks per lookup_range call (default 64)")
    args = parser.parse_args(argv)
    n = 2**21 if args.quick else 2**24
    greedy_budget = 2**24 if args.quick else 2**27  # positions x languages for the O(nK) greedy rule
    repeats = 2 if args.quick else 3
    b = args.block_size
    results = []
    for k in (10, 100, 1000):
        weights = uint_weights(np.random.default_rng(k).dirichlet(np.ones(k)))
        n_greedy = max(b * 64, min(n, greedy_budget // k) // b * b)
        results.append(bench_block_exact(weights, n, b, args.chunk_blocks, repeats, "dirichlet"))
        results.append(bench_numpy(weights, n, b, repeats))
        results.append(bench_torch(weights, n, b, repeats))
        results.append(bench_greedy(weights, n_greedy, b, repeats))
    skew = np.full(500, 0.5 / 499)
    skew[0] = 0.5
    results.append(bench_block_exact(uint_weights(skew), n, b, args.chunk_blocks, repeats, "skewed"))
    by = {(r["method"], r["family"], r["K"]): r for r in results}
    speedup = {f"K={k}": by[("block-exact", "dirichlet", k)]["positions_per_s"]
               / by[("megatron-greedy", "dirichlet", k)]["positions_per_s"] for k in (10, 100, 1000)}
    report = {"benchmark": "sampler", "quick": args.quick, "block_size": b, "machine": machine(),
              "block_exact_speedup_over_greedy": speedup, "order": bench_order(2**20 if not args.quick else 2**17),
              "results": results}
    print(markdown(report) if args.markdown else json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
