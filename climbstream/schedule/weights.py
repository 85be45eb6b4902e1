"""Float ratios to the integer weights every machine agrees on.

Stages carry integer weights summing to exactly 2**32 (see docs/interfaces.md), so the
schedule's integer arithmetic gives the same stream everywhere. The rounding is largest
remainder with ties broken by language name, which is deterministic and keeps each
weight within one unit (2**-32) of its ratio.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from climbstream.errors import ConfigError

WEIGHT_TOTAL = 2**32


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
