"""s3:// URLs through boto3, with our own retries and a client per process.

GETs (shard downloads, range reads) go through s3_direct.DirectGetter unless
`StorageOptions.direct_get` is off: boto3 still supplies the credentials and the bucket's
URL, and the errors are the same ClientErrors, so everything below applies to both.

boto3 clients are not fork-safe: a client created before a DataLoader fork would share
its connection pool with the parent. The client is therefore created lazily, once per
process (climbstream/storage/process_local.py). botocore's own retries are switched off so that the retry
policy (and the request count tests rely on) is exactly the one in retry.py. Checksums
are computed and validated only "when_required", which S3-compatible servers that do not
speak the newer flexible checksums (moto, rclone serve s3, MinIO versions) accept.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import threading
from builtins import ConnectionError as BuiltinConnectionError
from collections.abc import Iterator
from typing import Any

from climbstream.errors import StorageError
from climbstream.extras import require
from climbstream.storage.process_local import PerProcess
from climbstream.storage.options import StorageOptions
from climbstream.storage.redact import remember_secrets
from climbstream.storage.store import ObjectStore, check_length, check_range
from climbstream.storage.urls import join_url
from climbstream.storage.retry import AccessDeniedError, ObjectNotFoundError
from climbstream.storage.s3_direct import (
    DirectGetter, UseBoto3, boto3_credentials, boto3_ssl_context, endpoint_from_presigned, proxy_applies,
)

log = logging.getLogger(__name__)
MULTIPART_PART_BYTES = 64 << 20
_THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                   "TooManyRequestsException", "RequestTimeout", "RequestTimeoutException",
                   "InternalError", "ServiceUnavailable"}
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_DENIED_CODES = {"401", "403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_PLAIN_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")  # not an ARN or access point


def split_s3_url(url: str) -> tuple[str, str]:
    """('bucket', 'key') of 's3://bucket/key'; a URL without a bucket is a StorageError."""
    _, _, rest = url.partition("://")
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"{url}: an s3 URL needs a bucket (s3://BUCKET/KEY)")
    return bucket, key


# boto3 sessions (credentials and the parsed S3 service model, ~0.1 s to build) are shared
# by every store of a process and inherited by forked DataLoader workers, which then make
# their clients in ~0.02 s. Clients (connection pools) are never shared across a fork.
_sessions: dict[tuple, Any] = {}
_sessions_lock = threading.Lock()


def forget_sessions() -> None:
    """Drop this process's boto3 sessions. They are made once per process and credentials, so a
    process that changes its AWS profile or configuration files mid-run calls this to have the
    next store read them again."""
    with _sessions_lock:
        _sessions.clear()


def _new_sessions_lock() -> None:
    global _sessions_lock
    _sessions_lock = threading.Lock()  # the parent's may have been held by a thread not copied


os.register_at_fork(after_in_child=_new_sessions_lock)


def _session(o: StorageOptions):
    """The process's boto3 session for these credentials (call with _sessions_lock held)."""
    key = (o.access_key_id, o.secret_access_key, o.session_token, o.region)
    session = _sessions.get(key)
    if session is None:
        boto3 = require("boto3", "s3:// URLs")
        remember_secrets(o.secret_access_key, o.session_token)  # masked in logs (storage/redact.py)
        session = _sessions[key] = boto3.session.Session(
            aws_access_key_id=o.access_key_id, aws_secret_access_key=o.secret_access_key,
            aws_session_token=o.session_token, region_name=o.region,
        )
    return session


_REQUESTER_PAYS_OPERATIONS = ("GetObject", "HeadObject", "ListObjectsV2", "PutObject", "CreateMultipartUpload",
                              "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload")


def _requester_pays(params, **_):
    params.setdefault("RequestPayer", "requester")


class _S3Process:
    """What one process of an S3Store owns: its boto3 client, its direct GETters by bucket
    (None where that bucket's GETs go through boto3), and the lock that makes them once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.client = None
        self.clients_created = 0
        self.getters: dict[str, object] = {}


class S3Store(ObjectStore):
    """Objects in S3 or any S3-compatible server (set `StorageOptions.endpoint_url`)."""

    def __init__(self, options: StorageOptions | None = None) -> None:
        super().__init__(options)
        self._process = PerProcess(_S3Process)  # client, getters and their lock: one set per process

    @property
    def client(self):
        """This process's boto3 S3 client, created on first use in each process."""
        state = self._process.get()
        if state.client is None:
            with state.lock:
                if state.client is None:
                    state.client = self._make_client()
                    state.clients_created += 1
        return state.client

    @property
    def clients_created(self) -> int:
        """Clients this process made (tests check a forked child makes its own)."""
        return self._process.get().clients_created

    def _make_client(self):
        Config = require("botocore.config", "s3:// URLs").Config
        o = self.options
        unsigned = {}
        if o.anonymous:
            from botocore import UNSIGNED

            unsigned = {"signature_version": UNSIGNED}
        config = Config(
            **unsigned,
            connect_timeout=o.connect_timeout_s, read_timeout=o.read_timeout_s,
            retries={"total_max_attempts": 1, "mode": "standard"},
            max_pool_connections=32,
            s3={"addressing_style": o.addressing_style},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        with _sessions_lock:  # a boto3 session is not thread-safe
            client = _session(o).client("s3", endpoint_url=o.endpoint_url, config=config, verify=o.verify)
        if o.requester_pays:
            for operation in _REQUESTER_PAYS_OPERATIONS:
                client.meta.events.register(f"before-parameter-build.s3.{operation}", _requester_pays)
        return client

    # -- direct GETs -------------------------------------------------------------------
    def direct_getter(self, bucket: str) -> DirectGetter | None:
        """This process's DirectGetter for `bucket`, or None where GETs go through boto3 (which path a
        bucket's GETs take; made once per process and bucket)."""
        state = self._process.get()
        if bucket in state.getters:
            return state.getters[bucket]
        client = self.client
        with state.lock:
            if bucket not in state.getters:
                state.getters[bucket] = self._make_getter(client, bucket)
            return state.getters[bucket]

    def _make_getter(self, client, bucket: str) -> DirectGetter | None:
        o = self.options
        if not o.direct_get or o.anonymous or not _PLAIN_BUCKET.fullmatch(bucket):
            return None
        probe = "climbstream-probe"
        try:
            endpoint = endpoint_from_presigned(
                client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": probe}, ExpiresIn=60),
                probe, client.meta.region_name)
        except UseBoto3 as exc:
            log.info("s3://%s: GETs through boto3 (%s)", bucket, exc)
            return None
        if proxy_applies(endpoint.scheme, endpoint.connect_host):
            log.info("s3://%s: GETs through boto3, which applies the proxy configured in the environment", bucket)
            return None
        with _sessions_lock:
            session = _session(o)
            profile_bundle = session._session.get_config_variable("ca_bundle")
        context = boto3_ssl_context(o.verify, profile_bundle) if endpoint.scheme == "https" else None
        return DirectGetter(endpoint, boto3_credentials(session, _sessions_lock), o.connect_timeout_s,
                            o.read_timeout_s, context,
                            extra_headers={"x-amz-request-payer": "requester"} if o.requester_pays else None)

    def _stop_direct(self, bucket: str, reason: Exception) -> None:
        log.warning("s3://%s: the server answered a direct GET with %s; this bucket's GETs go through boto3 "
                    "from now on", bucket, reason)
        state = self._process.get()
        with state.lock:
            state.getters[bucket] = None

    # -- failure classification ----------------------------------------------------------
    def _is_retryable(self, exc: BaseException) -> bool:
        from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError

        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            code = str(exc.response.get("Error", {}).get("Code", ""))
            return status == 429 or status >= 500 or code in _THROTTLE_CODES
        # Builtin ConnectionError/TimeoutError only: other OSErrors (a full disk) will not heal by waiting.
        return isinstance(exc, (ConnectionError, HTTPClientError, IncompleteReadError, http.client.HTTPException,
                                BuiltinConnectionError, TimeoutError))

    def _describe(self, exc: BaseException, url: str, action: str) -> StorageError:
        from botocore.exceptions import ClientError, NoCredentialsError

        where = f" at {self.options.endpoint_url}" if self.options.endpoint_url else ""
        if isinstance(exc, NoCredentialsError):
            return AccessDeniedError(
                f"{action} {url}: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                f"(or AWS_PROFILE), or storage.access_key_id / storage.secret_access_key"
            )
        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND_CODES or status == 404:
                return ObjectNotFoundError(
                    f"{action} {url}: not found{where} (HTTP {status} {code}); check the bucket, key and "
                    f"endpoint, or rerun 'climbstream manifest' if the shards moved"
                )
            if code in _DENIED_CODES or status in (401, 403):
                return AccessDeniedError(
                    f"{action} {url}: access denied{where} (HTTP {status} {code}); check the credentials "
                    f"(AWS_ACCESS_KEY_ID / AWS_PROFILE or storage.access_key_id) and the bucket policy"
                )
            return StorageError(f"{action} {url}: HTTP {status} {code}{where}: {exc}")
        return StorageError(f"{action} {url}{where}: {type(exc).__name__}: {exc}")

    # -- operations ----------------------------------------------------------------------
    def read_bytes(self, url: str, start: int | None = None, end: int | None = None) -> bytes:
        start, end = check_range(url, start, end)
        if end == start:
            return b""
        bucket, key = split_s3_url(url)
        kwargs = {}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-" + ("" if end is None else str(end - 1))

        def read() -> bytes:
            getter = self.direct_getter(bucket)
            if getter is not None:
                try:
                    return getter.get(key, start, end)
                except UseBoto3 as exc:
                    self._stop_direct(bucket, exc)
            response = self.client.get_object(Bucket=bucket, Key=key, **kwargs)
            return response["Body"].read()

        return check_length(url, start, end, self._call("read", url, read))

    def size(self, url: str) -> int:
        bucket, key = split_s3_url(url)
        return int(self._call("size", url, lambda: self.client.head_object(Bucket=bucket, Key=key)["ContentLength"]))

    def exists(self, url: str) -> bool:
        try:
            self.size(url)
        except ObjectNotFoundError:
            return False
        return True

    def _iter_chunks(self, url: str) -> Iterator[bytes]:
        bucket, key = split_s3_url(url)
        getter = self.direct_getter(bucket)
        if getter is not None:
            chunks = getter.iter_chunks(key)
            try:
                first = next(chunks, b"")  # a UseBoto3 answer comes before any byte
            except UseBoto3 as exc:
                self._stop_direct(bucket, exc)
            else:
                yield first
                yield from chunks
                return
        body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield from body.iter_chunks(1 << 20)
        finally:
            body.close()

    def put_bytes(self, data: bytes, url: str) -> None:
        bucket, key = split_s3_url(url)
        self._call("put", url, lambda: self.client.put_object(Bucket=bucket, Key=key, Body=bytes(data)))

    def put_file(self, local_path: str | os.PathLike, url: str) -> None:
        """Upload in one request up to 64 MiB, as a multipart upload above (each part retried)."""
        bucket, key = split_s3_url(url)
        total = os.path.getsize(local_path)
        if total <= MULTIPART_PART_BYTES:
            def put() -> None:
                with open(local_path, "rb") as f:
                    self.client.put_object(Bucket=bucket, Key=key, Body=f)

            self._call("put", url, put)
            return
        upload_id = self._call("put", url, lambda: self.client.create_multipart_upload(
            Bucket=bucket, Key=key)["UploadId"])
        try:
            parts = []
            with open(local_path, "rb") as f:
                for number, offset in enumerate(range(0, total, MULTIPART_PART_BYTES), start=1):
                    f.seek(offset)
                    chunk = f.read(MULTIPART_PART_BYTES)
                    etag = self._call(f"put (part {number})", url, lambda: self.client.upload_part(
                        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk)["ETag"])
                    parts.append({"PartNumber": number, "ETag": etag})
            self._call("put", url, lambda: self.client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}))
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except Exception as abort_exc:  # the original failure is the one to report
                log.warning("put %s: could not abort multipart upload %s: %s", url, upload_id, abort_exc)
            raise

    def list(self, prefix_url: str) -> list[str]:
        """Every object under the "directory" prefix_url (a trailing '/' is implied)."""
        bucket, prefix = split_s3_url(prefix_url)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        root = f"s3://{bucket}"

        def list_all() -> list[str]:
            keys = []
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/"))
            return keys

        return sorted(join_url(root, key) for key in self._call("list", prefix_url, list_all))
