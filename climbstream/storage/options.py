"""Settings for reaching object storage: endpoint, region, credentials, retries, timeouts.

Anything left as None falls back to the conventional AWS sources (AWS_* environment
variables, ~/.aws/config and credentials, instance roles), so the same config works on a
laptop with a profile and on a cluster with injected credentials.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from climbstream.errors import ConfigError

SECRET_FIELDS = ("secret_access_key", "session_token")
_TYPES = {"max_retries": int, "retry_base_s": float, "retry_max_s": float, "connect_timeout_s": float,
          "read_timeout_s": float, "direct_get": bool, "anonymous": bool, "requester_pays": bool, "endpoint_url": str, "region": str,
          "access_key_id": str, "secret_access_key": str, "session_token": str, "addressing_style": str}


def masked(values: dict) -> dict:
    """A copy of storage settings with secrets replaced by '***' (for reprs and logs)."""
    return {k: ("***" if k in SECRET_FIELDS and v is not None else v) for k, v in values.items()}


def _check_type(name: str, value: Any) -> None:
    want = _TYPES.get(name)
    if want is None or value is None:
        return
    ok = isinstance(value, want) and not (want is not bool and isinstance(value, bool))
    if want is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf")
    if not ok:
        raise ConfigError(f"storage.{name}: expected {'a number' if want is float else want.__name__}, got {value!r}")


@dataclass(frozen=True, repr=False)
class StorageOptions:
    """How to reach and retry object storage.

    Retries use exponential backoff with full jitter: attempt n (from 0) sleeps a uniform
    time in [0, min(retry_max_s, retry_base_s * 2**n)], for at most `max_retries` retries
    after the first attempt. `extra` is passed unchanged to fsspec filesystems.

    `direct_get`: S3 GETs (shard downloads and range reads) are signed and sent by
    climbstream's own client (storage/s3_direct.py, a sixth of boto3's CPU per request);
    credentials, endpoint and addressing still come from boto3. False sends every request
    through boto3. Either way a proxy from the environment sends them through boto3.

    `verify`: TLS certificate checking, as boto3's `verify`: None (default: the profile's
    `ca_bundle`, else AWS_CA_BUNDLE, else botocore's bundle), a CA bundle path, or False
    (no checking; for a test endpoint only). Direct GETs use the same bundle.
    `anonymous`: unsigned requests, for public buckets (boto3's UNSIGNED; GETs go through
    boto3). `requester_pays`: every request says the caller pays (RequestPayer=requester,
    the x-amz-request-payer header on direct GETs), as requester-pays buckets demand.
    `repr()` masks the secret key and session token.
    """

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    max_retries: int = 8
    retry_base_s: float = 0.1
    retry_max_s: float = 5.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    addressing_style: str = "auto"
    direct_get: bool = True
    verify: bool | str | None = None
    anonymous: bool = False
    requester_pays: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        shown = masked({f: getattr(self, f) for f in self.__dataclass_fields__})
        return f"StorageOptions({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            _check_type(name, getattr(self, name))
        if self.verify is not None and not isinstance(self.verify, (bool, str)):
            raise ConfigError(f"storage.verify: expected true, false or a CA bundle path, got {self.verify!r}")
        if isinstance(self.verify, str) and not os.path.isfile(self.verify):
            raise ConfigError(f"storage.verify: CA bundle {self.verify!r} is not a file")
        if not isinstance(self.extra, dict):
            raise ConfigError(f"storage.extra: expected a mapping, got {self.extra!r}")
        if self.max_retries < 0:
            raise ConfigError(f"storage.max_retries must be >= 0, got {self.max_retries}")
        if self.retry_base_s < 0 or self.retry_max_s < 0:
            raise ConfigError(
                f"storage.retry_base_s and storage.retry_max_s must be >= 0, got "
                f"{self.retry_base_s} and {self.retry_max_s}"
            )
        for name in ("connect_timeout_s", "read_timeout_s"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ConfigError(f"storage.{name} must be > 0 (or null for the default), got {getattr(self, name)}")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ConfigError(
                "storage.access_key_id and storage.secret_access_key must be given together "
                "(or both left unset to use the AWS environment and config files)"
            )
        if self.addressing_style not in ("auto", "path", "virtual"):
            raise ConfigError(
                f"storage.addressing_style must be 'auto', 'path' or 'virtual', got {self.addressing_style!r}"
            )

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, where: str = "storage") -> StorageOptions:
        """Build from a parsed YAML mapping; unknown keys are a ConfigError naming `where`."""
        values = dict(values or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**values)
