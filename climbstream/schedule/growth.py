"""A language's order across a growing corpus: every sample once per epoch, across changes.

Why: a long run takes in new shards mid-epoch. Rebuilding the epoch permutation over the
grown shard list would re-draw samples the epoch already trained on and never reach as
many others (benchmarks/growth.py before this module: 61, 80 and 80 samples per language
repeated within the epoch holding the change). Here a change at draw c of a language
(c = the schedule's count of the language at the stage start, exact and O(B + K) to
compute) splits the language's draws into three runs:

- draws < c: exactly the order before the change (so positions before it are unchanged);
- the rest of the epoch the change falls in (if c is inside one): its unseen samples,
  still in the old epoch permutation's order, interleaved with the appended samples in
  a seeded window-local order of their own; the epoch becomes old length + appended long;
- from the end of that epoch on: whole epochs of the grown set, keyed by the version.

Promises (tests/schedule/test_growth.py checks them against a brute-force replay):

- Exactly once: draws of one epoch visit each sample of that epoch's set once; the epoch
  a change falls in holds the old samples and the appended ones, each once.
- Interleave: of the t first draws after the change, floor(t A / T) are appended samples
  (A appended, T = unseen + A), so new data is spread evenly over the rest of the epoch
  and a reader holds at most 2 windows of the language at a time (one old, one new).
- Random access: `locate(k)` is O(V) per draw for V versions of the language (a few
  comparisons per version, then LanguageOrder's O(1)); the tables are O(shards) per
  version and epoch, cached. Nothing is materialized per sample.
- A language whose old shards went away (removed or rewritten: `restart`) starts fresh
  epochs of its new set at c; its draws before c can no longer be located (the shards
  are gone), and its count is carried on so epoch caps count across the change.

A version with no samples (a language added later, or retired) may not be drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from climbstream.errors import ScheduleError
from climbstream.schedule.order import LanguageOrder, draws_of
from climbstream.schedule.rng import chain_key, to_u64

TAG_GROWTH = np.uint64(0x47524F5754480000)  # "GROWTH": the orders of a corpus version
TAG_APPENDED = np.uint64(0x415050454E440000)  # "APPEND": the appended samples of a change


@dataclass(frozen=True)
class Version:
    """One corpus version of a language, from its `first_draw` on.

    `shards` is the number of shards (a prefix of the current shard list unless a later
    version restarted), `samples` their sample count; `restart`: the previous version's
    samples are gone (shards removed or rewritten), so nothing of its epoch continues.
    """

    first_draw: int
    shards: int
    samples: int
    restart: bool = False


class _Span:
    """How one version lays out draws from its first draw on (numbers only, no tables)."""

    def __init__(self, version: Version, previous: "_Span | None") -> None:
        self.version = version
        self.previous = previous
        c = version.first_draw
        if previous is None:
            if c != 0:
                raise ScheduleError(f"the first corpus version starts at draw {c}; it must start at 0")
            self.epoch_number, self.epoch_start, self.epoch_length = 0, 0, 0
            self.appended = 0
            self.transition_end = 0
            self.regular_epoch = 0
            return
        if c < previous.version.first_draw:
            raise ScheduleError(f"corpus version at draw {c} starts before the previous one "
                                f"(draw {previous.version.first_draw}); versions are appended in draw order")
        e, s, n = previous.span_at(c)
        consumed = c - s
        self.appended = version.samples - previous.version.samples
        if version.restart or consumed == 0 or n == 0:
            self.epoch_number, self.epoch_start, self.epoch_length = e, s, n
            self.transition_end = c
            self.regular_epoch = e + 1 if consumed else e
        else:
            if self.appended < 0:
                raise ScheduleError(f"corpus version at draw {c}: {version.samples} samples, fewer than the "
                                    f"{previous.version.samples} before; a shrunk language must restart")
            self.epoch_number, self.epoch_start = e, s
            self.epoch_length = n + self.appended
            self.transition_end = s + self.epoch_length
            self.regular_epoch = e + 1

    @property
    def has_transition(self) -> bool:
        return self.transition_end > self.version.first_draw

    def span_at(self, k: int) -> tuple[int, int, int]:
        """(epoch number, first draw, length) of the epoch holding draw k (k >= first_draw)."""
        if self.has_transition and k < self.transition_end:
            return self.epoch_number, self.epoch_start, self.epoch_length
        n = self.version.samples
        if n == 0:
            return self.regular_epoch, self.transition_end, 0
        j = (k - self.transition_end) // n
        return self.regular_epoch + j, self.transition_end + j * n, n

    def epoch_bounds(self, epoch: int) -> tuple[int, int]:
        """(first draw, length) of epoch number `epoch`."""
        if epoch >= self.regular_epoch:
            n = self.version.samples
            return self.transition_end + (epoch - self.regular_epoch) * n, n
        if self.has_transition and epoch == self.epoch_number:
            return self.epoch_start, self.epoch_length
        if self.previous is None:
            return 0, 0
        return self.previous.epoch_bounds(epoch)


class GrownOrder:
    """The order of one language over its corpus versions (see the module docstring).

    `shard_samples` is the current shard list's sample counts (manifest order); each
    version's shards are a prefix of it from the last restart on. `key` is the language's
    `language_key`. With one version this is exactly `LanguageOrder(seed, key, ...)`.
    """

    def __init__(self, seed: int, key: int, shard_samples: Sequence[int], versions: Sequence[Version],
                 window_shards: int = 4) -> None:
        if not versions:
            raise ScheduleError(f"language key {key}: a grown order needs at least one corpus version")
        sizes = np.asarray(shard_samples, dtype=np.int64)
        self.seed, self.key, self.window_shards = int(seed), int(key), int(window_shards)
        self.versions = list(versions)
        self._sizes = sizes
        last_restart = max([i for i, v in enumerate(self.versions) if v.restart], default=0)
        self._spans: list[_Span] = []
        # the sub-orders draws are routed to: (first shard, shard stop, key, LanguageOrder)
        self.segments: list[tuple[int, int, int, LanguageOrder]] = []
        self._regular: list[int] = []  # segment of version i's whole epochs, -1 where it has none
        self._new: list[int] = []  # segment of version i's appended samples, -1 where it has none
        previous = None
        for i, v in enumerate(self.versions):
            span = _Span(v, previous)
            self._spans.append(span)
            previous = span
            locatable = i >= last_restart
            if locatable and (v.shards > sizes.size or int(sizes[:v.shards].sum()) != v.samples):
                raise ScheduleError(
                    f"language key {key}: corpus version {i} has {v.shards} shards of {v.samples} samples, which "
                    f"is not a prefix of the current {sizes.size} shards; the shard list was rewritten")
            version_key = key if i == 0 else int(chain_key(TAG_GROWTH, to_u64(key), i))
            self._regular.append(self._segment(0, v.shards, version_key) if locatable and v.samples else -1)
            old_shards = self.versions[i - 1].shards if i else 0
            self._new.append(self._segment(old_shards, v.shards, int(chain_key(TAG_APPENDED, to_u64(key), i)))
                             if locatable and span.has_transition and span.appended > 0 else -1)
        self._last_restart = last_restart

    def _segment(self, lo: int, hi: int, key: int) -> int:
        self.segments.append((lo, hi, key, LanguageOrder(self.seed, key, self._sizes[lo:hi], self.window_shards)))
        return len(self.segments) - 1

    @property
    def samples_per_epoch(self) -> int:
        """Samples of the current version (an epoch from the last change's epoch on)."""
        return int(self.versions[-1].samples)

    @property
    def num_shards(self) -> int:
        return int(self.versions[-1].shards)

    def first_draw(self) -> int:
        """The draw the current version starts at (0 without a change)."""
        return int(self.versions[-1].first_draw)

    def epoch_at(self, k: int) -> tuple[int, int, int]:
        """(epoch number, first draw, length) of the epoch holding draw k."""
        span = self._span_of(int(k))
        return span.span_at(int(k))

    def draws_within_epochs(self, epochs: float) -> int:
        """Draws of the language that `epochs` epochs hold, counted across the changes.

        floor(epochs) whole epochs, plus the fraction of the next epoch's length: with one
        version this is floor(epochs * samples), the epoch cap of an unchanged corpus.
        """
        whole = int(np.floor(epochs))
        start, length = self._spans[-1].epoch_bounds(whole)
        return int(start + np.floor((epochs - whole) * length))

    def _span_of(self, k: int) -> _Span:
        for span in reversed(self._spans):
            if k >= span.version.first_draw:
                return span
        return self._spans[0]

    def locate(self, ks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shard, index, epoch) as int64 arrays for draws `ks` (non-negative integers)."""
        segment, k, epoch = self.route(ks)
        shard = np.empty(segment.size, dtype=np.int64)
        index = np.empty(segment.size, dtype=np.int64)
        for g in np.unique(segment).tolist():
            mask = segment == g
            lo, _, _, order = self.segments[g]
            s, i, _ = order.locate(k[mask])
            shard[mask], index[mask] = s + lo, i
        return shard, index, epoch

    def route(self, ks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(segment, draw within the segment's order, epoch) of draws `ks`: `segments[g]` is a plain
        LanguageOrder over shards [lo, hi) whose draw k' is the language's draw (the partitioned
        order deals each segment's draws to partitions as it deals a language's)."""
        ks = draws_of(ks, self.key)
        return self._route(len(self._spans) - 1, ks)

    def _route(self, v: int, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        segment = np.empty(ks.size, dtype=np.int64)
        k_out = np.empty(ks.size, dtype=np.int64)
        epoch = np.empty(ks.size, dtype=np.int64)
        if ks.size == 0:
            return segment, k_out, epoch
        span = self._spans[v]
        c = span.version.first_draw
        before = ks < c
        if before.any():
            if v <= self._last_restart:
                raise ScheduleError(
                    f"language key {self.key}: draw {int(ks[before][0])} is before the corpus change at draw {c} "
                    "that replaced its shards; those samples are no longer in the corpus")
            segment[before], k_out[before], epoch[before] = self._route(v - 1, ks[before])
        if span.has_transition:
            inside = (ks >= c) & (ks < span.transition_end)
            if inside.any():
                t = ks[inside] - c
                total = span.transition_end - c
                new_before = (t * span.appended) // total
                is_new = ((t + 1) * span.appended) // total > new_before
                g = np.empty(t.size, dtype=np.int64)
                kk = np.empty(t.size, dtype=np.int64)
                if (~is_new).any():  # the old epoch's unseen ranks, in its own order
                    g[~is_new], kk[~is_new], _ = self._route(v - 1, c + (t - new_before)[~is_new])
                g[is_new], kk[is_new] = self._new[v], new_before[is_new]
                segment[inside], k_out[inside], epoch[inside] = g, kk, span.epoch_number
        regular = ks >= span.transition_end
        if regular.any():
            if self._regular[v] < 0:
                raise ScheduleError(
                    f"language key {self.key}: draw {int(ks[regular][0])} falls in a corpus version with no "
                    "samples of this language; give it weight 0 from that change on")
            k = ks[regular] - span.transition_end
            segment[regular], k_out[regular] = self._regular[v], k
            epoch[regular] = k // span.version.samples + span.regular_epoch
        return segment, k_out, epoch
