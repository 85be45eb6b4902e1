"""Request signatures, session tokens and secret keys taken out of log lines.

At debug level botocore logs each request it signs: the canonical request (with the
session token), the signature, and the headers sent (the Authorization header ends in
`Signature=...`). A signature authorises that one request for up to 15 minutes and a
session token authorises anything its role may do, so a debug log pasted into an issue
must hold neither. `RedactingFilter` (installed by the CLI on its log handler) rewrites
each record's message with `redact`; the rest of the line (which request, which
headers were signed, the credential's key id and scope) stays, since that is what a
debug log is read for.

Secret values themselves (the secret access key, a session token) are replaced wherever
they appear once they are known: from the environment (AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN) and from StorageOptions when the S3 store builds a client
(`remember_secrets`).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable

MASK = "<redacted>"

_PATTERNS = (
    # SigV4 Authorization header and presigned URLs: Signature=..., X-Amz-Signature=... (the
    # whole pair goes, so a log searched for "Signature=" finds nothing)
    (re.compile(r"(?:X-Amz-)?Signature=[0-9A-Za-z%+/=]+", re.IGNORECASE), "<signature redacted>"),
    # botocore.auth: "Signature:\n<hex>"
    (re.compile(r"(Signature:\s*)[0-9a-fA-F]{16,}"), r"\1" + MASK),
    # session tokens: header dicts ('X-Amz-Security-Token': b'...'), canonical requests
    # (x-amz-security-token:...), query strings (X-Amz-Security-Token=...)
    (re.compile(r"(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^\s'\"&,}]+", re.IGNORECASE), r"\1" + MASK),
    # SigV2: "Authorization: AWS AKID:<base64 signature>"
    (re.compile(r"(\bAWS [A-Z0-9]{4,128}:)[0-9A-Za-z+/=]+"), r"\1" + MASK),
)

_known: set[str] = set()
_known_lock = threading.Lock()
_MIN_SECRET_CHARS = 8  # shorter values (a test's "testing") would mask ordinary words


def remember_secrets(*values: str | None) -> None:
    """Mask these values (a secret key, a session token) in every later log line."""
    with _known_lock:
        _known.update(v for v in values if v and len(v) >= _MIN_SECRET_CHARS)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with signatures, session tokens and the given or remembered secrets masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    with _known_lock:
        values = set(_known)
    values.update(s for s in secrets if s and len(s) >= _MIN_SECRET_CHARS)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that masks what `redact` masks in each record's message and traceback."""

    def __init__(self) -> None:
        super().__init__()
        remember_secrets(os.environ.get("AWS_SECRET_ACCESS_KEY"), os.environ.get("AWS_SESSION_TOKEN"),
                         os.environ.get("AWS_SECURITY_TOKEN"))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
