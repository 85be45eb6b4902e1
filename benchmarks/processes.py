"""Stopping the helper server processes that benchmarks and tests start on loopback."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Terminate `process`, kill it if it has not exited after `timeout_s`, and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)
