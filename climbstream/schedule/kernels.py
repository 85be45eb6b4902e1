"""Numba kernels of the block-exact schedule: tree counts and block generation.

Promise (block-exact mode). Let a stage start at position S with integer weights w_i
summing to W = 2**32, and let q = p - S for a block boundary p of that stage. Then

    | count_i(p) - count_i(S) - w_i * q / W |  <  2      for every language i and every q,

and count_i is non-decreasing in p, so every block's composition n_i(b) is >= 0 and sums
to B. The bound does not depend on p, K or the weights.

Proof. The counts come from the stage's Huffman tree (`tree.py`): the root's count at q
is q; an inner node v with count C_v and children a (left), b (right) gives
C_a = floor(w_a * C_v / w_v + 1/2) and C_b = C_v - C_a. Write C_a = w_a C_v / w_v + d_a
with |d_a| <= 1/2; then C_b = w_b C_v / w_v - d_a, so both children carry a fresh rounding
term of size <= 1/2. With e_v = C_v - w_v q / W (e_root = 0) this reads
e_child = (w_child / w_v) * e_v + d_child. Unrolled along the path root = v_0, ..., v_d =
leaf:  e_leaf = sum_{j=1..d} (w_leaf / w_{v_j}) * d_j,  so |e_leaf| <= 1/2 sum_j w_leaf/w_{v_j}.
Lemma: in a Huffman tree the grandparent g of any node x weighs >= 2 w_x. (Merged weights
are non-decreasing over the merges: after popping the two smallest a <= b, every item left
and the new a+b are >= b, so the next pair sums to >= 2b >= a+b. When x merged with its
sibling s they were the two smallest items; the sibling y of their parent u either existed
then, so y >= x, or was merged later, so y >= u >= x. Hence g = x + s + y >= 2 w_x.)
So w_leaf / w_{v_{d-2t}} <= 2**-t and w_leaf / w_{v_{d-1-2t}} <= 2**-t, and the finite sum
is < 2 * (1 + 1/2 + 1/4 + ...) = 4; with the factor 1/2, |e_leaf| < 2.  Monotone: when C_v
grows by one, C_a grows by 0 or 1 (w_a / w_v < 1), so C_b grows by 1 or 0; by induction
from the root every count is non-decreasing and the splits conserve the total.  QED.
`MixingTree.error_bound()` gives the sharper bound of a particular tree.

Integer arithmetic only: w_a * C_v can exceed 2**64 (C_v ~ 10**12, w_a ~ 2**32), so the
split writes C_v = a * w_v + r (r < w_v <= 2**32) and rounds w_a * r / w_v, whose product
stays below 2**64. The stream is therefore bit-identical on every machine.

Inside a block the labels are laid out in language order (n_i copies of i) and shuffled by
Fisher-Yates driven by the counter-based stream keyed by (seed, stage, block), so any block
is generated on its own in O(B + nodes) time. A language's k at a position is its count at
the block start plus its occurrences earlier in the block.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from climbstream.schedule.rng import derive_key, shuffle_in_place

_ONE = np.uint64(1)


@njit(cache=True)
def split_count(w_left, w_node, count):
    """round_half_up(w_left * count / w_node) for uint64 inputs, without overflow.

    Requires w_left < w_node <= 2**32 (then w_left * r < 2**64 for r < w_node).
    """
    a = count // w_node
    r = count - a * w_node
    prod = w_left * r
    quotient = prod // w_node
    rem = prod - quotient * w_node
    result = w_left * a + quotient
    if rem + rem >= w_node:
        result += _ONE
    return result


@njit(cache=True)
def _descend_full(weight, left, right, node_count, q):
    """Fill node_count (uint64[n]) with every node's count at relative position q."""
    node_count[0] = np.uint64(q)
    for v in range(weight.shape[0]):
        lft = left[v]
        if lft >= 0:
            c_left = split_count(weight[lft], weight[v], node_count[v])
            node_count[lft] = c_left
            node_count[right[v]] = node_count[v] - c_left


@njit(cache=True)
def tree_counts(weight, left, right, lang, q, base):
    """base (int64[K]) plus each language's count at relative block boundary q."""
    node_count = np.empty(weight.shape[0], dtype=np.uint64)
    _descend_full(weight, left, right, node_count, q)
    out = base.copy()
    for v in range(weight.shape[0]):
        if lang[v] >= 0:
            out[lang[v]] += np.int64(node_count[v])
    return out


@njit(cache=True)
def fill_range(weight, left, right, lang, end, base, stage_start, stage_key,
               block_size, start, stop, out_lang, out_k):
    """Languages and k values of positions [start, stop), all inside one stage.

    `base` holds the counts at the stage start, `stage_key` the stage's uint64 key.
    From one block to the next only the tree nodes whose count changed are revisited
    (a child's count is a function of its parent's alone), so a block costs
    O(B + changed nodes); the first block also pays one full descent.
    """
    n_nodes = weight.shape[0]
    num_langs = base.shape[0]
    first_block = start // block_size
    last_block = (stop - 1) // block_size
    node_count = np.empty(n_nodes, dtype=np.uint64)
    changed = np.zeros(n_nodes, dtype=np.uint8)
    _descend_full(weight, left, right, node_count, first_block * block_size - stage_start)
    current = base.copy()  # count of each language before the current position
    for v in range(n_nodes):
        if lang[v] >= 0:
            current[lang[v]] += np.int64(node_count[v])
    present = np.empty(min(num_langs, block_size), dtype=np.int64)
    delta = np.zeros(num_langs, dtype=np.int64)
    labels = np.empty(block_size, dtype=np.int32)

    for block in range(first_block, last_block + 1):
        block_start = block * block_size
        q_end = np.uint64(block_start + block_size - stage_start)
        if node_count[0] != q_end:
            node_count[0] = q_end
            changed[0] = 1
        m = 0
        total = 0
        v = 0
        while v < n_nodes:
            if changed[v] == 0:
                v = end[v]
                continue
            changed[v] = 0
            lft = left[v]
            if lft < 0:
                i = lang[v]
                delta[i] = base[i] + np.int64(node_count[v]) - current[i]
                present[m] = i
                total += delta[i]
                m += 1
            else:
                rgt = right[v]
                c_left = split_count(weight[lft], weight[v], node_count[v])
                c_right = node_count[v] - c_left
                if c_left != node_count[lft]:
                    node_count[lft] = c_left
                    changed[lft] = 1
                if c_right != node_count[rgt]:
                    node_count[rgt] = c_right
                    changed[rgt] = 1
            v += 1

        if total != block_size:  # cannot happen for a tree from build_tree (splits conserve)
            raise ValueError("schedule kernel: block composition does not sum to the block size")
        # Lay out n_i copies of each language i in ascending i: sort the few present
        # languages, or scan all K when most are present (cheaper than the sort then).
        fill = 0
        if 16 * m < num_langs:
            langs_here = np.sort(present[:m])
            for t in range(m):
                i = langs_here[t]
                for _ in range(delta[i]):
                    labels[fill] = i
                    fill += 1
                delta[i] = 0
        else:
            for i in range(num_langs):
                for _ in range(delta[i]):
                    labels[fill] = i
                    fill += 1
                delta[i] = 0
        shuffle_in_place(labels, derive_key(stage_key, np.uint64(block)))

        lo = max(start - block_start, 0)
        hi = min(stop - block_start, block_size)
        for o in range(hi):
            i = labels[o]
            k = current[i]
            current[i] = k + 1
            if o >= lo:
                out_lang[block_start + o - start] = i
                out_k[block_start + o - start] = k
