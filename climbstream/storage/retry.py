"""Which storage failures are worth retrying, how long to wait, and what is raised at the end.

Throttling (429, SlowDown), server errors (5xx), timeouts and dropped connections are
retried with exponential backoff and full jitter; a missing object (404) or a refused one
(403) is final at once, because retrying cannot change the answer. Whatever is raised in
the end is a StorageError naming the URL and saying what to do.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from climbstream.errors import StorageError
from climbstream.storage.options import StorageOptions

log = logging.getLogger(__name__)
T = TypeVar("T")


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """The object or bucket does not exist (HTTP 404 or a missing local file)."""


class AccessDeniedError(StorageError, PermissionError):
    """The store refused the request (HTTP 401/403); credentials or policy must change."""


class IntegrityError(StorageError):
    """Downloaded bytes differ from the expected size or sha256."""


class RetriesExhaustedError(StorageError):
    """A transient failure (throttling, 5xx, network) persisted through every retry."""


class Retryable(Exception):
    """Raised inside a retried call to mark a failure as transient."""


class SuspectBytes(Exception):
    """Bytes that failed their check: retried like a transient failure (a body cut short or
    corrupted in transit reads as a size or sha256 mismatch); `error` is raised when every
    attempt failed the same way."""

    def __init__(self, error: StorageError):
        super().__init__(str(error))
        self.error = error


def backoff_delay_s(attempt: int, options: StorageOptions, rng: random.Random | None = None) -> float:
    """Full-jitter backoff: uniform in [0, min(retry_max_s, retry_base_s * 2**attempt)]."""
    cap = min(options.retry_max_s, options.retry_base_s * (2 ** min(attempt, 62)))
    return (rng or random).uniform(0.0, cap)


def call_with_retries(
    fn: Callable[[], T],
    *,
    url: str,
    action: str,
    options: StorageOptions,
    is_retryable: Callable[[BaseException], bool],
    describe: Callable[[BaseException, str, str], StorageError],
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `fn`, retrying transient failures; translate the final failure with `describe`.

    `describe(exc, url, action)` turns a non-retryable failure into a StorageError; an
    already-translated StorageError passes through unchanged. After `options.max_retries`
    retries a RetriesExhaustedError names the URL, the attempt count and the last failure.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except StorageError:
            raise
        except Exception as exc:  # classified below; nothing is swallowed
            suspect = isinstance(exc, SuspectBytes)
            if not suspect and not is_retryable(exc):
                raise describe(exc, url, action) from exc
            if suspect and attempt >= options.max_retries:
                raise type(exc.error)(f"{exc.error} (the same on all {attempt + 1} attempts)") from None
            if attempt >= options.max_retries:
                raise RetriesExhaustedError(
                    f"{action} {url}: still failing after {attempt + 1} attempts "
                    f"({type(exc).__name__}: {exc}); the store is throttling or unreachable: "
                    f"check the endpoint and network, or raise storage.max_retries "
                    f"(now {options.max_retries})"
                ) from exc
            delay = backoff_delay_s(attempt, options)
            log.warning("%s %s: %s: %s; retry %d/%d in %.2fs", action, url, type(exc).__name__, exc,
                        attempt + 1, options.max_retries, delay)
            sleep(delay)
            attempt += 1
