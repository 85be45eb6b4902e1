"""Which language sits at global stream position p: the block-exact, staged schedule.

A `Schedule` is a pure function of (num_languages, block_size, seed, stages). A stage is
`Stage(start, weights)`: from `start` on, languages are drawn in the ratios of the integer
`weights` (summing to 2**32). Promises:

- Exact proportions: at every block boundary p inside a stage starting at S,
  |count_i(p) - count_i(S) - w_i (p - S) / 2**32| < 2 (`Schedule.bound`; proof in
  `climbstream.schedule.kernels`), for any weights, K and p.
- Resumable re-weighting: appending a stage at p changes nothing before p, and each
  language's k (how many of it came before) continues across the boundary, so with a
  per-language order on top, no sample repeats or is skipped.
- Random access: `lookup(p)` and `counts_at(p)` cost O(B + K), independent of p
  (p = 10**12 is as fast as p = 0); `lookup_range` generates whole ranges in O(n + K).
- Determinism: integer arithmetic and a counter-based RNG only, so every machine, process
  and worker gets the same stream (pinned by `ALGORITHM_VERSION`).

Ratios are sample ratios; v1 packs every sample to exactly seq_len tokens, so they are
token ratios too (docs/schedule.md).
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from climbstream.errors import ScheduleError
from climbstream.schedule import kernels
from climbstream.schedule.rng import TAG_SCHEDULE, chain_key
from climbstream.schedule.tree import MixingTree, build_tree
from climbstream.schedule.weights import check_integer_weights

logger = logging.getLogger(__name__)

# Bump when any stream this module produces changes for the same inputs.
ALGORITHM_VERSION = 1
MAX_POSITION = 2**62  # the largest position a stream has: the one bound, checked by the config and the state


def _check_weights(weights, where: str) -> np.ndarray:
    array = np.asarray(weights)
    if array.ndim != 1 or array.size == 0:
        raise ScheduleError(f"{where}: weights must be a non-empty 1-D array, got shape {array.shape}")
    if array.dtype == object:
        try:
            ints = [int(x) for x in array.tolist()]
        except (TypeError, ValueError) as exc:
            raise ScheduleError(f"{where}: weights must be integers ({exc})") from exc
        if any(x != y for x, y in zip(ints, array.tolist())):
            raise ScheduleError(f"{where}: weights must be integers")
        array = np.array(ints, dtype=object)
    elif array.dtype.kind not in "iu":
        raise ScheduleError(
            f"{where}: weights have dtype {array.dtype}; they must be integers summing to 2**32 "
            "(turn ratios into them with climbstream.schedule.weights.integer_weights)"
        )
    out = np.array(check_integer_weights(array.tolist(), where), dtype=np.uint64)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Stage:
    """From position `start` on, draw languages in the ratios weights / 2**32.

    `weights` is uint64[K], non-negative, summing to exactly 2**32 (checked here; the
    length is checked against the schedule's K when the stage is added).
    """

    start: int
    weights: np.ndarray

    def __post_init__(self) -> None:
        if isinstance(self.start, bool) or not isinstance(self.start, (int, np.integer)) or self.start < 0:
            raise ScheduleError(f"stage start {self.start!r}: must be a non-negative integer position")
        object.__setattr__(self, "start", int(self.start))
        object.__setattr__(self, "weights", _check_weights(self.weights, f"stage at {self.start}"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.start == other.start and np.array_equal(self.weights, other.weights)

    def __hash__(self) -> int:
        return hash((self.start, self.weights.tobytes()))

    def __repr__(self) -> str:
        return f"Stage(start={self.start}, weights=<uint64[{self.weights.size}]>)"


def _check_position(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ScheduleError(f"{what} {value!r}: must be an integer stream position")
    value = int(value)
    if not 0 <= value < MAX_POSITION:
        raise ScheduleError(f"{what} {value}: must be in [0, 2**62)")
    return value


class Schedule:
    """The block-exact staged schedule; see the module docstring for its promises.

    `block_size` B is the global batch size; `seed` any int (reduced modulo 2**64).
    """

    bound: float = 2.0
    """Proven bound on |count_i - target_i| at every block boundary, any weights."""

    def __init__(self, num_languages: int, block_size: int, seed: int, stages: Sequence[Stage] = ()) -> None:
        if isinstance(num_languages, bool) or not isinstance(num_languages, (int, np.integer)) or num_languages < 1:
            raise ScheduleError(f"num_languages {num_languages!r}: must be a positive integer")
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or not 1 <= block_size <= 2**31:
            raise ScheduleError(
                f"block_size {block_size!r}: must be an integer in [1, 2**31]; use the global batch size"
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ScheduleError(f"seed {seed!r}: must be an integer")
        self.num_languages = int(num_languages)
        self.block_size = int(block_size)
        self.seed = int(seed)
        self._seed_key = chain_key(TAG_SCHEDULE, self.seed)
        self._stages: list[Stage] = []
        self._starts: list[int] = []
        self._trees: list[MixingTree] = []
        self._bases: list[np.ndarray] = []
        self._keys: list[np.uint64] = []
        for stage in stages:
            self.add_stage(stage.start, stage.weights)

    # -- stages -----------------------------------------------------------------
    @property
    def stages(self) -> list[Stage]:
        return list(self._stages)

    def add_stage(self, start: int, weights) -> Stage:
        """Append a stage that starts at `start` (a multiple of B after the last start).

        Nothing before `start` changes; each language's count carries over, so its k
        values continue without repeat or gap. The first stage must start at 0.
        """
        start = _check_position(start, "stage start")
        index = len(self._stages)
        stage = Stage(start, weights)
        if stage.weights.size != self.num_languages:
            raise ScheduleError(
                f"stage {index} at {start}: {stage.weights.size} weights for {self.num_languages} "
                "languages; give one weight per language (0 to leave a language out)"
            )
        if start % self.block_size:
            raise ScheduleError(
                f"stage {index} at {start}: start is not a multiple of the block size "
                f"{self.block_size}; start it at {(start // self.block_size + 1) * self.block_size}"
            )
        if index == 0 and start != 0:
            raise ScheduleError(f"stage 0 at {start}: the first stage must start at position 0")
        if index > 0 and start <= self._starts[-1]:
            raise ScheduleError(
                f"stage {index} at {start}: must start after the last stage (at {self._starts[-1]}); "
                "stages are appended in position order"
            )
        if index == 0:
            base = np.zeros(self.num_languages, dtype=np.int64)
        else:
            base = self._counts_at_boundary(index - 1, start)
        tree = build_tree(stage.weights)
        self._stages.append(stage)
        self._starts.append(start)
        self._trees.append(tree)
        self._bases.append(base)
        self._keys.append(chain_key(self._seed_key, index))
        logger.debug("stage %d at %d: %d languages, tree bound %.3f", index, start,
                     int((stage.weights > 0).sum()), tree.error_bound())
        return stage

    def stage_index(self, position: int) -> int:
        """The index of the stage that position belongs to."""
        position = _check_position(position, "position")
        if not self._stages:
            raise ScheduleError("the schedule has no stages; call add_stage(0, weights) first")
        return bisect.bisect_right(self._starts, position) - 1

    def stage_bound(self, index: int) -> float:
        """The sharper bound that stage `index`'s own tree guarantees (always < `bound`)."""
        return self._trees[index].error_bound()

    # -- counts -----------------------------------------------------------------
    def _counts_at_boundary(self, index: int, position: int) -> np.ndarray:
        tree = self._trees[index]
        return kernels.tree_counts(tree.weight, tree.left, tree.right, tree.lang,
                                   np.int64(position - self._starts[index]), self._bases[index])

    def counts_at(self, position: int) -> np.ndarray:
        """int64[K]: occurrences of each language at positions before `position`."""
        s = self.stage_index(position)
        offset = position % self.block_size
        block_start = position - offset
        counts = self._counts_at_boundary(s, block_start)
        if offset:
            langs, _ = self._fill(s, block_start, position)
            counts += np.bincount(langs, minlength=self.num_languages)
        return counts

    def block_counts(self, block: int) -> np.ndarray:
        """int64[K]: the composition of global batch `block` (positions [bB, (b+1)B))."""
        block = _check_position(block, "block")
        start = block * self.block_size
        s = self.stage_index(start)
        return self._counts_at_boundary(s, start + self.block_size) - self._counts_at_boundary(s, start)

    # -- positions --------------------------------------------------------------
    def _fill(self, s: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        n = stop - start
        langs = np.empty(n, dtype=np.int32)
        ks = np.empty(n, dtype=np.int64)
        if n:
            tree = self._trees[s]
            kernels.fill_range(tree.weight, tree.left, tree.right, tree.lang, tree.end,
                               self._bases[s], np.int64(self._starts[s]), self._keys[s],
                               np.int64(self.block_size), np.int64(start), np.int64(stop), langs, ks)
        return langs, ks

    def lookup(self, position: int) -> tuple[int, int]:
        """(language index, k): the language at `position` and how often it came before."""
        position = _check_position(position, "position")
        langs, ks = self.lookup_range(position, position + 1)
        return int(langs[0]), int(ks[0])

    def lookup_range(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(int32 languages, int64 ks) of positions [start, stop), across stages."""
        start = _check_position(start, "start")
        stop = _check_position(stop, "stop")
        if stop < start:
            raise ScheduleError(f"lookup_range({start}, {stop}): stop is before start")
        if start == stop:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
        first = self.stage_index(start)
        last = self.stage_index(stop - 1)
        if first == last:
            return self._fill(first, start, stop)
        parts = []
        for s in range(first, last + 1):
            lo = max(start, self._starts[s])
            hi = stop if s == last else min(stop, self._starts[s + 1])
            parts.append(self._fill(s, lo, hi))
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
