"""Float ratios to the integer weights every machine agrees on.

Stages carry integer weights summing to exactly 2**32 (see docs/interfaces.md), so the
schedule's integer arithmetic gives the same stream everywhere. The rounding is largest
remainder with ties broken by language name, which is deterministic and keeps each
weight within one unit (2**-32) of its ratio.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from climbstream.errors import ConfigError, ScheduleError

WEIGHT_TOTAL = 2**32


def check_integer_weights(values, where: str, error: type[Exception] = ScheduleError) -> list[int]:
    """`values` as ints if every one is >= 0 and they sum to WEIGHT_TOTAL, else `error` (a
    ScheduleError; a loaded state: a StateError) naming `where` and the fix: the one sum check."""
    values = [int(x) for x in values]
    negative = [i for i, x in enumerate(values) if x < 0]
    if negative:
        raise error(f"{where}: weight of language {negative[0]} is {values[negative[0]]}; weights must be >= 0")
    total = sum(values)
    if total != WEIGHT_TOTAL:
        raise error(f"{where}: weights sum to {total}, not 2**32 = {WEIGHT_TOTAL}; derive them from ratios "
                    "with climbstream.schedule.weights.integer_weights")
    return values


def are_integer_weights(values) -> bool:
    """True for ints (not bools) that pass `check_integer_weights`: weights as a state holds them."""
    values = list(values)
    return bool(values) and all(isinstance(v, int) and not isinstance(v, bool) for v in values) \
        and all(v >= 0 for v in values) and sum(values) == WEIGHT_TOTAL


def integer_weights(ratios: Mapping[str, float], where: str = "weights") -> dict[str, int]:
    """Turn non-negative ratios (any positive sum) into ints summing to 2**32.

    Raises ConfigError naming `where` and the language for negative, non-finite or
    all-zero input.
    """
    if not ratios:
        raise ConfigError(f"{where}: no languages given")
    for name, value in ratios.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}.{name}: weight {value!r} is not a finite number")
        if value < 0:
            raise ConfigError(f"{where}.{name}: weight {value} is negative; weights must be >= 0")
    largest = max(float(v) for v in ratios.values())
    if largest <= 0:
        raise ConfigError(f"{where}: all weights are zero; give at least one language a positive weight")
    scaled = {n: float(v) / largest for n, v in ratios.items()}  # weights near 1e308 would overflow the sum
    total = math.fsum(scaled.values())
    names = sorted(ratios)
    exact = {n: scaled[n] / total * WEIGHT_TOTAL for n in names}
    floors = {n: int(math.floor(exact[n])) for n in names}
    left = WEIGHT_TOTAL - sum(floors.values())
    order = sorted(names, key=lambda n: (-(exact[n] - floors[n]), n))
    for n in order[:left]:
        floors[n] += 1
    return floors
