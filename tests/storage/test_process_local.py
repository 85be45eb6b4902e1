"""PerProcess: one value per process, never inherited by a forked child or a pickled copy."""

from __future__ import annotations

import itertools
import os
import multiprocessing as mp
import pickle

from climbstream.storage.process_local import PerProcess

_made = itertools.count()


def make() -> tuple[int, int]:
    return os.getpid(), next(_made)


def _in_child(slot, results) -> None:
    results.put((slot.peek(), slot.get(), slot.get()))


def test_made_once_per_process_and_never_inherited():
    slot = PerProcess(make)
    assert slot.peek() is None
    first = slot.get()
    assert slot.get() == first and slot.peek() == first
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=_in_child, args=(slot, results))
    child.start()
    seen, made, again = results.get(timeout=60)
    child.join(60)
    assert seen is None and made == again and made != first  # the child made its own
    assert slot.get() == first  # the parent's is untouched
    copy = pickle.loads(pickle.dumps(slot))
    assert copy.peek() is None and copy.get() not in (first, made)
    assert slot.clear() == first and slot.peek() is None and slot.get() != first
