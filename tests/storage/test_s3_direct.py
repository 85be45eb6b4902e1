"""The direct S3 GET client (storage/s3_direct.py): its signature, its connections, and
when it hands a bucket back to boto3. Against the moto server, and against `rclone serve
s3`, which checks every signature (moto does not)."""

from __future__ import annotations

import multiprocessing
import os
import sys
import urllib.parse

import pytest
import storage_children

from climbstream.storage.options import StorageOptions
from climbstream.storage.registry import open_store
from climbstream.storage.retry import AccessDeniedError
from climbstream.storage.s3_direct import Credentials, DirectGetter, endpoint_from_presigned, sigv4_headers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_signature_matches_the_aws_documented_get_object_example():
    # "Example: GET Object" of the S3 SigV4 documentation (single-chunk payload).
    headers = sigv4_headers("GET", "examplebucket.s3.amazonaws.com", "/test.txt", "us-east-1",
                            Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                            "20130524T000000Z", {"Range": "bytes=0-9"})
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_signature_matches_botocore_for_a_key_that_needs_quoting_and_a_session_token():
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    path = "/bucket/" + urllib.parse.quote("fr/shard 000+ü=~(1).mds", safe="/~")
    request = AWSRequest(method="GET", url=f"http://127.0.0.1:9000{path}", headers={"Range": "bytes=5-"})
    S3SigV4Auth(BotoCredentials("AK", "SK/secret", "TOKEN=="), "s3", "eu-west-1").add_auth(request)
    ours = sigv4_headers("GET", "127.0.0.1:9000", path, "eu-west-1", Credentials("AK", "SK/secret", "TOKEN=="),
                         request.headers["X-Amz-Date"], {"Range": "bytes=5-"})
    assert ours["Authorization"] == request.headers["Authorization"]


@pytest.mark.parametrize("url, expected", [
    ("https://bucket.s3.eu-west-1.amazonaws.com/climbstream-probe?X-Amz-Signature=x",
     ("https", "bucket.s3.eu-west-1.amazonaws.com", "bucket.s3.eu-west-1.amazonaws.com", None, "/")),
    ("http://127.0.0.1:9000/bucket/climbstream-probe?X-Amz-Signature=x",
     ("http", "127.0.0.1:9000", "127.0.0.1", 9000, "/bucket/")),
    ("https://s3.example.com:443/b/climbstream-probe", ("https", "s3.example.com", "s3.example.com", 443, "/b/")),
    ("http://[::1]:9000/b/climbstream-probe", ("http", "[::1]:9000", "::1", 9000, "/b/")),
])
def test_a_buckets_endpoint_comes_from_the_url_botocore_presigns(url, expected):
    endpoint = endpoint_from_presigned(url, "climbstream-probe", "aws-global")
    assert tuple(endpoint[:5]) == expected and endpoint.region == "us-east-1"


def _get_object_calls(store) -> list:
    """Every GetObject that goes through boto3 (botocore's own event hook, not a mock)."""
    calls = []
    store.client.meta.events.register("before-call.s3.GetObject", lambda **kw: calls.append(kw))
    return calls


def test_gets_and_downloads_make_no_boto3_call(s3_bucket, payload, payload_sha256, tmp_path):
    url = f"{s3_bucket.url}/fr/shard-000000.mds"
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="fr/shard-000000.mds", Body=payload)
    store = open_store(url, s3_bucket.options())
    boto3_gets = _get_object_calls(store)
    assert store.read_bytes(url) == payload
    assert store.read_bytes(url, 1000, 5000) == payload[1000:5000]
    assert store.read_bytes(url, 4096) == payload[4096:]
    assert store.download(url, tmp_path / "a", len(payload), payload_sha256) == len(payload)
    assert (tmp_path / "a").read_bytes() == payload
    getter = store.direct_getter(s3_bucket.name)
    assert isinstance(getter, DirectGetter)
    assert boto3_gets == []


def test_direct_get_off_sends_every_get_through_boto3(s3_bucket, payload):
    url = f"{s3_bucket.url}/k"
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="k", Body=payload)
    store = open_store(url, s3_bucket.options(direct_get=False))
    boto3_gets = _get_object_calls(store)
    assert store.read_bytes(url, 10, 20) == payload[10:20]
    assert store.direct_getter(s3_bucket.name) is None and len(boto3_gets) == 1


def test_a_redirect_sends_that_bucket_through_boto3_from_then_on(s3_bucket, flaky_proxy, payload):
    url = f"{s3_bucket.url}/k"
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="k", Body=payload)
    store = open_store(url, s3_bucket.options(endpoint_url=flaky_proxy.url))
    boto3_gets = _get_object_calls(store)
    flaky_proxy.configure(fail_first=1, status=301)
    assert store.read_bytes(url, 0, 100) == payload[:100]
    assert flaky_proxy.requests == 2 and len(boto3_gets) == 1
    assert store.read_bytes(url) == payload
    assert store.direct_getter(s3_bucket.name) is None and len(boto3_gets) == 2


def test_forked_child_opens_its_own_connection(s3_bucket, payload):
    url = f"{s3_bucket.url}/k"
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="k", Body=payload)
    store = open_store(url, s3_bucket.options())
    assert store.read_bytes(url) == payload
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=storage_children.read_direct_in_child, args=(store, url, results))
    child.start()
    opened_in_child, length = results.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0 and length == len(payload)
    assert opened_in_child == 1
    assert store.direct_getter(s3_bucket.name).connections_opened == 1  # the parent's, untouched


@pytest.fixture(scope="module")
def rclone_root(tmp_path_factory):
    """`rclone serve s3` over a folder with bucket "corpus" holding a key that needs quoting."""
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    from s3_rclone import RcloneNotFound, RcloneS3Server

    root = tmp_path_factory.mktemp("rclone")
    (root / "corpus" / "fr").mkdir(parents=True)
    (root / "corpus" / "fr" / "shard 000+ü=(1).mds").write_bytes(bytes(range(256)) * 40)
    try:
        with RcloneS3Server(str(root)) as server:
            yield server
    except RcloneNotFound as exc:
        pytest.skip(str(exc))


def test_a_server_that_checks_signatures_accepts_ours_on_one_connection_and_refuses_a_wrong_secret(rclone_root):
    from climbstream.storage.options import StorageOptions

    url = "s3://corpus/fr/shard 000+ü=(1).mds"
    good = StorageOptions(endpoint_url=rclone_root.endpoint_url, region="us-east-1",
                          access_key_id=rclone_root.access_key_id, secret_access_key=rclone_root.secret_access_key)
    store = open_store(url, good)
    boto3_gets = _get_object_calls(store)
    expected = bytes(range(256)) * 40
    assert store.read_bytes(url) == expected
    assert store.read_bytes(url, 300, 700) == expected[300:700]
    assert store.read_bytes(url, 10_000) == expected[10_000:]
    assert boto3_gets == [] and store.direct_getter("corpus").connections_opened == 1  # kept alive

    bad = open_store(url, StorageOptions(endpoint_url=rclone_root.endpoint_url, region="us-east-1",
                                         access_key_id=rclone_root.access_key_id, secret_access_key="wrong"))
    with pytest.raises(AccessDeniedError, match="access denied") as info:
        bad.read_bytes(url)
    assert url in str(info.value)


def test_a_proxy_in_the_environment_leaves_gets_to_boto3_unless_the_host_is_exempt(s3_bucket, monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # boto3 would send everything there
    assert open_store(s3_bucket.url, s3_bucket.options()).direct_getter(s3_bucket.name) is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert isinstance(open_store(s3_bucket.url, s3_bucket.options()).direct_getter(s3_bucket.name), DirectGetter)


def _private_ca(folder) -> tuple[str, str, str]:
    """(ca.pem, server.pem, server.key): a throwaway CA and a certificate it signed for 127.0.0.1."""
    import subprocess

    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=climbstream test CA")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return str(folder / "ca.pem"), str(folder / "server.pem"), str(folder / "server.key")


def test_direct_gets_over_https_trust_the_ca_bundle_boto3_trusts(tmp_path, monkeypatch):
    """A private CA named by storage.verify or by the AWS profile's ca_bundle; neither: refused."""
    import shutil

    from climbstream.errors import StorageError
    from climbstream.storage.options import StorageOptions

    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    from s3_rclone import RcloneNotFound, RcloneS3Server

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a private CA")
    ca, cert, key = _private_ca(tmp_path)
    (tmp_path / "root" / "corpus").mkdir(parents=True)
    (tmp_path / "root" / "corpus" / "a.bin").write_bytes(b"tls " * 1000)
    for name in ("AWS_CA_BUNDLE", "AWS_PROFILE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    try:
        server = RcloneS3Server(str(tmp_path / "root"), tls=(cert, key))
    except RcloneNotFound as exc:
        pytest.skip(str(exc))
    with server:
        assert server.endpoint_url.startswith("https://")
        url = "s3://corpus/a.bin"

        def options(**kw):
            return StorageOptions(endpoint_url=server.endpoint_url, region="us-east-1", max_retries=0,
                                  access_key_id=server.access_key_id, secret_access_key=server.secret_access_key, **kw)

        store = open_store(url, options(verify=ca))
        assert store.read_bytes(url) == b"tls " * 1000
        assert isinstance(store.direct_getter("corpus"), DirectGetter) and _get_object_calls(store) == []

        from climbstream.storage import s3

        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
        (tmp_path / "aws-config").write_text(f"[default]\nca_bundle = {ca}\n")
        s3.forget_sessions()  # sessions are made once per process; this test changes the profile mid-process
        store = open_store(url, options())
        assert store.read_bytes(url, 4, 12) == b"tls tls "
        assert isinstance(store.direct_getter("corpus"), DirectGetter)

        (tmp_path / "aws-config").write_text("[default]\n")
        s3.forget_sessions()
        with pytest.raises(StorageError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            open_store(url, options()).read_bytes(url)


@pytest.mark.parametrize("direct_get", [True, False])
def test_requester_pays_is_declared_on_every_request(s3_bucket, flaky_proxy, payload, direct_get):
    url = f"{s3_bucket.url}/fr/shard.bin"
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="fr/shard.bin", Body=payload)
    store = open_store(url, s3_bucket.options(endpoint_url=flaky_proxy.url, requester_pays=True, direct_get=direct_get))
    assert store.read_bytes(url, 0, 100) == payload[:100]
    assert store.size(url) == len(payload)
    assert store.list(f"{s3_bucket.url}/fr") == [url]
    sent = [h for h, p in zip(flaky_proxy.headers, flaky_proxy.paths) if "climbstream-probe" not in p]
    assert sent and all(h.get("x-amz-request-payer") == "requester" for h in sent), flaky_proxy.paths
    assert all("x-amz-request-payer" in h.get("authorization", "") for h in sent)  # signed, not just sent


def test_anonymous_access_sends_unsigned_requests(s3_bucket, flaky_proxy, payload):
    url = f"{s3_bucket.url}/public.bin"
    s3_bucket.client().put_object(Bucket=s3_bucket.name, Key="public.bin", Body=payload, ACL="public-read")
    store = open_store(url, StorageOptions(endpoint_url=flaky_proxy.url, region="us-east-1", anonymous=True))
    assert store.read_bytes(url) == payload
    assert flaky_proxy.headers and all("authorization" not in h for h in flaky_proxy.headers)
