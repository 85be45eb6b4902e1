"""Counter-based random numbers and seeded permutations for the schedule and the orders.

Why counter-based: every random choice is a pure function of (seed, what, index), so any
block of the stream and any draw k of a language can be produced without replaying what
came before, and identically on every machine. Only uint64 integer arithmetic is used (no
library RNG whose stream could change between numpy or torch versions), so a stream is
fixed by `ALGORITHM_VERSION` alone.

The generator is splitmix64 (Steele, Lea, Flood 2014): output j of stream `key` is
`mix64(key + (j + 1) * GOLDEN)`. Keys for nested contexts (seed -> stage -> block) are
derived with `derive_key`, which is mix64 applied to both parts, so neighbouring contexts
get unrelated streams.

All functions here are numba kernels; they take and return `np.uint64` (numba would turn
mixed int64/uint64 arithmetic into floats, so callers convert before calling).
"""

from __future__ import annotations

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)

# Domain tags keep the schedule's and the orders' streams apart for the same seed.
TAG_SCHEDULE = np.uint64(0x5343484544554C45)  # "SCHEDULE"
TAG_ORDER = np.uint64(0x4F52444552000000)  # "ORDER"
TAG_SHARDS = np.uint64(0x5348415244530000)  # "SHARDS"
TAG_WINDOW = np.uint64(0x57494E444F570000)  # "WINDOW"
TAG_PARTITION = np.uint64(0x5041525453000000)  # "PARTS": the partitioned order (partition.py)

FEISTEL_ROUNDS = 6


def to_u64(value: int) -> np.uint64:
    """A Python int reduced modulo 2**64 (seeds and keys may be any int the caller has)."""
    return np.uint64(int(value) % (1 << 64))


@njit(cache=True)
def mix64(z):
    """The splitmix64 finalizer: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def derive_key(parent, index):
    """The key of child `index` (uint64) of context `parent` (uint64)."""
    return mix64(parent ^ mix64(index + GOLDEN))


@njit(cache=True)
def random_u32(key, counter):
    """Output number `counter` of stream `key`, as the high 32 bits (a uint64 < 2**32)."""
    return mix64(key + (counter + _ONE) * GOLDEN) >> np.uint64(32)


@njit(cache=True)
def bounded(key, counter, n):
    """An exactly uniform integer in [0, n) for 1 <= n <= 2**32, and the next counter.

    Lemire's multiply-shift with rejection (2019): a draw is rejected with probability
    below n / 2**32, so the result carries no modulo bias.
    """
    while True:
        m = random_u32(key, counter) * n
        counter += _ONE
        low = m & _LOW32
        if low >= n:
            return m >> np.uint64(32), counter
        threshold = ((_LOW32 + _ONE) - n) % n
        if low >= threshold:
            return m >> np.uint64(32), counter


@njit(cache=True)
def shuffle_in_place(values, key):
    """Fisher-Yates shuffle of `values` (length <= 2**32) driven by stream `key`."""
    counter = _ZERO
    for i in range(values.shape[0] - 1, 0, -1):
        j, counter = bounded(key, counter, np.uint64(i + 1))
        tmp = values[i]
        values[i] = values[j]
        values[j] = tmp


@njit(cache=True)
def feistel_half_bits(n):
    """Half the bit width of the smallest even-width power of two >= n (at least 1)."""
    half = 1
    while (np.uint64(1) << np.uint64(2 * half)) < n:
        half += 1
    return half


@njit(cache=True)
def permute_index(x, n, key, half_bits):
    """Image of x in [0, n) under a seeded bijection of [0, n), in O(1) expected time.

    A balanced Feistel network on 2*half_bits bits is a bijection of [0, 4**half_bits);
    cycle walking (apply it again until the value lands below n) restricts it to a
    bijection of [0, n). The domain is below 4n, so fewer than 4 walks are expected.
    """
    half = np.uint64(half_bits)
    mask = (_ONE << half) - _ONE
    round_keys = np.empty(FEISTEL_ROUNDS, dtype=np.uint64)
    for r in range(FEISTEL_ROUNDS):
        round_keys[r] = derive_key(key, np.uint64(r))
    while True:
        left = x >> half
        right = x & mask
        for r in range(FEISTEL_ROUNDS):
            f = mix64(right ^ round_keys[r]) & mask
            left, right = right, left ^ f
        x = (left << half) | right
        if x < n:
            return x


def chain_key(root: np.uint64, *indices: int) -> np.uint64:
    """derive_key applied along `indices` from Python (ints reduced modulo 2**64).

    numba returns uint64 results to Python as plain ints, which it would then refuse as
    int64 arguments; this keeps them np.uint64 between calls.
    """
    key = np.uint64(root)
    for index in indices:
        key = np.uint64(derive_key(key, to_u64(index)))
    return key
