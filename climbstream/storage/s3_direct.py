"""S3 GETs without botocore's per-request machinery: our own SigV4 signature over one
keep-alive HTTP connection per thread.

Why: a worker of a block-exact mixer downloads hundreds of small shards before its first
batch, every language at once. boto3's `get_object` spends about 1.9 ms of CPU per
request in Python (parameter validation, event hooks, signing, response parsing); the
request itself needs about 0.3 ms (200 GETs of 13 KB and of 100 KB shards against
`rclone serve s3`, one thread). That CPU is taken from the cores that decode samples, and
it holds the GIL against the worker's reading thread.

Why not a library made for it: `benchmarks/s3_gets.py` (200 GETs of 100 KB, CPU of every
thread, median of 3) measured 0.21 ms per GET here, boto3 1.06 ms and AWS's
s3torchconnectorclient 1.5.0 (the CRT client under s3torchconnector) 0.29 ms, so moving
GETs to it would cost CPU, add a native dependency, and its client must be created anew
in every forked worker (a parent's one does not work in the child). obstore, in an
earlier measurement, took about the same CPU (0.28-0.30 ms) but hung after fork. This
client passes the fault suite (tests/dataset/test_faults.py: 503s, resets, bodies cut
short, corrupted bytes, stalls).

Kept from boto3: the credential chain (`Session.get_credentials`, refreshed as boto3
refreshes it) and where a bucket's objects live: the base URL is taken once per bucket
from a URL botocore presigns, so the endpoint, region and addressing style follow the
same configuration as every other request. PUT, LIST, HEAD and multipart stay on boto3.

Failures are raised as botocore's own ClientError (with the HTTP status and the S3 error
code from the body) or as the socket/http.client exceptions, so S3Store classifies and
retries them exactly as it does boto3's. Responses boto3 would follow or re-sign
(a region redirect, a signature the server computes differently) raise `UseBoto3`, and
S3Store sends that bucket's GETs through boto3 from then on.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import os
import re
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from climbstream.storage.process_local import PerProcess

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CHUNK_BYTES = 1 << 20
_BOTO3_HANDLES = {301, 302, 307, 308, 400}  # region redirects and AuthorizationHeaderMalformed
_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")


class UseBoto3(Exception):
    """This bucket needs something boto3 does and this client does not (the reason is the message)."""


class Credentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None = None


class BucketEndpoint(NamedTuple):
    """Where one bucket's objects are: the Host header (as signed), where to connect, the
    path before the key, and the region to sign for."""

    scheme: str
    host: str
    connect_host: str
    port: int | None
    path_prefix: str
    region: str


def endpoint_from_presigned(url: str, probe_key: str, region: str | None) -> BucketEndpoint:
    """The BucketEndpoint of a presigned GET URL for `probe_key` (query string ignored)."""
    parts = urllib.parse.urlsplit(url)
    quoted_probe = urllib.parse.quote(probe_key, safe="/~")
    if not parts.path.endswith("/" + quoted_probe):
        raise UseBoto3(f"presigned URL {parts.scheme}://{parts.netloc}{parts.path} does not end with the key")
    default_port = 443 if parts.scheme == "https" else 80
    hostname = parts.hostname or ""
    host = f"[{hostname}]" if ":" in hostname else hostname  # an IPv6 literal keeps its brackets
    if parts.port not in (None, default_port):
        host = f"{host}:{parts.port}"
    signing_region = region if region and region != "aws-global" else "us-east-1"
    return BucketEndpoint(parts.scheme, host, hostname, parts.port, parts.path[: -len(quoted_probe)], signing_region)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_headers(method: str, host: str, path: str, region: str, credentials: Credentials,
                  amz_date: str, headers: dict[str, str] | None = None,
                  payload_sha256: str = EMPTY_SHA256) -> dict[str, str]:
    """`headers` plus Host, x-amz-date, x-amz-content-sha256 (and the token) and Authorization.

    AWS Signature Version 4 for S3 (a single-chunk payload, no query string): `path` is
    already URI-encoded once, as sent; every header given is signed. `amz_date` is
    'YYYYMMDDTHHMMSSZ' in UTC.
    """
    out = {"host": host, "x-amz-content-sha256": payload_sha256, "x-amz-date": amz_date}
    if credentials.token:
        out["x-amz-security-token"] = credentials.token
    for name, value in (headers or {}).items():
        out[name.lower()] = value
    names = sorted(out)
    canonical = "\n".join([method, path, "", *(f"{n}:{out[n].strip()}" for n in names), "",
                           ";".join(names), payload_sha256])
    day = amz_date[:8]
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + credentials.secret_key).encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return out


def proxy_applies(scheme: str, hostname: str) -> bool:
    """Whether the environment routes `scheme://hostname` through a proxy (boto3 would use it)."""
    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme)) and not urllib.request.proxy_bypass(hostname)


def client_error(status: int, body: bytes, operation: str = "GetObject") -> Exception:
    """botocore's ClientError for an S3 error response (status and the body's <Code>)."""
    from botocore.exceptions import ClientError

    code = _CODE.search(body or b"")
    message = _MESSAGE.search(body or b"")
    error = {"Code": code.group(1).decode(errors="replace") if code else str(status),
             "Message": message.group(1).decode(errors="replace") if message else http.client.responses.get(status, "")}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


class _Connections:
    """One process's keep-alive connections, one per thread, and how many it opened."""

    def __init__(self) -> None:
        self.threads = threading.local()
        self.lock = threading.Lock()
        self.opened = 0


class DirectGetter:
    """Signed GETs of one endpoint's objects; one connection per thread and process.

    `credentials` returns the current Credentials (or raises botocore's NoCredentialsError);
    it is called for every request, so refreshed credentials are used as soon as boto3 has
    them. Safe to share between threads; a forked child opens its own connections.
    """

    def __init__(self, endpoint: BucketEndpoint, credentials: Callable[[], Credentials],
                 connect_timeout_s: float | None, read_timeout_s: float | None,
                 ssl_context: ssl.SSLContext | None = None, extra_headers: dict[str, str] | None = None) -> None:
        self.endpoint = endpoint
        self._extra_headers = dict(extra_headers or {})  # signed with the rest (x-amz-request-payer)
        self._credentials = credentials
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._ssl_context = ssl_context
        self._process = PerProcess(_Connections)  # a parent's sockets are never used after a fork

    @property
    def connections_opened(self) -> int:
        """Connections this process opened (tests check a forked child opens its own)."""
        return self._process.get().opened

    # -- connections ------------------------------------------------------------------------
    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """(this thread's connection, whether it was used before)."""
        state = self._process.get()
        local = state.threads
        if getattr(local, "connection", None) is not None:
            return local.connection, True
        e = self.endpoint
        if e.scheme == "https":
            connection = http.client.HTTPSConnection(e.connect_host, e.port, timeout=self._connect_timeout_s,
                                                     context=self._ssl_context or ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(e.connect_host, e.port, timeout=self._connect_timeout_s)
        connection.connect()
        connection.sock.settimeout(self._read_timeout_s)
        local.connection = connection
        with state.lock:
            state.opened += 1
        return connection, False

    def _drop_connection(self) -> None:
        local = self._process.get().threads
        connection = getattr(local, "connection", None)
        local.connection = None
        if connection is not None:
            connection.close()

    def _response(self, key: str, start: int, end: int | None) -> tuple[http.client.HTTPResponse, bool]:
        """(the open 2xx response for key's [start, end), whether the server honoured the range)."""
        e = self.endpoint
        path = e.path_prefix + urllib.parse.quote(key, safe="/~")
        ranged = bool(start) or end is not None
        extra = {"range": f"bytes={start}-" + ("" if end is None else str(end - 1))} if ranged else {}
        extra.update(self._extra_headers)
        amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        headers = sigv4_headers("GET", e.host, path, e.region, self._credentials(), amz_date, extra)
        for fresh_try in (False, True):
            connection, reused = self._connection()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._drop_connection()
                if not reused or fresh_try:  # a kept-alive connection the server had closed: once more
                    raise
            except BaseException:
                self._drop_connection()
                raise
        if response.status >= 300:
            body = response.read()
            if response.will_close:
                self._drop_connection()
            error = client_error(response.status, body)
            code = error.response["Error"]["Code"]
            if response.status in _BOTO3_HANDLES or code == "SignatureDoesNotMatch":
                raise UseBoto3(f"HTTP {response.status} {code}")
            raise error
        # rclone answers a range with 200 and a Content-Range; a server that ignored it sends neither.
        return response, not ranged or response.status == 206 or response.getheader("Content-Range") is not None

    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes [start, end) of the object `key` (to its end when `end` is None)."""
        response, honoured = self._response(key, start, end)
        try:
            data = response.read()
        except BaseException:
            self._drop_connection()
            raise
        if response.will_close:
            self._drop_connection()
        return data if honoured else data[start:end]

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        """The whole object in chunks of up to 1 MiB; the connection is kept only if read to the end."""
        response, _ = self._response(key, 0, None)
        finished = False
        try:
            while chunk := response.read(CHUNK_BYTES):
                yield chunk
            if response.length:  # read(amt) returns b"" at an early EOF instead of raising
                raise http.client.IncompleteRead(b"", response.length)
            finished = not response.will_close
        finally:
            if not finished:
                self._drop_connection()


def boto3_credentials(session: Any, lock: threading.Lock) -> Callable[[], Credentials]:
    """A Credentials callable over a boto3 session's credential chain (resolved once, refreshed by boto3)."""
    from botocore.exceptions import NoCredentialsError

    with lock:  # a boto3 session is not thread-safe
        resolved = session.get_credentials()

    def current() -> Credentials:
        if resolved is None:
            raise NoCredentialsError()
        frozen = resolved.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return current


def boto3_ssl_context(verify: bool | str | None = None, profile_bundle: str | None = None) -> ssl.SSLContext:
    """The TLS context boto3 would use: `verify` (False: no checking; a path: that CA
    bundle), else the profile's `ca_bundle`, else AWS_CA_BUNDLE, else botocore's bundle."""
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    cafile = verify if isinstance(verify, str) else (profile_bundle or os.environ.get("AWS_CA_BUNDLE"))
    if not cafile:
        from botocore.httpsession import get_cert_path

        cafile = get_cert_path(True)
    return ssl.create_default_context(cafile=cafile if isinstance(cafile, str) else None)
