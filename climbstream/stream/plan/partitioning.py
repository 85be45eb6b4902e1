"""The partition count P of a run: the explicit setting, checked, or the first run's node count.

Why: the partitioned order (docs/schedule.md) is a function of P, so P is fixed for the
run like the seed and saved in the state; the node count may change between runs. Which
node counts can read a given P efficiently is the read side's rule (read/node_reads.py,
`check_nodes`). The stream itself never depends on the node count: every compatible node
count reads the same samples at the same positions.
"""

from __future__ import annotations

from climbstream.errors import ConfigError
from climbstream.ranks import ranks_per_node_if_known, world_size_if_known
from climbstream.schedule.parts import check_partitions


def default_partitions(world_size: int | None, ranks_per_node: int | None) -> int:
    """The first run's node count where the constructor can tell it, else 1.

    Known: ranks_per_node (or torchrun's LOCAL_WORLD_SIZE) and the world size (explicit,
    torch.distributed's, or WORLD_SIZE), as climbstream/ranks.py finds them. Otherwise 1
    (the unpartitioned order): set `partitions` to be sure.
    """
    world_size = world_size_if_known(world_size)
    ranks_per_node = ranks_per_node_if_known(ranks_per_node)
    if not world_size or not ranks_per_node or world_size % ranks_per_node:
        return 1
    return world_size // ranks_per_node


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
