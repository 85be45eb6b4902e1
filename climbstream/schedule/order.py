"""Which sample of a language is its k-th draw: seeded, shard-local epoch permutations.

The schedule says "language i, draw k"; a `LanguageOrder` turns k into (shard, index,
epoch). Promises:

- Without replacement: draws k = e*N .. (e+1)*N - 1 (N = samples per epoch) visit every
  sample of the language exactly once; epoch e+1 starts when epoch e is exhausted, which
  is how a small language is upsampled (and how epochs are counted for caps).
- Shard locality: each epoch shuffles the shard order, cuts the shuffled order into
  windows of `window_shards` consecutive shards, and shuffles samples only inside a
  window. The draws of one window are consecutive, so a reader holds at most
  `window_shards` shards of a language open at a time.
- Random access: `locate(k)` costs O(1) per k after an O(shards) table per epoch (cached),
  so k = 10**12 costs the same as k = 0; nothing is materialized per sample.
- Determinism: keyed by (seed, language key, epoch) with the counter-based generator of
  `rng.py`; the key comes from the language NAME (`language_key`), not its index, so
  adding a language to a corpus leaves the others' orders unchanged.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from numba import njit

from climbstream.errors import ScheduleError
from climbstream.schedule.rng import (
    TAG_ORDER,
    TAG_SHARDS,
    TAG_WINDOW,
    chain_key,
    derive_key,
    feistel_half_bits,
    permute_index,
    shuffle_in_place,
)

_EPOCH_CACHE = 8


def language_key(name: str) -> int:
    """A stable uint64 for a language name: the first 8 bytes of blake2b(name), little-endian."""
    if not isinstance(name, str) or not name:
        raise ScheduleError(f"language name {name!r}: must be a non-empty string")
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")


def draws_of(ks, key: int) -> np.ndarray:
    """Draws `ks` as a flat int64 array, refused by name when not non-negative integers."""
    ks = np.asarray(ks)
    if ks.dtype.kind not in "iu":
        raise ScheduleError(f"language key {key}: draws k must be integers, got dtype {ks.dtype}")
    ks = ks.astype(np.int64).ravel()
    if ks.size and int(ks.min()) < 0:
        raise ScheduleError(f"language key {key}: draw k = {int(ks.min())} is negative")
    return ks


@njit(cache=True)
def _epoch_tables(sizes, window_shards, epoch_key):
    """Shuffled shard order and the sample offsets of shards and windows in that order."""
    m = sizes.shape[0]
    perm = np.arange(m).astype(np.int64)
    shuffle_in_place(perm, derive_key(epoch_key, TAG_SHARDS))
    shard_offsets = np.zeros(m + 1, dtype=np.int64)
    for j in range(m):
        shard_offsets[j + 1] = shard_offsets[j] + sizes[perm[j]]
    num_windows = (m + window_shards - 1) // window_shards
    window_offsets = np.empty(num_windows + 1, dtype=np.int64)
    for w in range(num_windows):
        window_offsets[w] = shard_offsets[w * window_shards]
    window_offsets[num_windows] = shard_offsets[m]
    return perm, shard_offsets, window_offsets


@njit(cache=True)
def _locate_in_epoch(ranks, perm, shard_offsets, window_offsets, epoch_key, out_shard, out_index):
    """Map ranks r in [0, N) of one epoch to (shard, index in shard)."""
    window_base = derive_key(epoch_key, TAG_WINDOW)
    for t in range(ranks.shape[0]):
        r = ranks[t]
        w = np.searchsorted(window_offsets, r, side="right") - 1
        lo = window_offsets[w]
        n = window_offsets[w + 1] - lo
        inner = permute_index(np.uint64(r - lo), np.uint64(n),
                              derive_key(window_base, np.uint64(w)), feistel_half_bits(np.uint64(n)))
        g = lo + np.int64(inner)
        j = np.searchsorted(shard_offsets, g, side="right") - 1
        out_shard[t] = perm[j]
        out_index[t] = g - shard_offsets[j]


class LanguageOrder:
    """The epoch-by-epoch, shard-local order of one language's samples.

    `shard_samples[s]` is the number of samples in shard s (the manifest's order);
    `key` is `language_key(name)`. See the module docstring for the promises.
    """

    def __init__(self, seed: int, key: int, shard_samples: Sequence[int], window_shards: int = 4) -> None:
        sizes = np.asarray(shard_samples)
        if sizes.ndim != 1 or sizes.size == 0 or sizes.dtype.kind not in "iu":
            raise ScheduleError(
                f"language key {key}: shard_samples must be a non-empty list of integer sample "
                f"counts, one per shard (got {np.asarray(shard_samples).dtype} of shape {sizes.shape})"
            )
        if (sizes < 0).any():
            bad = int(np.nonzero(sizes < 0)[0][0])
            raise ScheduleError(f"language key {key}: shard {bad} has {int(sizes[bad])} samples; counts must be >= 0")
        if int(sizes.sum()) == 0:
            raise ScheduleError(
                f"language key {key}: all {sizes.size} shards are empty; a language needs at least one "
                "sample (drop it from the manifest or give it weight 0)"
            )
        if isinstance(window_shards, bool) or not isinstance(window_shards, (int, np.integer)) or window_shards < 1:
            raise ScheduleError(f"window_shards {window_shards!r}: must be a positive integer")
        self.seed = int(seed)
        self.key = int(key)
        self.window_shards = int(window_shards)
        self._sizes = sizes.astype(np.int64)
        self._order_key = chain_key(TAG_ORDER, seed, key)
        self._tables: OrderedDict[int, tuple] = OrderedDict()

    @property
    def samples_per_epoch(self) -> int:
        return int(self._sizes.sum())

    @property
    def num_shards(self) -> int:
        return int(self._sizes.size)

    def _epoch(self, epoch: int) -> tuple:
        tables = self._tables.get(epoch)
        if tables is None:
            epoch_key = chain_key(self._order_key, epoch)
            tables = (*_epoch_tables(self._sizes, self.window_shards, epoch_key), epoch_key)
            self._tables[epoch] = tables
            if len(self._tables) > _EPOCH_CACHE:
                self._tables.popitem(last=False)
        else:
            self._tables.move_to_end(epoch)
        return tables

    def shard_order(self, epoch: int) -> np.ndarray:
        """The shuffled shard order of `epoch` (windows are consecutive runs of it)."""
        return self._epoch(int(epoch))[0].copy()

    def locate(self, ks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shard, index, epoch) as int64 arrays for draws `ks` (non-negative integers)."""
        ks = draws_of(ks, self.key)
        n = self.samples_per_epoch
        epochs, ranks = np.divmod(ks, n)
        shard = np.empty(ks.size, dtype=np.int64)
        index = np.empty(ks.size, dtype=np.int64)
        if ks.size == 0:
            return shard, index, epochs
        first, last = int(epochs.min()), int(epochs.max())
        for epoch in range(first, last + 1) if last - first < 4 else np.unique(epochs).tolist():
            if first == last:
                selected, sub_ranks = slice(None), ranks
            else:
                selected = np.nonzero(epochs == epoch)[0]
                if selected.size == 0:
                    continue
                sub_ranks = ranks[selected]
            perm, shard_offsets, window_offsets, epoch_key = self._epoch(epoch)
            sub_shard = np.empty(sub_ranks.size, dtype=np.int64)
            sub_index = np.empty(sub_ranks.size, dtype=np.int64)
            _locate_in_epoch(sub_ranks, perm, shard_offsets, window_offsets, epoch_key, sub_shard, sub_index)
            shard[selected] = sub_shard
            index[selected] = sub_index
        return shard, index, epochs
