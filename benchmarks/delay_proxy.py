"""A TCP proxy on loopback that adds latency: every chunk waits half the round trip each way.

Object stores are rarely on the same host as the trainer; a loader that waits for one
request before sending the next pays the round trip per request. This proxy sits between
the clients and a local S3 server and delays each chunk read from either side by
`rtt_ms / 2` before forwarding it, so a request-response exchange costs one `rtt_ms`
more, while bandwidth and concurrency are left alone (chunks are scheduled by arrival
time, not serialised behind one another; order within a connection is kept).

Run it as a process (what the benchmark does, so that its event loop does not compete
with the loaders for one interpreter):

    python benchmarks/delay_proxy.py --upstream 127.0.0.1:PORT --rtt-ms 20

It prints `LISTENING <port>` once ready and runs until SIGTERM/SIGINT. `DelayProxy` in
this module starts and stops such a process. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time

from processes import stop_process  # benchmarks/ is on sys.path: run as scripts

DEFAULT_RTT_MS = 20.0
_CHUNK_BYTES = 1 << 16


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """Forward reader -> writer, each chunk at (its arrival + delay_s), in order; EOF likewise."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def read_side() -> None:
        try:
            while True:
                data = await reader.read(_CHUNK_BYTES)
                await queue.put((loop.time() + delay_s, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await queue.put((loop.time(), b""))

    async def write_side() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    reading = asyncio.ensure_future(read_side())
    try:
        await write_side()
    except (ConnectionError, OSError):
        pass
    finally:
        reading.cancel()


async def _handle(client_reader, client_writer, upstream: tuple[str, int], delay_s: float) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(_pump(client_reader, up_writer, delay_s),
                             _pump(up_reader, client_writer, delay_s))
    except asyncio.CancelledError:  # shutting down: drop the connection quietly
        pass
    finally:
        for w in (up_writer, client_writer):
            w.close()


async def serve(upstream: tuple[str, int], rtt_ms: float, port: int = 0, ready=None) -> None:
    """Proxy 127.0.0.1:port -> upstream until cancelled; `ready(port)` is called once listening."""
    delay_s = rtt_ms / 2000.0
    server = await asyncio.start_server(lambda r, w: _handle(r, w, upstream, delay_s), "127.0.0.1", port)
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


async def _gather(tasks) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the server (loopback)")
    parser.add_argument("--rtt-ms", type=float, default=DEFAULT_RTT_MS, help="added round trip, ms")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any)")
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        parser.error(f"--upstream {args.upstream}: only loopback upstreams are proxied")

    def ready(bound: int) -> None:
        print(f"LISTENING {bound}", flush=True)

    loop = asyncio.new_event_loop()
    task = loop.create_task(serve(("127.0.0.1", int(port)), args.rtt_ms, args.port, ready))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:  # let open connections unwind before the loop closes, quietly
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        pending = [t for t in asyncio.all_tasks(loop) if t is not task]
        for t in pending:
            t.cancel()
        loop.run_until_complete(_gather(pending))
        loop.close()
    return 0


class DelayProxy:
    """A delay proxy process in front of `upstream_port`; `.endpoint_url`; a context manager."""

    def __init__(self, upstream_port: int, rtt_ms: float = DEFAULT_RTT_MS, start_timeout_s: float = 20.0):
        self.rtt_ms = rtt_ms
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--upstream", f"127.0.0.1:{upstream_port}",
             "--rtt-ms", str(rtt_ms)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )
        try:
            self.port = self._wait_for_port(start_timeout_s)
        except BaseException:
            self.close()
            raise
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

    def _wait_for_port(self, timeout_s: float) -> int:
        import select

        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        line = self.process.stdout.readline() if ready else ""
        if line.startswith("LISTENING "):
            return int(line.split()[1])
        raise RuntimeError(f"delay proxy did not start within {timeout_s}s (exit code "
                           f"{self.process.poll()}, said {line!r})")

    def close(self) -> None:
        """Stop the proxy process (terminate, then kill after 10 s)."""
        stop_process(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> "DelayProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main())
