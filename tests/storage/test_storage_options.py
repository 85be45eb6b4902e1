"""StorageOptions validation and the retry backoff schedule."""

from __future__ import annotations

import random

import pytest

from climbstream.errors import ConfigError, StorageError
from climbstream.storage.options import StorageOptions
from climbstream.storage.retry import RetriesExhaustedError, backoff_delay_s, call_with_retries


def test_defaults_leave_credentials_to_the_aws_environment():
    options = StorageOptions()
    assert options.endpoint_url is None and options.access_key_id is None and options.max_retries == 8


@pytest.mark.parametrize("bad", [
    dict(max_retries=-1), dict(retry_base_s=-0.1), dict(read_timeout_s=0),
    dict(access_key_id="only-the-id"), dict(addressing_style="sideways"),
])
def test_invalid_options_raise_config_error(bad):
    with pytest.raises(ConfigError):
        StorageOptions(**bad)


def test_from_dict_names_unknown_keys():
    assert StorageOptions.from_dict({"region": "eu-west-1"}).region == "eu-west-1"
    with pytest.raises(ConfigError, match=r"dataset\.storage: unknown key\(s\) \['endpoint'\]"):
        StorageOptions.from_dict({"endpoint": "http://x"}, where="dataset.storage")


def test_backoff_is_jittered_exponential_and_capped():
    options = StorageOptions(retry_base_s=0.1, retry_max_s=1.0)
    rng = random.Random(0)
    for attempt, cap in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (50, 1.0), (10_000, 1.0)]:
        delays = [backoff_delay_s(attempt, options, rng) for _ in range(200)]
        assert all(0.0 <= d <= cap for d in delays)
        assert max(delays) > 0.8 * cap  # full jitter reaches up to the cap


def test_retry_loop_sleeps_between_transient_failures_and_stops_at_the_limit():
    options = StorageOptions(max_retries=3, retry_base_s=0.5, retry_max_s=0.5)
    sleeps, calls = [], []

    def flaky():
        calls.append(1)
        raise ConnectionError("reset")

    with pytest.raises(RetriesExhaustedError, match="s3://b/k: still failing after 4 attempts"):
        call_with_retries(flaky, url="s3://b/k", action="read", options=options,
                          is_retryable=lambda e: True, describe=lambda e, u, a: StorageError(u), sleep=sleeps.append)
    assert len(calls) == 4 and len(sleeps) == 3 and all(0 <= s <= 0.5 for s in sleeps)

    calls.clear()
    with pytest.raises(StorageError, match="final s3://b/k"):
        call_with_retries(flaky, url="s3://b/k", action="read", options=options, is_retryable=lambda e: False,
                          describe=lambda e, u, a: StorageError(f"final {u}"), sleep=sleeps.append)
    assert len(calls) == 1
