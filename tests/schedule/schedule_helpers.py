"""Weights for the schedule tests and benchmark: exact uint64 weights summing to 2**32."""

from __future__ import annotations

import numpy as np

TOTAL = 2**32


def to_weights(raw) -> np.ndarray:
    """Non-negative numbers (not all zero) -> uint64 weights summing to exactly 2**32."""
    raw = [int(x) for x in raw]
    total = sum(raw)
    weights = [x * TOTAL // total for x in raw]
    weights[max(range(len(raw)), key=lambda i: raw[i])] += TOTAL - sum(weights)
    return np.array(weights, dtype=np.uint64)


def dirichlet_weights(k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return to_weights(np.round(rng.dirichlet(np.ones(k)) * 2**52))


def skewed_weights(k: int) -> np.ndarray:
    """One language at one half, the other k - 1 sharing the rest equally."""
    return to_weights([(k - 1) * 2**20] + [2**20] * (k - 1))


