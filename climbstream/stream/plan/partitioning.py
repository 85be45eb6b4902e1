"""The partition count P of a run, and which node counts can read it efficiently.

Why: the partitioned order (docs/schedule.md) is a function of P, so P is fixed for the
run like the seed and saved in the state; the node count may change between runs. Node n
(ranks [n * rpn, (n+1) * rpn), torchrun's numbering) reads positions [n B/N, (n+1) B/N)
of every global batch, and partition q's slice is [q B/P, (q+1) B/P). So:

- N divides P: node n reads exactly the slices of partitions [n P/N, (n+1) P/N) and
  downloads only their shards (1/N of the corpus);
- P divides N: N/P nodes share each partition's slice and each downloads its partition's
  shards (1/P of the corpus each): correct, and as good as P allows;
- otherwise a node's positions cut partitions in pieces and it downloads parts of several:
  refused with an error naming the node counts that work, since a run that silently
  downloads twice what it should is the failure this order exists to prevent.

The stream itself never depends on N: every compatible node count reads the same samples
at the same positions.
"""

from __future__ import annotations

import os

from climbstream.errors import ConfigError
from climbstream.schedule.parts import check_partitions


def default_partitions(world_size: int | None, ranks_per_node: int | None) -> int:
    """The first run's node count where the constructor can tell it, else 1.

    Known: ranks_per_node (or torchrun's LOCAL_WORLD_SIZE) and the world size (explicit,
    torch.distributed's, or WORLD_SIZE). Otherwise 1 (the unpartitioned order): set
    `partitions` to be sure.
    """
    if world_size is None:
        world_size = _distributed_world_size()
    if world_size is None:
        env = os.environ.get("WORLD_SIZE", "")
        world_size = int(env) if env.isdigit() else None
    if ranks_per_node is None:
        env = os.environ.get("LOCAL_WORLD_SIZE", "")
        ranks_per_node = int(env) if env.isdigit() else None
    if not world_size or not ranks_per_node or world_size % ranks_per_node:
        return 1
    return world_size // ranks_per_node


def _distributed_world_size() -> int | None:
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else None


def resolve_partitions(partitions, global_batch: int, world_size: int | None, ranks_per_node: int | None) -> int:
    """P: the explicit setting (checked), else `default_partitions` (1 when it does not divide B)."""
    if partitions is None:
        derived = default_partitions(world_size, ranks_per_node)
        return derived if global_batch % derived == 0 else 1
    p = check_partitions_value(partitions, "partitions")
    if global_batch % p:
        raise ConfigError(f"partitions {p} does not divide global_batch {global_batch}: each partition reads "
                          f"global_batch / partitions positions of every global batch; choose a divisor of "
                          f"{global_batch}")
    return p


def check_partitions_value(value, where: str) -> int:
    from climbstream.errors import ScheduleError

    try:
        return check_partitions(value, where)
    except ScheduleError as err:
        raise ConfigError(str(err)) from None


def check_nodes(partitions: int, world_size: int, ranks_per_node: int, where: str = "partitions") -> int:
    """The node count N = world_size / ranks_per_node, checked against P (module docstring)."""
    if partitions == 1:
        return max(1, world_size // max(1, ranks_per_node))
    if world_size % ranks_per_node:
        raise ConfigError(f"{where}: world size {world_size} is not a multiple of ranks_per_node {ranks_per_node}; "
                          f"the partitioned order (P = {partitions}) needs whole nodes: fix ranks_per_node")
    nodes = world_size // ranks_per_node
    if partitions % nodes and nodes % partitions:
        fits = [n for n in range(1, partitions + 1) if partitions % n == 0]
        raise ConfigError(
            f"{where}: this run has P = {partitions} partitions (fixed when the run started, saved in its state) "
            f"and {nodes} nodes ({world_size} ranks / {ranks_per_node} per node): run on a node count that "
            f"divides P ({', '.join(map(str, fits))}) or is a multiple of it"
        )
    return nodes


def node_partitions(partitions: int, rank: int, world_size: int, ranks_per_node: int) -> tuple[int, int]:
    """[first, stop): the partitions whose shards the node of `rank` reads (whole or shared)."""
    nodes = check_nodes(partitions, world_size, ranks_per_node)
    node = rank // ranks_per_node
    if partitions >= nodes:
        per = partitions // nodes
        return node * per, (node + 1) * per
    q = node * partitions // nodes
    return q, q + 1
