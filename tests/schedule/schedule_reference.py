"""Slow, obviously-correct pure-Python references for the schedule and the orders.

Python ints throughout (no overflow, no numba, no numpy in the arithmetic), written from
the specification in climbstream/schedule/kernels.py and order.py, not from the kernels.
"""

from __future__ import annotations

import heapq

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
TAG_SCHEDULE = 0x5343484544554C45
TAG_ORDER = 0x4F52444552000000
TAG_SHARDS = 0x5348415244530000
TAG_WINDOW = 0x57494E444F570000


def mix64(z: int) -> int:
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def derive(parent: int, index: int) -> int:
    return mix64(parent ^ mix64(index + GOLDEN))


def shuffle(values: list, key: int) -> None:
    """Fisher-Yates with exactly uniform draws (rejection on the 32-bit product)."""
    counter = 0

    def draw(n: int) -> int:
        nonlocal counter
        while True:
            r = mix64(key + (counter + 1) * GOLDEN) >> 32
            counter += 1
            m = r * n
            if (m & 0xFFFFFFFF) >= (2**32 - n) % n:
                return m >> 32

    for i in range(len(values) - 1, 0, -1):
        j = draw(i + 1)
        values[i], values[j] = values[j], values[i]


def huffman(weights: list[int]) -> tuple[int, dict]:
    """(root, {node: (w, left, right, lang)}) merging the two lightest, ties by creation id."""
    nodes = {}
    heap = []
    for lang, w in enumerate(weights):
        if w > 0:
            nodes[len(nodes)] = (w, None, None, lang)
            heap.append((w, len(nodes) - 1))
    heapq.heapify(heap)
    while len(heap) > 1:
        wa, a = heapq.heappop(heap)
        wb, b = heapq.heappop(heap)
        nodes[len(nodes)] = (wa + wb, a, b, None)
        heapq.heappush(heap, (wa + wb, len(nodes) - 1))
    return heap[0][1], nodes


def tree_counts(weights: list[int], q: int) -> list[int]:
    """Each language's count at relative block boundary q: round-half-up splits from the root."""
    root, nodes = huffman(weights)
    counts = [0] * len(weights)
    stack = [(root, q)]
    while stack:
        v, c = stack.pop()
        w, a, b, lang = nodes[v]
        if lang is not None:
            counts[lang] = c
            continue
        c_left = (2 * nodes[a][0] * c + w) // (2 * w)
        stack.append((a, c_left))
        stack.append((b, c - c_left))
    return counts


def stream(num_languages: int, block_size: int, seed: int, stages: list[tuple[int, list[int]]],
           num_positions: int) -> tuple[list[int], list[int]]:
    """Sequential generation: languages and ks, counting occurrences as it goes."""
    seed_key = derive(TAG_SCHEDULE, seed % 2**64)
    seen = [0] * num_languages
    langs, ks = [], []
    stage_base = None
    for block in range(-(-num_positions // block_size)):
        p = block * block_size
        s = max(i for i, (start, _) in enumerate(stages) if start <= p)
        start, weights = stages[s]
        if p == start:
            stage_base = list(seen)
        before = tree_counts(weights, p - start)
        after = tree_counts(weights, p + block_size - start)
        labels = [i for i in range(num_languages) for _ in range(after[i] - before[i])]
        assert len(labels) == block_size
        shuffle(labels, derive(derive(seed_key, s), block))
        for i in labels:
            langs.append(i)
            ks.append(seen[i])
            seen[i] += 1
        assert seen == [stage_base[i] + after[i] for i in range(num_languages)]
    return langs[:num_positions], ks[:num_positions]


def feistel(x: int, n: int, key: int) -> int:
    half = 1
    while 4**half < n:
        half += 1
    mask = (1 << half) - 1
    while True:
        left, right = x >> half, x & mask
        for r in range(6):
            left, right = right, left ^ (mix64(right ^ derive(key, r)) & mask)
        x = (left << half) | right
        if x < n:
            return x


def locate(seed: int, key: int, sizes: list[int], window_shards: int, k: int) -> tuple[int, int, int]:
    """(shard, index, epoch) of draw k, materializing the epoch's shard order."""
    n = sum(sizes)
    epoch, r = divmod(k, n)
    epoch_key = derive(derive(derive(TAG_ORDER, seed % 2**64), key % 2**64), epoch)
    order = list(range(len(sizes)))
    shuffle(order, derive(epoch_key, TAG_SHARDS))
    windows = [order[i:i + window_shards] for i in range(0, len(order), window_shards)]
    lo = 0
    for w, shards in enumerate(windows):
        total = sum(sizes[s] for s in shards)
        if r < lo + total:
            g = feistel(r - lo, total, derive(derive(epoch_key, TAG_WINDOW), w))
            for s in shards:
                if g < sizes[s]:
                    return s, g, epoch
                g -= sizes[s]
        lo += total
    raise AssertionError("unreachable")
