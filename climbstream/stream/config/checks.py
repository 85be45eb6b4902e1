"""Checks of user-given numbers, so a bad value is a one-line ConfigError naming its key.

Without them a seed of 10**23 or a global batch of 10**30 reached numba or numpy and came
back as an OverflowError traceback, or as an error that named an internal variable.
"""

from __future__ import annotations

import math

import numpy as np

from climbstream.errors import ConfigError
from climbstream.schedule.schedule import MAX_POSITION  # noqa: F401  (re-exported: the bounds of user input)

MAX_SEED = 2**63 - 1
MAX_GLOBAL_BATCH = 2**31


def is_number(value) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def check_int(name: str, value, low: int, high: int, error: type[Exception] = ConfigError) -> int:
    """`value` if it is an integer in [low, high], else `error` (a ConfigError; a loaded state: a
    StateError) naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise error(f"{name}: expected an integer in [{low}, {high}], got {value!r}")
    return int(value)
