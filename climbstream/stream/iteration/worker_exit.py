"""A DataLoader worker that exits through interpreter shutdown lets its threads finish first.

A forked worker ends with `os._exit`; a spawned one returns through `sys.exit`, so the
interpreter shuts down while daemon threads may still run. When the main process drops
an unfinished iterator, torch's worker calls `cancel_join_thread()` on its result queue
and returns, while the queue's feeder thread may still be pickling a batch (sharing its
tensor storage in torch's C++ code, with the GIL released). A daemon thread that takes
the GIL back after shutdown began is ended with `pthread_exit`; from inside pybind11's
`gil_scoped_release` destructor (noexcept) that forced unwind calls std::terminate:
"terminate called without an active exception", reported as "DataLoader worker killed by
signal: Aborted" (torch's issue #38228). Seen here in 2 to 3 of 20 dropped spawn
iterators on a loaded machine; faulthandler showed the abort on a thread with no Python
state while the main thread was in shutdown.

So each worker process registers, once, an exit hook that first stops this process's
readers (their prefetch threads) and then waits a bounded time for queue feeder threads
to flush. atexit hooks run before the interpreter starts ending daemon threads.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable

FEEDER_JOIN_SECONDS = 5.0
_registered_pid: int | None = None
_closers: list[Callable[[], None]] = []


def on_worker_exit(close: Callable[[], None]) -> None:
    """Call `close` when this process exits, then let queue feeder threads finish."""
    global _registered_pid
    if _registered_pid != os.getpid():  # a new process (spawned or forked): register here
        _registered_pid = os.getpid()
        _closers.clear()
        atexit.register(_finish)
    _closers.append(close)


def _finish() -> None:
    for close in _closers:
        close()
    for thread in threading.enumerate():
        if thread.name == "QueueFeederThread" and thread is not threading.current_thread():
            thread.join(FEEDER_JOIN_SECONDS)
