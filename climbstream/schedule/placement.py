"""Where a global batch's draws sit under a partitioned order: each in its owner's slice.

Why: the schedule fixes which draws (language, k) make up global batch b; the
partitioned order (`parts.py`) says which partition owns each draw's sample. Positions
[bB, (b+1)B) are cut into P slices of L = B / P, slice q for partition q, so the ranks
of a node read slices whose samples that node owns. Partition q owns T_q(b) of the
block's draws, which is not exactly L; the draws a slice cannot hold are "foreign": they
sit in another partition's slice and are read there from a shard its node does not own.

The rule, a pure function of the block (O(B + P)):
1. Walk the draws in the schedule's own (seeded, shuffled) block order; a draw takes the
   next free position of its owner's slice while that slice has room.
2. The overflow draws, sorted by owner (stable), fill the free positions in ascending
   order: the i-th overflow draw takes the i-th free position. Matching two sorted lists
   is the least total distance (positions, and with contiguous node shares, nodes) an
   overflow draw can travel, so spills stay between neighbouring partitions, which are on
   one node whenever a node holds several partitions.
3. Each slice is shuffled by Fisher-Yates keyed by (seed, P, block, q), so the foreign
   draws are not all on the slice's last rank.

Foreign draws per block: F(b) = sum_q max(0, T_q(b) - L), the least any placement can
have with these owners. Its bound is proven in docs/schedule.md ("Partitioned order").
"""

from __future__ import annotations

import numpy as np
from numba import njit

from climbstream.schedule.rng import derive_key, shuffle_in_place


@njit(cache=True)
def place_blocks(owner, block_size, partitions, key, first_block, out, foreign):
    """Arrange consecutive blocks; `owner` holds each draw's partition in schedule order.

    Writes out[p] = the index (into `owner`) of the draw at position p (relative to the
    first block) and foreign[b] = F of block first_block + b.
    """
    n_blocks = owner.shape[0] // block_size
    width = block_size // partitions
    filled = np.zeros(partitions, dtype=np.int64)
    over_count = np.zeros(partitions + 1, dtype=np.int64)
    over = np.empty(block_size, dtype=np.int64)
    over_sorted = np.empty(block_size, dtype=np.int64)
    for b in range(n_blocks):
        base = b * block_size
        filled[:] = 0
        over_count[:] = 0
        n_over = 0
        for d in range(base, base + block_size):
            q = owner[d]
            if filled[q] < width:
                out[base + q * width + filled[q]] = d
                filled[q] += 1
            else:
                over[n_over] = d
                n_over += 1
                over_count[q + 1] += 1
        foreign[b] = n_over
        if n_over:
            for q in range(partitions):  # counting sort of the overflow by owner, stable
                over_count[q + 1] += over_count[q]
            for t in range(n_over):
                d = over[t]
                q = owner[d]
                over_sorted[over_count[q]] = d
                over_count[q] += 1
            t = 0
            for q in range(partitions):
                for s in range(filled[q], width):
                    out[base + q * width + s] = over_sorted[t]
                    t += 1
        block_key = derive_key(key, np.uint64(first_block + b))
        for q in range(partitions):
            lo = base + q * width
            shuffle_in_place(out[lo:lo + width], derive_key(block_key, np.uint64(q)))
