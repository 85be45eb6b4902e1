"""State that belongs to one process: made on first use there, never inherited.

Clients, connections, descriptors and locks cannot cross a fork or a pickle: a boto3
client made in the parent and used by forked DataLoader workers corrupts downloads, and
a lock copied while a parent thread held it is never released in the child. Every holder
of such state keeps it in a `PerProcess` slot instead of checking `os.getpid()` itself:

- `slot.get()` returns this process's value, calling `make()` on first use in each
  process (under a lock created in that process, so two threads make it once);
- a forked child, or an unpickled copy, starts with the slot empty;
- `slot.peek()` is this process's value or None; `slot.clear()` drops it (a parent's
  value seen after a fork is left alone: closing it would close the parent's too).
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """One value per process, made by `make()` on first use (see the module docstring)."""

    def __init__(self, make: Callable[[], T]):
        self._make = make
        self._empty()

    def _empty(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._value: T | None = None

    def get(self) -> T:
        if self._pid != os.getpid():
            self._empty()
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()
                value = self._value
        return value

    def peek(self) -> T | None:
        return self._value if self._pid == os.getpid() else None

    def clear(self) -> T | None:
        """Forget this process's value and return it (for the caller to close), else None."""
        value = self.peek()
        self._empty()
        return value

    def __getstate__(self) -> dict:
        return {"_make": self._make}

    def __setstate__(self, state: dict) -> None:
        self._make = state["_make"]
        self._empty()
