"""Slow, obviously-correct pure-Python reference for the partitioned order.

Written from the specification in climbstream/schedule/parts.py, placement.py and
partitioned.py, not from their code: the deal is simulated rank by rank, parts are
explicit lists of samples, and a block is arranged with Python lists.
"""

from __future__ import annotations

import schedule_reference as ref

TAG_PARTITION = 0x5041525453000000


def phase(seed: int, key: int, partitions: int) -> int:
    return ref.derive(ref.derive(ref.derive(TAG_PARTITION, seed % 2**64), key % 2**64), partitions) % partitions


class ReferenceLanguage:
    """One language's deal table (rank -> (q, j)) and its parts as lists of (shard, index)."""

    def __init__(self, seed: int, key: int, sizes: list[int], window: int, partitions: int):
        self.seed, self.key, self.window, self.partitions = seed, key, window, partitions
        self.samples = [(s, i) for s, size in enumerate(sizes) for i in range(size)]
        f = phase(seed, key, partitions)
        count = [0] * partitions
        self.deal = []
        for r in range(len(self.samples)):
            q = (r + f) % partitions
            self.deal.append((q, count[q]))
            count[q] += 1
        self.parts = []
        offset = 0
        for q in range(partitions):
            self.parts.append(self.samples[offset:offset + count[q]])
            offset += count[q]

    def sample(self, k: int) -> tuple[int, int, int, int]:
        """(owner q, shard, index, epoch) of draw k."""
        epoch, r = divmod(k, len(self.samples))
        q, j = self.deal[r]
        part = self.parts[q]
        pieces: list[list] = []
        for item in part:
            if pieces and pieces[-1][0][0] == item[0]:
                pieces[-1].append(item)
            else:
                pieces.append([item])
        part_key = ref.derive(ref.derive(self.key, self.partitions), q)
        piece, index, _ = ref.locate(self.seed, part_key, [len(p) for p in pieces], self.window,
                                     epoch * len(part) + j)
        shard, inner = pieces[piece][index]
        return q, shard, inner, epoch


def arrange(owners: list[int], partitions: int, seed: int, block: int) -> tuple[list[int], int]:
    """Draw index at each position of one block, and the number of foreign draws."""
    width = len(owners) // partitions
    slices: list[list[int]] = [[] for _ in range(partitions)]
    overflow = []
    for d, q in enumerate(owners):
        (slices[q] if len(slices[q]) < width else overflow).append(d)
    overflow.sort(key=lambda d: owners[d])  # stable: schedule order within an owner
    foreign = len(overflow)
    for q in range(partitions):
        while len(slices[q]) < width:
            slices[q].append(overflow.pop(0))
    out = []
    block_key = ref.derive(ref.derive(ref.derive(TAG_PARTITION, seed % 2**64), partitions), block)
    for q in range(partitions):
        ref.shuffle(slices[q], ref.derive(block_key, q))
        out.extend(slices[q])
    return out, foreign


def foreign_bound(langs: list[int], ks: list[int], samples: list[int], partitions: int) -> float:
    """sum over the block's same-epoch runs of each language of rho (P - rho) / P, rho = length mod P."""
    runs: dict[tuple[int, int], int] = {}
    for lang, k in zip(langs, ks):
        key = (lang, k // samples[lang])
        runs[key] = runs.get(key, 0) + 1
    return sum((n % partitions) * (partitions - n % partitions) / partitions for n in runs.values())
