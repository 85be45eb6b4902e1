"""The partitioned sample order: a node's positions draw from that node's own shards.

Why: in the unpartitioned order a language's consecutive draws are spread over every
rank's slice, so at N nodes every node downloads every shard of every language's window
(the corpus N times over). Here, with a partition count P fixed for the run:

- the schedule is unchanged: global batch b holds exactly the same draws (language i,
  its k-th occurrence) as without partitions, so its composition keeps the < 2 bound;
- draw k of language i belongs to partition q and is sample j of q's part of the
  language (`parts.py`: round robin with a per-language phase, exact per epoch);
- the sample is found by a LanguageOrder over the part's pieces of shards (keyed by the
  language, P and q): without replacement and window-local inside the part;
- the block's draws are arranged over its B positions so that partition q's draws fill
  slice q (L = B / P positions) and the overflow fills the other slices' gaps
  (`placement.py`); node n, whose ranks read a contiguous range of slices, owns the
  partitions of those slices.

The stream is a pure function of (seed, manifest, stages, position, P). A range of
positions costs what the schedule's block generation costs (O(B + K) per block) plus
O(B + P) for the arrangement and, per (language, partition, epoch) present, O(shards of
the part) for its epoch tables. P = 1 is not handled here: the caller keeps the
unpartitioned order, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from climbstream.errors import ScheduleError
from climbstream.schedule.order import _epoch_tables, _locate_in_epoch
from climbstream.schedule.parts import LanguageParts, check_partitions, phase_of
from climbstream.schedule.placement import place_blocks
from climbstream.schedule.rng import TAG_ORDER, TAG_PARTITION, chain_key, derive_key, to_u64


def part_key(key: int, partitions: int, q: int) -> int:
    """The order key of partition q's part of the language with key `key`."""
    return int(chain_key(to_u64(key), partitions, q))


@njit(cache=True)
def _locate_groups(order, bounds, lang, q, j, epoch, offset, size, cum, cum_start, keys, seed_key,
                   partitions, window_shards, out_shard, out_index):
    """(shard, index) of draws grouped by (language, partition, epoch).

    Draws order[bounds[g]:bounds[g+1]] share one group. A group builds its part's pieces
    (the non-empty shards the part's sample range covers, clipped to it) and that part's epoch
    tables, exactly as LanguageOrder(seed, part_key, pieces, window).locate would.
    """
    for g in range(bounds.shape[0] - 1):
        d0 = order[bounds[g]]
        i = lang[d0]
        lo = offset[d0]
        hi = lo + size[d0]
        c = cum[cum_start[i]:cum_start[i + 1]]
        first = np.searchsorted(c, lo, side="right") - 1
        last = np.searchsorted(c, hi - 1, side="right") - 1
        pieces = np.empty(last - first + 1, dtype=np.int64)
        shard_of = np.empty(last - first + 1, dtype=np.int64)
        m = 0
        for s in range(first, last + 1):
            if c[s + 1] > c[s]:  # empty shards are no pieces
                pieces[m] = min(c[s + 1], hi) - max(c[s], lo)
                shard_of[m] = s
                m += 1
        pieces = pieces[:m]
        key_q = derive_key(derive_key(keys[i], np.uint64(partitions)), np.uint64(q[d0]))
        epoch_key = derive_key(derive_key(seed_key, key_q), np.uint64(epoch[d0]))
        perm, shard_offsets, window_offsets = _epoch_tables(pieces, window_shards, epoch_key)
        n = bounds[g + 1] - bounds[g]
        ranks = np.empty(n, dtype=np.int64)
        for t in range(n):
            ranks[t] = j[order[bounds[g] + t]]
        piece = np.empty(n, dtype=np.int64)
        index = np.empty(n, dtype=np.int64)
        _locate_in_epoch(ranks, perm, shard_offsets, window_offsets, epoch_key, piece, index)
        for t in range(n):
            d = order[bounds[g] + t]
            s = shard_of[piece[t]]
            out_shard[d] = s
            out_index[d] = index[t] + max(c[s], lo) - c[s]


class PartitionedOrders(list):
    """The languages' orders under P partitions (P >= 2).

    A list of the unpartitioned per-language orders (so `samples_per_epoch` and epoch
    caps read as before) that also knows the partitioning; `plan_range` in
    climbstream/stream/plan/plan.py asks it for the arrays of a range of positions.
    `shard_samples[i]` are language i's shard sizes in manifest order, `keys[i]` its
    `language_key`.

    The deal works on units: a language is one unit, except a language that grew
    (a GrownOrder, schedule/growth.py), whose draws are routed to its segments (the old
    epoch's order, its appended shards, the grown set), each a unit dealt to the
    partitions on its own. So the appended shards get owners like any part, and an
    unchanged language is dealt exactly as before.
    """

    def __init__(self, orders: Sequence, shard_samples: Sequence[Sequence[int]], keys: Sequence[int], seed: int,
                 window_shards: int, partitions: int) -> None:
        super().__init__(orders)
        self.partitions = check_partitions(partitions)
        if self.partitions < 2:
            raise ScheduleError("PartitionedOrders needs P >= 2; P = 1 is the unpartitioned order")
        self.seed = int(seed)
        self.window_shards = int(window_shards)
        self.keys = [int(k) for k in keys]
        self.shard_samples = [np.asarray(s, dtype=np.int64) for s in shard_samples]
        sizes, unit_keys, offsets, first = [], [], [], []
        self._grown = []
        for i, order in enumerate(orders):
            first.append(len(sizes))
            segments = getattr(order, "segments", None)
            if segments is None:
                sizes.append(self.shard_samples[i])
                unit_keys.append(self.keys[i])
                offsets.append(0)
                continue
            self._grown.append(i)
            for lo, hi, key, _ in segments:
                sizes.append(self.shard_samples[i][lo:hi])
                unit_keys.append(int(key))
                offsets.append(lo)
        first.append(len(sizes))
        self._first_unit = np.array(first, dtype=np.int64)
        self._unit_offset = np.array(offsets, dtype=np.int64)
        self._unit_sizes = sizes
        samples = [int(s.sum()) for s in sizes]
        self.parts = LanguageParts(samples, [phase_of(seed, k, self.partitions) for k in unit_keys], self.partitions)
        cums = [np.concatenate([[0], np.cumsum(s)]).astype(np.int64) for s in sizes]
        self._cum = np.concatenate(cums) if cums else np.zeros(0, dtype=np.int64)
        self._cum_start = np.concatenate([[0], np.cumsum([c.size for c in cums])]).astype(np.int64)
        self._keys = np.array([to_u64(k) for k in unit_keys], dtype=np.uint64)
        self._seed_key = chain_key(TAG_ORDER, self.seed)
        self._place_key = chain_key(TAG_PARTITION, self.seed, self.partitions)

    def _units(self, lang: int) -> range:
        return range(int(self._first_unit[lang]), int(self._first_unit[lang + 1]))

    def part_shards(self, lang: int, q: int) -> list[tuple[int, int, int]]:
        """Part q of `lang` as pieces (shard, first index, samples): the shards it reads (every unit's)."""
        out = []
        for u in self._units(lang):
            lo = int(self.parts.offsets(u, q))
            hi = lo + int(self.parts.sizes(u, q))
            cum = np.concatenate([[0], np.cumsum(self._unit_sizes[u])]).tolist()
            base = int(self._unit_offset[u])
            out += [(base + s, max(cum[s], lo) - cum[s], min(cum[s + 1], hi) - max(cum[s], lo))
                    for s in range(len(cum) - 1) if min(cum[s + 1], hi) > max(cum[s], lo)]
        return out

    def _owned_in_unit(self, u: int, first: int, stop: int) -> np.ndarray:
        lo = int(self.parts.offsets(u, first))
        hi = int(self.parts.offsets(u, stop))
        cum = np.concatenate([[0], np.cumsum(self._unit_sizes[u])])
        return np.maximum(np.minimum(cum[1:], hi) - np.maximum(cum[:-1], lo), 0).astype(np.int64)

    def owned_samples(self, lang: int, first: int, stop: int) -> np.ndarray:
        """int64[shards]: samples of each shard of `lang` that partitions [first, stop) own.

        Partitions [first, stop) own one contiguous sample range of the language, so this
        is a clip per shard. A node whose partitions own most of a shard reads it whole;
        one that owns a sliver of it (a boundary shard, a language with fewer shards than
        nodes) or none (a foreign draw) reads its samples by range (docs/schedule.md). A
        grown language: the most any of its units owns of the shard.
        """
        owned = np.zeros(self.shard_samples[lang].size, dtype=np.int64)
        for u in self._units(lang):
            o = self._owned_in_unit(u, first, stop)
            base = int(self._unit_offset[u])
            owned[base:base + o.size] = np.maximum(owned[base:base + o.size], o)
        return owned

    def window_batches(self, lang: int, share: float, global_batch: int) -> float:
        """Global batches one partition takes to train through a window of its part of `lang`.

        A partition gets `share` x B / P of the language's draws per global batch (the deal
        is round robin, exact per epoch) and its part's order walks windows of
        `window_shards` pieces; the window here is the mean one, min(part, W x mean shard).
        A whole shard stays in the node's cache about this long before the node has trained
        on its share of it. inf for a language with no draws or no samples. A grown
        language: its largest unit (the grown set).
        """
        units = self._units(lang)
        if share <= 0 or not len(units):
            return float("inf")
        u = max(units, key=lambda unit: int(self.parts.samples[unit]))
        samples = int(self.parts.samples[u])
        shards = int((self._unit_sizes[u] > 0).sum())
        if samples == 0:
            return float("inf")
        window = min(samples / self.partitions, self.window_shards * samples / shards)
        return window / (share * global_batch / self.partitions)

    def read_whole(self, lang: int, first: int, stop: int, share: float | None = None, global_batch: int = 0,
                   within: float = float("inf")) -> np.ndarray:
        """bool[shards]: which shards of `lang` a node holding partitions [first, stop) reads whole.

        The rule of docs/schedule.md ("What a node downloads"): whole where its partitions
        own at least half of the shard (so per epoch a shard is read whole by at most two
        nodes: at most 2 bytes per byte trained, plus the foreign draws) and the node trains
        through its window of the language within `within` global batches at the language's
        `share` of the draws (so a short run, or a tail language drawn a few times per
        batch, does not download shards it barely uses); every other sample by range.
        `share` None: the ownership rule alone.
        """
        owned = self.owned_samples(lang, first, stop)
        whole = (owned > 0) & (2 * owned >= self.shard_samples[lang])
        if share is not None and not self.window_batches(lang, share, global_batch) <= within:
            whole[:] = False
        return whole

    def locate(self, lang, q, j, epoch) -> tuple[np.ndarray, np.ndarray]:
        """(shard, index) of sample j of part q of `lang` in `epoch`, elementwise (a language that
        did not grow: its one unit)."""
        lang = np.asarray(lang, dtype=np.int64)
        return self._locate_units(self._first_unit[lang], q, j, epoch)

    def _locate_units(self, unit, q, j, epoch) -> tuple[np.ndarray, np.ndarray]:
        unit = np.asarray(unit, dtype=np.int64)
        q, j, epoch = (np.asarray(a, dtype=np.int64) for a in (q, j, epoch))
        shard = np.empty(unit.size, dtype=np.int64)
        index = np.empty(unit.size, dtype=np.int64)
        if unit.size == 0:
            return shard, index
        group = unit * self.partitions + q
        order = np.lexsort((epoch, group))
        g, e = group[order], epoch[order]
        starts = np.flatnonzero(np.r_[True, (g[1:] != g[:-1]) | (e[1:] != e[:-1])])
        bounds = np.r_[starts, unit.size].astype(np.int64)
        _locate_groups(order.astype(np.int64), bounds, unit, q, j, epoch, self.parts.offsets(unit, q),
                       self.parts.sizes(unit, q), self._cum, self._cum_start, self._keys, self._seed_key,
                       self.partitions, self.window_shards, shard, index)
        return shard + self._unit_offset[unit], index

    def _route(self, lang: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(unit, draw within the unit, epoch or None) of the languages' draws; None: every draw's
        epoch is its unit's (no grown language among them)."""
        unit = self._first_unit[lang]
        if not self._grown:
            return unit, k, None
        k_unit = k.copy()
        epoch = np.full(k.size, -1, dtype=np.int64)
        for i in self._grown:
            mask = lang == i
            if mask.any():
                segment, k_unit[mask], epoch[mask] = self[i].route(k[mask])
                unit[mask] = self._first_unit[i] + segment
        return unit, k_unit, epoch

    def _arrange(self, schedule, first_block: int, last_block: int) -> tuple[np.ndarray, ...]:
        block = schedule.block_size
        if block % self.partitions:
            raise ScheduleError(
                f"global batch {block} is not divisible by partitions {self.partitions}; each partition reads "
                f"global_batch / partitions positions of every global batch: choose a global batch that is a "
                f"multiple of {self.partitions} or a partition count that divides {block}"
            )
        lang, k = schedule.lookup_range(first_block * block, (last_block + 1) * block)
        unit, k_unit, route_epoch = self._route(lang, k)  # a retired language's draw fails here, naming it
        empty = self.parts.samples[unit] == 0
        if empty.any() and self[int(lang[empty][0])] is not None:  # its own error, naming the language
            self[int(lang[empty][0])].locate(k[empty][:1])
        q, j, epoch = self.parts.deal(unit, k_unit)
        shown = epoch if route_epoch is None else np.where(route_epoch >= 0, route_epoch, epoch)
        at = np.empty(lang.size, dtype=np.int64)
        foreign = np.empty(last_block - first_block + 1, dtype=np.int64)
        place_blocks(q, np.int64(block), np.int64(self.partitions), self._place_key, np.int64(first_block), at,
                     foreign)
        return lang[at], k[at], q[at], j[at], shown[at], foreign, unit[at], epoch[at]

    def arrange(self, schedule, first_block: int, last_block: int) -> tuple[np.ndarray, ...]:
        """Blocks [first_block, last_block] in position order: (lang, k, owner, j, epoch, foreign).

        `foreign[b]` counts the block's draws placed outside their owner's slice.
        """
        return self._arrange(schedule, first_block, last_block)[:6]

    def plan_arrays(self, schedule, start: int, stop: int) -> tuple[np.ndarray, ...]:
        """(lang, k, shard, index, epoch, owner) of positions [start, stop)."""
        if stop <= start:
            empty = np.empty(0, dtype=np.int64)
            return np.empty(0, dtype=np.int32), empty, empty, empty, empty, empty
        block = schedule.block_size
        first, last = start // block, (stop - 1) // block
        lang, k, q, j, epoch, _, unit, unit_epoch = self._arrange(schedule, first, last)
        cut = slice(start - first * block, stop - first * block)
        lang, k, q, j, epoch, unit, unit_epoch = (a[cut] for a in (lang, k, q, j, epoch, unit, unit_epoch))
        shard, index = self._locate_units(unit, q, j, unit_epoch)
        return lang, k, shard, index, epoch, q
