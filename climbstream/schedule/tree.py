"""The weight-balanced (Huffman) tree that splits a stage's positions among languages.

Why a tree: rounding each language's cumulative target w_i * q / W on its own (largest
remainder) is not monotone in q (the Alabama paradox), so a block could need a negative
count; a sequential carry (Megatron's greedy rule, Bresenham) is monotone but needs the
whole history, so random access would cost O(q). Splitting the count top-down through a
binary tree keeps both: every node's count is a rounded, monotone function of its
parent's count alone, so the counts at any q cost O(nodes) and never decrease.

Why Huffman: the error a node inherits from its parent is scaled by the ratio of their
weights, and in a Huffman tree every node's grandparent weighs at least twice as much as
the node, so the inherited errors form a geometric series and the total stays below 2
for any weights and any K (proof in `climbstream.schedule.kernels`).

The tree is built once per stage in plain Python (O(K log K)) and stored as flat arrays
in preorder (root first, each subtree contiguous) so the kernels descend it with one
forward loop and skip an unchanged subtree in one jump.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class MixingTree:
    """A Huffman tree over the languages with non-zero weight, in preorder arrays.

    Node 0 is the root. For node v: `weight[v]` is the sum of its leaves' integer weights;
    `left[v]`/`right[v]` are child node indices (-1 for a leaf); `lang[v]` is the
    language index of a leaf (-1 for an inner node); `end[v]` is one past the last node
    of v's subtree, so nodes v..end[v]-1 are exactly v's subtree.
    """

    weight: np.ndarray  # uint64[n]
    left: np.ndarray  # int64[n]
    right: np.ndarray  # int64[n]
    lang: np.ndarray  # int64[n]
    end: np.ndarray  # int64[n]

    @property
    def num_nodes(self) -> int:
        return int(self.weight.shape[0])

    def error_bound(self) -> float:
        """The bound the proof gives for this tree: max over leaves of 1/2 * sum w_leaf/w_v.

        The sum runs over the nodes v on the path from the leaf up to, not including, the
        root. Always below 2; much smaller for near-uniform weights.
        """
        worst = 0.0
        parent = np.full(self.num_nodes, -1, dtype=np.int64)
        inner = self.left >= 0
        parent[self.left[inner]] = np.nonzero(inner)[0]
        parent[self.right[inner]] = np.nonzero(inner)[0]
        for leaf in np.nonzero(self.lang >= 0)[0]:
            total, v = 0.0, int(leaf)
            while parent[v] >= 0:
                total += float(self.weight[leaf]) / float(self.weight[v])
                v = int(parent[v])
            worst = max(worst, 0.5 * total)
        return worst


def build_tree(weights: np.ndarray) -> MixingTree:
    """Huffman-merge the non-zero weights; ties go to the lower index, deterministically.

    Leaves get creation ids 0..M-1 in language order and merged nodes ids M, M+1, ...;
    the heap orders by (weight, id), and the first node popped becomes the left child.
    `weights` must hold at least one non-zero entry (the Schedule checks that).
    """
    langs = [i for i, w in enumerate(weights.tolist()) if w > 0]
    node_weight: list[int] = [int(weights[i]) for i in langs]
    children: list[tuple[int, int] | None] = [None] * len(langs)
    heap = [(w, i) for i, w in enumerate(node_weight)]
    heapq.heapify(heap)
    while len(heap) > 1:
        w_left, left = heapq.heappop(heap)
        w_right, right = heapq.heappop(heap)
        node_weight.append(w_left + w_right)
        children.append((left, right))
        heapq.heappush(heap, (w_left + w_right, len(node_weight) - 1))
    root = heap[0][1]

    n = len(node_weight)
    order: list[int] = []  # creation ids in preorder
    stack = [root]
    while stack:
        v = stack.pop()
        order.append(v)
        if children[v] is not None:
            left, right = children[v]
            stack.append(right)
            stack.append(left)
    position = {v: i for i, v in enumerate(order)}

    weight = np.empty(n, dtype=np.uint64)
    left_arr = np.full(n, -1, dtype=np.int64)
    right_arr = np.full(n, -1, dtype=np.int64)
    lang = np.full(n, -1, dtype=np.int64)
    for i, v in enumerate(order):
        weight[i] = node_weight[v]
        if children[v] is None:
            lang[i] = langs[v]
        else:
            left_arr[i] = position[children[v][0]]
            right_arr[i] = position[children[v][1]]
    end = np.empty(n, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        end[i] = i + 1 if left_arr[i] < 0 else end[right_arr[i]]
    return MixingTree(weight, left_arr, right_arr, lang, end)
