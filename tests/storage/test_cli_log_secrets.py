"""`climbstream -vv` against a real S3 server logs requests, never their signatures or the secret key."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from climbstream.storage.redact import redact

SECRET = "cLiMbStReAm+SeCrEt/KeY0123456789abcdefABCD"  # moto accepts any key; this one is easy to spot


def _upload_corpus(bucket, prefix: str, tmp_path) -> None:
    from streaming import MDSWriter

    root = tmp_path / "corpus"
    rng = np.random.default_rng(0)
    for lang in ("en", "fr"):
        with MDSWriter(out=str(root / lang / "train"), columns={"tokens": "ndarray:uint16"}, size_limit=2000) as w:
            for _ in range(20):
                w.write({"tokens": rng.integers(0, 500, 16).astype(np.uint16)})
    client = bucket.client()
    for d, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
            client.upload_file(os.path.join(d, f), bucket.name, f"{prefix}/{rel}")


def test_debug_log_of_an_s3_command_has_no_signature_or_secret_key(s3_bucket, tmp_path):
    _upload_corpus(s3_bucket, "corpus", tmp_path)
    env = dict(os.environ, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN="sEsSiOn-ToKeN-for-this-test")
    cmd = [sys.executable, "-m", "climbstream", "-vv", "manifest", f"{s3_bucket.url}/corpus", "--format", "mds",
           "--endpoint-url", s3_bucket.endpoint_url, "--quiet"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    err = done.stderr
    assert "DEBUG botocore" in err and "Authorization" in err  # the requests are logged ...
    assert "Signature=" not in err and "X-Amz-Signature" not in err  # ... but not how they were signed
    assert SECRET not in err and "sEsSiOn-ToKeN" not in err
    assert "<signature redacted>" in err


def test_redact_covers_each_form_a_signature_takes_in_a_log_line():
    sig = "f" * 64
    line = (f"headers {{'Authorization': b'AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, "
            f"SignedHeaders=host;x-amz-date, Signature={sig}', 'X-Amz-Security-Token': b'tok123'}} "
            f"url https://b.s3.amazonaws.com/k?X-Amz-Signature={sig}&X-Amz-Credential=AKID "
            f"Signature:\n{sig}\n AWS AKID:c2lnbmF0dXJlPQ== {SECRET}")
    out = redact(line, secrets=(SECRET,))
    assert sig not in out and "tok123" not in out and SECRET not in out and "c2lnbmF0dXJlPQ==" not in out
    assert "Credential=AKID/20260101" in out and "SignedHeaders=host;x-amz-date" in out  # the rest stays
