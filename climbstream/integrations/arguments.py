"""The integrations' arguments checked where they are given: a one-line ConfigError naming the
argument, the value and what is accepted, rather than an AttributeError from inside a trainer."""

from __future__ import annotations

from climbstream.errors import ConfigError


def check_stream(stream, where: str):
    """`stream` if it is a ClimbStream."""
    from climbstream.stream.dataset import ClimbStream

    if not isinstance(stream, ClimbStream):
        raise ConfigError(f"{where}: stream: expected a climbstream.ClimbStream, got {type(stream).__name__}")
    return stream


def check_dp_coordinates(dp_rank, dp_world_size, where: str) -> tuple[int, int]:
    """Integers with 0 <= dp_rank < dp_world_size."""
    for name, value in (("dp_world_size", dp_world_size), ("dp_rank", dp_rank)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {name}: expected an integer, got {value!r}")
    if not (dp_world_size >= 1 and 0 <= dp_rank < dp_world_size):
        raise ConfigError(f"{where}: dp_rank {dp_rank} of dp_world_size {dp_world_size}: expected "
                          f"0 <= dp_rank < dp_world_size")
    return dp_rank, dp_world_size
