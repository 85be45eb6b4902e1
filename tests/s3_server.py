"""A real S3 server for tests: moto_server in its own process, plus a flaky proxy.

Import the fixtures into a conftest.py:

    from tests.s3_server import s3_server, s3_env, s3_bucket, flaky_proxy  # noqa: F401

- `s3_server` (session): one `moto_server` process on 127.0.0.1 (port chosen by the OS),
  terminated at the end of the run. `.endpoint_url`, `.reset()`.
- `s3_env` (function): dummy AWS credentials and region in the environment, isolated from
  any real ~/.aws config, with AWS_ENDPOINT_URL_S3 pointing at the server, so code that
  builds its own boto3 client (CLI commands, spawned workers) reaches the test server.
- `s3_bucket` (function): resets the server, creates a fresh bucket and returns an
  `S3Bucket` (`.name`, `.url` = "s3://name", `.endpoint_url`, `.client()`, `.options()`).
- `flaky_proxy` (function): a `FlakyProxy` in front of the server; set `fail_first`,
  `status` and `latency_s` to make the first N requests fail or every request slow, and
  `fault` to damage the first N successful GET answers instead (truncate, corrupt,
  reset, stall).

The server runs in a separate process (not moto's in-process mock) so that forked and
spawned workers, subprocess CLI calls and boto3's real HTTP stack are all exercised.
"""

from __future__ import annotations

import http.client
import http.server
import os
import shutil
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from benchmarks.processes import LoopbackServer

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
_START_TIMEOUT_S = 60.0


def _moto_server_executable() -> str:
    beside = Path(sys.executable).with_name("moto_server")
    if beside.exists():
        return str(beside)
    found = shutil.which("moto_server")
    if found is None:
        pytest.skip("moto_server console script not found (pip install 'moto[server]')")
    return found


class S3Server(LoopbackServer):
    """A `moto_server` subprocess listening on a loopback port picked by the OS."""

    name = "moto_server"

    def __init__(self) -> None:
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
                   AWS_DEFAULT_REGION=REGION, PYTHONUNBUFFERED="1")
        super().__init__([_moto_server_executable(), "-H", "127.0.0.1", "-p", "0"], env,
                         r"Running on (http://127\.0\.0\.1:\d+)", _START_TIMEOUT_S)

    def answers(self, endpoint: str) -> bool:
        try:
            with urllib.request.urlopen(endpoint + "/moto-api/data.json", timeout=2):
                return True
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def reset(self) -> None:
        """Forget every bucket and object (POST /moto-api/reset)."""
        req = urllib.request.Request(self.endpoint_url + "/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass



@dataclass
class S3Bucket:
    """A fresh bucket on the test server."""

    name: str
    endpoint_url: str

    @property
    def url(self) -> str:
        return f"s3://{self.name}"

    def client(self, endpoint_url: str | None = None):
        """A plain boto3 client for arranging test data (not the code under test)."""
        import boto3

        return boto3.client("s3", endpoint_url=endpoint_url or self.endpoint_url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY)

    def options(self, endpoint_url: str | None = None, **overrides):
        """StorageOptions that reach this server (or a proxy in front of it)."""
        from climbstream.storage.options import StorageOptions

        settings = dict(endpoint_url=endpoint_url or self.endpoint_url, region=REGION,
                        access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY)
        settings.update(overrides)
        return StorageOptions(**settings)


class FlakyProxy:
    """A loopback HTTP proxy to an upstream server that fails or slows requests on demand.

    The first `fail_first` requests after `configure` are answered with `status` (an S3-style
    XML error body, code SlowDown/AccessDenied/...) without reaching the upstream; every
    request waits `latency_s` first. `requests` counts every request received, including
    the failed ones, so tests can assert how many attempts a client made.

    With `fault` other than "status", the first `fail_first` GETs answered 200/206 by the
    upstream are damaged on the way back: "truncate" sends half the body under the full
    Content-Length and closes the connection; "corrupt" flips one byte in the middle;
    "reset" closes the connection with a TCP reset before answering; "stall" waits
    `stall_s` before answering (set the client's read timeout below it).
    """

    FAULTS = ("status", "truncate", "corrupt", "reset", "stall")

    _CODES = {403: "AccessDenied", 404: "NoSuchKey", 500: "InternalError", 503: "SlowDown"}

    def __init__(self, upstream_url: str, fail_first: int = 0, status: int = 503, latency_s: float = 0.0):
        self.upstream = urlsplit(upstream_url)
        self._lock = threading.Lock()
        self.configure(fail_first, status, latency_s)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
                pass

            def _handle(self):
                proxy._forward(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="flaky-proxy", daemon=True)
        self._thread.start()

    def configure(self, fail_first: int = 0, status: int = 503, latency_s: float = 0.0, fault: str = "status",
                  stall_s: float = 3.0, only: str = "") -> None:
        """Set the failure plan and reset the request counters (`only`: damage only GETs
        whose path contains it)."""
        assert fault in self.FAULTS, fault
        with self._lock:
            self.fault, self.stall_s, self.only = fault, stall_s, only
            self.damage_if = None  # a predicate of the request: damage exactly those answers (any order)
            self.fail_first = fail_first
            self.status = status
            self.latency_s = latency_s
            self.requests = 0
            self.failed = 0
            self.paths: list[str] = []
            self.headers: list[dict[str, str]] = []

    def _read_body(self, handler) -> bytes:
        length = handler.headers.get("Content-Length")
        if length is not None:
            return handler.rfile.read(int(length))
        if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        return b""

    def _forward(self, handler) -> None:
        body = self._read_body(handler)
        with self._lock:
            self.requests += 1
            self.paths.append(f"{handler.command} {handler.path}")
            self.headers.append({k.lower(): v for k, v in handler.headers.items()})
            fail = self.fault == "status" and self.failed < self.fail_first
            if fail:
                self.failed += 1
            status, latency_s = self.status, self.latency_s
        if latency_s:
            time.sleep(latency_s)
        if fail:
            code = self._CODES.get(status, "Error")
            payload = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                       f"<Message>injected by FlakyProxy</Message></Error>").encode()
            handler.send_response(status)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", "0" if handler.command == "HEAD" else str(len(payload)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(payload)
            return
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() not in ("expect", "transfer-encoding", "connection", "content-length")}
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            conn.request(handler.command, handler.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            damage = None
            if handler.command == "GET" and resp.status in (200, 206) and len(data) > 1 and self.only in handler.path:
                with self._lock:
                    chosen = self.failed < self.fail_first if self.damage_if is None else self.damage_if(handler)
                    if self.fault != "status" and chosen:
                        self.failed += 1
                        damage = self.fault
            if damage == "reset":
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                handler.close_connection = True
                handler.connection.close()
                return
            if damage == "stall":
                time.sleep(self.stall_s)
            if damage == "corrupt":
                middle = len(data) // 2
                data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
            handler.send_response(resp.status, resp.reason)
            for key, value in resp.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                    handler.send_header(key, value)
            if handler.command == "HEAD":
                handler.send_header("Content-Length", resp.getheader("Content-Length", "0"))
            else:
                handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if damage == "truncate":
                handler.wfile.write(data[: len(data) // 2])
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
            elif handler.command != "HEAD":
                handler.wfile.write(data)
        finally:
            conn.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> FlakyProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@pytest.fixture(scope="session")
def s3_server():
    """One moto_server process for the whole test run."""
    server = S3Server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path):
    """Dummy AWS credentials, region and endpoint in the environment, for this test only."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
    return s3_server


@pytest.fixture
def s3_bucket(s3_env):
    """A fresh, empty bucket on a freshly reset server."""
    s3_env.reset()
    bucket = S3Bucket(name=f"test-{uuid.uuid4().hex[:12]}", endpoint_url=s3_env.endpoint_url)
    bucket.client().create_bucket(Bucket=bucket.name)
    return bucket


@pytest.fixture
def flaky_proxy(s3_server):
    """A FlakyProxy in front of the server that passes everything until configured."""
    proxy = FlakyProxy(s3_server.endpoint_url)
    try:
        yield proxy
    finally:
        proxy.close()
