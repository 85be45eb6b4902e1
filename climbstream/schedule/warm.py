"""Load every compiled schedule kernel into this process before DataLoader workers fork.

A numba kernel is compiled once (`cache=True` keeps the machine code on disk), but each
process still pays to load it on its first call: numba's first dispatch builds its typing
context, which imports scipy.linalg for BLAS (about 0.6 s on a 2-core machine). Paid in a
DataLoader worker, that sits in front of every iterator's first batch, once per worker and
again for each new iterator. Paid once in the parent, forked workers inherit the loaded
code: `climbstream.stream.dataset` calls `warm_kernels()` when it is imported.
"""

from __future__ import annotations

import numpy as np

_warm = False


def warm_kernels() -> None:
    """Call each kernel once on a tiny schedule and order (idempotent; ~0.6 s the first time)."""
    global _warm
    if _warm:
        return
    from climbstream.schedule.order import LanguageOrder, language_key
    from climbstream.schedule.schedule import Schedule, Stage

    weights = np.array([2**31, 2**31], dtype=np.uint64)
    schedule = Schedule(2, 4, 0, [Stage(0, weights), Stage(8, weights[::-1].copy())])
    schedule.lookup_range(0, 16)
    schedule.counts_at(12)
    LanguageOrder(0, language_key("warm"), [3, 2]).locate(np.arange(12))
    _warm = True
