"""Each language's samples and draws split over P partitions: closed forms, no tables.

Why: at N nodes a node should download about 1/N of a language, so each partition owns
one part of every language and the language's draws are dealt to the parts at the rate
of their sizes. The split is a pure function of (N_i, P, phase), so any position is
placed in O(1) and nothing about it is saved beyond P.

For language i with N samples per epoch and phase f in [0, P) (derived from the seed and
the language NAME, so languages deal their leftovers to different partitions):

- Draw k is in epoch e = k // N with rank r = k - e N. Write r' = r + f. Its partition
  is q = r' mod P (round robin, shifted by the phase) and its index in that partition's
  part is j = r' // P - [q < f]: the number of earlier ranks of the epoch dealt to q.
- Part q holds the samples [o_q, o_q + N_q) of the language's shards laid end to end in
  manifest order, with o_q = #{t in [f, f+N): t mod P < q} and N_q = o_{q+1} - o_q,
  which is floor(N / P) or ceil(N / P). So (q, j) with j < N_q is a bijection of the
  epoch's ranks onto the parts: without replacement within an epoch stays exact, and
  every part is exhausted at the epoch's last draw.
- Contiguous parts touch each shard of a language at most once, except at the P - 1
  part boundaries: over an epoch the partitions together open at most m + P - 1
  (partition, shard) pairs for a language of m shards. A language with fewer samples
  than partitions leaves some parts empty and its few shards are read by up to P
  partitions (docs/schedule.md, "Partitioned order").
- In any run of n consecutive draws inside one epoch each partition gets floor(n / P)
  or ceil(n / P) of them (a run that crosses an epoch boundary is two runs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from climbstream.errors import ScheduleError
from climbstream.schedule.rng import TAG_PARTITION, chain_key, to_u64


def check_partitions(partitions, where: str = "partitions") -> int:
    """P as an int in [1, 2**20] (ScheduleError naming `where` otherwise)."""
    if isinstance(partitions, bool) or not isinstance(partitions, (int, np.integer)) or not 1 <= partitions <= 2**20:
        raise ScheduleError(f"{where} {partitions!r}: must be an integer in [1, 2**20] (1 = the unpartitioned order)")
    return int(partitions)


def phase_of(seed: int, key: int, partitions: int) -> int:
    """The partition that rank 0 of language `key`'s epochs is dealt to."""
    return int(chain_key(TAG_PARTITION, to_u64(seed), to_u64(key), partitions)) % partitions


def _below(x: np.ndarray, q: np.ndarray, partitions: int) -> np.ndarray:
    """#{t in [0, x): t mod P < q} for 0 <= q <= P."""
    return (x // partitions) * q + np.minimum(x % partitions, q)


class LanguageParts:
    """The split of K languages over P partitions (vectorized over languages).

    `samples[i]` is N_i (0 for a language with no training samples; drawing it is an
    error the caller reports), `phases[i]` the phase f_i.
    """

    def __init__(self, samples: Sequence[int], phases: Sequence[int], partitions: int) -> None:
        self.partitions = check_partitions(partitions)
        self.samples = np.asarray(samples, dtype=np.int64)
        self.phases = np.asarray(phases, dtype=np.int64)
        if self.samples.shape != self.phases.shape or (self.samples < 0).any():
            raise ScheduleError("LanguageParts: one non-negative sample count and one phase per language")
        if ((self.phases < 0) | (self.phases >= self.partitions)).any():
            raise ScheduleError(f"LanguageParts: phases must lie in [0, {self.partitions})")

    def offsets(self, lang, q) -> np.ndarray:
        """o_q: first sample (in the language's concatenated shards) of part q of `lang`."""
        lang = np.asarray(lang)
        q = np.asarray(q, dtype=np.int64)
        f = self.phases[lang]
        n = self.samples[lang]
        return _below(f + n, q, self.partitions) - _below(f, q, self.partitions)

    def sizes(self, lang, q) -> np.ndarray:
        """N_q: samples of part q of `lang` (floor or ceil of N / P)."""
        q = np.asarray(q, dtype=np.int64)
        return self.offsets(lang, q + 1) - self.offsets(lang, q)

    def deal(self, lang, k) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(partition q, index j in its part, epoch e) of draw k of `lang`, elementwise."""
        lang = np.asarray(lang)
        k = np.asarray(k, dtype=np.int64)
        n = self.samples[lang]
        if k.size and (n == 0).any():
            bad = int(np.asarray(lang).ravel()[np.nonzero(np.ravel(n == 0))[0][0]])
            raise ScheduleError(f"language {bad} has no training samples but was scheduled; give it weight 0")
        f = self.phases[lang]
        epoch, r = np.divmod(k, np.where(n == 0, 1, n))
        shifted = r + f
        q = shifted % self.partitions
        j = shifted // self.partitions - (q < f)
        return q, j, epoch
