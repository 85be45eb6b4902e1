"""The helper server processes that benchmarks and tests start on loopback (rclone, moto)."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time


def stop_process(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Terminate `process`, kill it if it has not exited after `timeout_s`, and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)


class LoopbackServer:
    """A server process on 127.0.0.1 that logs to a temp file and names its endpoint there.

    Subclasses give the command, the log line that carries the endpoint (`pattern`, the URL
    as group 1) and `answers(endpoint)`, true once the server serves requests. The
    constructor returns when it does, and raises (with the log) if it exits or stays
    silent for `start_timeout_s`. A context manager; `close()` stops it and removes the log.
    """

    name = "server"

    def __init__(self, argv: list[str], env: dict, pattern: str, start_timeout_s: float = 30.0) -> None:
        self._log = tempfile.NamedTemporaryFile(prefix=f"{self.name.split()[0]}-", suffix=".log", delete=False)
        self.log_path = self._log.name
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env)
        try:
            self.endpoint_url = self._wait_until_answering(pattern, start_timeout_s)
        except BaseException:
            self.close()
            raise

    def answers(self, endpoint: str) -> bool:
        raise NotImplementedError

    def _wait_until_answering(self, pattern: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        endpoint = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log_text()}")
            if endpoint is None:
                match = re.search(pattern, self.log_text())
                endpoint = match.group(1) if match else None
            if endpoint is not None and self.answers(endpoint):
                return endpoint
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer within {timeout_s}s: {self.log_text()}")

    @property
    def port(self) -> int:
        return int(self.endpoint_url.rsplit(":", 1)[1])

    def log_text(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def close(self) -> None:
        """Stop the server (terminate, then kill after 10 s) and remove its log."""
        stop_process(self.process)
        self._log.close()
        try:
            os.unlink(self.log_path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
