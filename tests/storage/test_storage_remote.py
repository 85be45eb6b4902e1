"""ObjectStore behaviour on local disk, the real S3 server (moto_server) and fsspec memory://."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import uuid

import pytest
import storage_children

from climbstream.errors import ConfigError, StorageError
from climbstream.storage.local_store import LocalStore
from climbstream.storage.registry import open_store
from climbstream.storage.urls import join_url, parent_url
from climbstream.storage.retry import (
    AccessDeniedError,
    IntegrityError,
    ObjectNotFoundError,
    RetriesExhaustedError,
)
from climbstream.storage.s3 import S3Store

FAST_RETRIES = dict(max_retries=6, retry_base_s=0.001, retry_max_s=0.01)


@pytest.fixture(params=["local", "file-url", "s3", "memory"])
def root(request, tmp_path):
    """(store, root URL) for each backend; the root is an empty directory or prefix."""
    if request.param == "local":
        return open_store(str(tmp_path)), str(tmp_path / "corpus")
    if request.param == "file-url":
        return open_store("file://" + str(tmp_path)), "file://" + str(tmp_path / "corpus")
    if request.param == "memory":
        url = f"memory://climbstream-test-{uuid.uuid4().hex}"
        return open_store(url), url
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(bucket.url, bucket.options()), bucket.url + "/corpus"


def test_put_read_range_size_exists_list_roundtrip_on_every_backend(root, payload, tmp_path):
    store, base = root
    url = join_url(base, "fr/shard-000000.mds")
    store.put_bytes(payload, url)
    local = tmp_path / "upload.bin"
    local.write_bytes(payload[:1000])
    store.put_file(local, join_url(base, "de/shard-000000.mds"))
    store.put_bytes(b"", join_url(base, "de/empty.bin"))

    assert store.read_bytes(url) == payload
    assert store.read_bytes(url, 1000, 5000) == payload[1000:5000]
    assert store.read_bytes(url, 7, 8) == payload[7:8]
    assert store.read_bytes(url, 4096) == payload[4096:]
    assert store.read_bytes(url, None, 10) == payload[:10]
    assert store.read_bytes(url, 10, 10) == b""
    assert store.size(url) == len(payload)
    assert store.exists(url) and not store.exists(join_url(base, "fr/missing.mds"))
    assert store.read_bytes(join_url(base, "de/shard-000000.mds")) == payload[:1000]
    assert store.list(base) == [
        join_url(base, "de/empty.bin"), join_url(base, "de/shard-000000.mds"), join_url(base, "fr/shard-000000.mds"),
    ]
    assert store.list(join_url(base, "fr")) == [url]


def test_download_is_atomic_and_verifies_size_and_sha256(root, payload, payload_sha256, tmp_path):
    store, base = root
    url = join_url(base, "shard.bin")
    store.put_bytes(payload, url)
    dest = tmp_path / "out" / "shard.bin"
    assert store.download(url, dest, expected_size=len(payload), expected_sha256=payload_sha256) == len(payload)
    assert dest.read_bytes() == payload
    assert os.listdir(dest.parent) == ["shard.bin"]


@pytest.mark.parametrize("wrong", ["sha256", "size-short", "size-long"])
def test_corrupted_download_names_url_and_leaves_no_partial_file(root, payload, payload_sha256, tmp_path, wrong):
    store, base = root
    url = join_url(base, "shard.bin")
    store.put_bytes(payload, url)
    dest = tmp_path / "out" / "shard.bin"
    kwargs = {
        "sha256": dict(expected_size=len(payload), expected_sha256=hashlib.sha256(b"other").hexdigest()),
        "size-short": dict(expected_size=len(payload) + 1),
        "size-long": dict(expected_size=len(payload) - 1),
    }[wrong]
    with pytest.raises(IntegrityError, match="mismatch") as info:
        store.download(url, dest, **kwargs)
    assert url in str(info.value) and "climbstream manifest" in str(info.value)
    assert os.listdir(dest.parent) == []


def test_missing_object_raises_not_found_naming_url(root, tmp_path):
    store, base = root
    url = join_url(base, "nope/shard-000009.mds")
    for call in (lambda: store.read_bytes(url), lambda: store.size(url),
                 lambda: store.download(url, tmp_path / "x.bin")):
        with pytest.raises(ObjectNotFoundError) as info:
            call()
        assert url in str(info.value)
        assert isinstance(info.value, StorageError)
    assert not (tmp_path / "x.bin").exists()


def test_range_past_the_end_raises_naming_url(root, payload):
    store, base = root
    url = join_url(base, "shard.bin")
    store.put_bytes(payload, url)
    with pytest.raises(StorageError, match="past the end") as info:
        store.read_bytes(url, len(payload) - 10, len(payload) + 10)
    assert url in str(info.value)
    with pytest.raises(StorageError, match="invalid byte range"):
        store.read_bytes(url, 10, 5)


def test_join_and_parent_url():
    assert join_url("s3://b/corpus", "fr/s.mds") == "s3://b/corpus/fr/s.mds"
    assert join_url("s3://b/corpus/", "./fr/s.mds") == "s3://b/corpus/fr/s.mds"
    assert join_url("file:///", "x") == "file:///x"
    assert join_url("/data", "s3://other/x") == "s3://other/x"
    assert join_url("/data", "/abs/x") == "/abs/x"
    assert parent_url("s3://b/corpus/climbstream-manifest.json") == "s3://b/corpus"
    assert parent_url("s3://b/m.json") == "s3://b"
    assert parent_url("/data/c/m.json") == "/data/c"
    assert parent_url("file:///m.json") == "file:///"


def test_local_store_reads_in_place():
    store = open_store("/tmp/x")
    assert isinstance(store, LocalStore) and store.is_local
    assert store.local_path("file:///data/a%20b.mds") == "/data/a b.mds"
    assert not S3Store().is_local
    with pytest.raises(StorageError, match="not a local path"):
        S3Store().local_path("s3://b/k")


def test_unknown_scheme_is_a_config_error_naming_the_url():
    with pytest.raises(ConfigError, match="nosuchproto://bucket/key: no storage backend"):
        open_store("nosuchproto://bucket/key")


# -- S3 failure handling through the flaky proxy --------------------------------------------

@pytest.fixture
def proxied(s3_bucket, flaky_proxy, payload):
    """(store through the proxy, proxy, URL of an object holding `payload`)."""
    url = f"{s3_bucket.url}/fr/shard-000000.mds"
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="fr/shard-000000.mds", Body=payload)
    store = open_store(url, s3_bucket.options(endpoint_url=flaky_proxy.url, **FAST_RETRIES))
    return store, flaky_proxy, url


def test_404_is_not_retried(proxied, s3_bucket):
    store, proxy, _ = proxied
    url = f"{s3_bucket.url}/fr/missing.mds"
    with pytest.raises(ObjectNotFoundError, match="not found") as info:
        store.read_bytes(url)
    assert url in str(info.value)
    assert proxy.requests == 1
    proxy.configure()
    with pytest.raises(ObjectNotFoundError):
        open_store("s3://no-such-bucket/x", store.options).read_bytes("s3://no-such-bucket/x")
    assert proxy.requests == 1


@pytest.mark.parametrize("status", [401, 403])
def test_access_denied_is_not_retried(proxied, status):
    store, proxy, url = proxied
    proxy.configure(fail_first=100, status=status)
    with pytest.raises(AccessDeniedError, match="access denied") as info:
        store.read_bytes(url)
    assert url in str(info.value) and "AWS_ACCESS_KEY_ID" in str(info.value)
    assert proxy.requests == 1


@pytest.mark.parametrize("status", [503, 500, 429])
def test_transient_errors_are_retried_and_every_byte_arrives(proxied, payload, payload_sha256, tmp_path, status):
    store, proxy, url = proxied
    proxy.configure(fail_first=3, status=status)
    assert store.read_bytes(url, 100, 200_000) == payload[100:200_000]
    assert proxy.requests == 4

    proxy.configure(fail_first=2, status=status)
    dest = tmp_path / "shard.mds"
    assert store.download(url, dest, len(payload), payload_sha256) == len(payload)
    assert dest.read_bytes() == payload
    assert proxy.requests == 3

    proxy.configure(fail_first=2, status=status)
    store.put_bytes(payload[::-1], url)
    proxy.configure(fail_first=2, status=status)
    assert store.list(url.rsplit("/", 1)[0]) == [url]
    proxy.configure(fail_first=2, status=status)
    assert store.size(url) == len(payload)
    assert store.read_bytes(url) == payload[::-1]


def test_persistent_throttling_gives_up_after_max_retries_naming_url(proxied):
    store, proxy, url = proxied
    proxy.configure(fail_first=1000, status=503)
    with pytest.raises(RetriesExhaustedError) as info:
        store.read_bytes(url)
    assert url in str(info.value) and "max_retries" in str(info.value)
    assert proxy.requests == FAST_RETRIES["max_retries"] + 1


def test_unreachable_endpoint_is_retried_then_fails_naming_url(s3_bucket):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    store = open_store(s3_bucket.url, s3_bucket.options(endpoint_url=dead, max_retries=2, retry_base_s=0.001))
    with pytest.raises(RetriesExhaustedError, match="3 attempts") as info:
        store.size(f"{s3_bucket.url}/x")
    assert f"{s3_bucket.url}/x" in str(info.value)


def test_credentials_and_endpoint_come_from_the_aws_environment(s3_bucket, payload):
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="k", Body=payload)
    store = open_store(s3_bucket.url)  # no explicit options: AWS_* variables from s3_env
    assert store.read_bytes(f"{s3_bucket.url}/k", 0, 10) == payload[:10]


def test_large_file_upload_uses_multipart_and_round_trips(s3_bucket, tmp_path, monkeypatch):
    import climbstream.storage.s3 as s3_module

    monkeypatch.setattr(s3_module, "MULTIPART_PART_BYTES", 5 << 20)  # S3's smallest part size
    data = os.urandom((5 << 20) * 2 + 123)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    store = open_store(s3_bucket.url, s3_bucket.options())
    store.put_file(local, f"{s3_bucket.url}/big.bin")
    assert store.size(f"{s3_bucket.url}/big.bin") == len(data)
    assert hashlib.sha256(store.read_bytes(f"{s3_bucket.url}/big.bin")).digest() == hashlib.sha256(data).digest()


def test_forked_child_creates_its_own_boto3_client(s3_bucket, payload):
    url = f"{s3_bucket.url}/k"
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="k", Body=payload)
    store = open_store(url, s3_bucket.options())
    assert store.read_bytes(url) == payload
    parent_client = id(store.client)
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=storage_children.read_in_child, args=(store, url, results))
    child.start()
    child_client, created_in_child, length = results.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert length == len(payload)
    assert created_in_child == 1 and child_client != parent_client
    assert store.clients_created == 1 and id(store.client) == parent_client
