"""Fixtures for the storage tests: the real S3 server (tests/s3_server.py) and sample bytes."""

from __future__ import annotations

import hashlib
import random
import sys
from pathlib import Path

import pytest

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from tests.s3_server import flaky_proxy, s3_bucket, s3_env, s3_server  # noqa: E402,F401


@pytest.fixture(scope="session")
def payload() -> bytes:
    """300 KiB of seeded random bytes: big enough to span several reads, small enough to be quick."""
    return random.Random(1234).randbytes(300 * 1024)


@pytest.fixture
def payload_sha256(payload) -> str:
    return hashlib.sha256(payload).hexdigest()
