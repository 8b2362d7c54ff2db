"""Retries of Messages API requests, owned by the runtime so that their timing is seeded.

The SDK's built-in retry draws its backoff jitter from the global ``random`` module and sleeps
on ``anyio`` directly, so a run that meets a retryable error without ``retry-after`` could not
be replayed by seed. The runtime builds its client with ``max_retries=0`` and retries here
instead: the SDK's policy (which errors are retried, how long to wait, ``x-should-retry``,
``retry-after-ms`` / ``retry-after``), with the jitter drawn from the run's ``ChaosRandom`` and
the wait taken on the run's ``Clock``.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass

import anthropic
import httpx2

from harness.chaos_random import ChaosRandom

__all__ = ["INITIAL_DELAY", "MAX_DELAY", "Retry", "RetryPolicy", "retry_after", "retryable"]

INITIAL_DELAY = 0.5
"""Backoff before the first retry, in seconds (as the SDK)."""
MAX_DELAY = 8.0
"""Backoff ceiling, in seconds (as the SDK)."""
_MAX_RETRY_AFTER = 4_294_967.0  # the SDK's ceiling on a server-requested wait


@dataclass(frozen=True, slots=True)
class Retry:
    """The decision to retry: the attempt about to be made (1 = first retry) and the wait."""

    attempt: int
    delay: float
    retry_after: float | None
    """What the server asked for, when it did (the delay is then exactly that)."""


def retryable(exc: BaseException) -> bool:
    """Whether the SDK would retry ``exc``: connection errors and timeouts, and status errors
    with 408, 409, 429 or >= 500 unless the server says otherwise with ``x-should-retry``."""
    if isinstance(exc, anthropic.APIConnectionError):  # includes APITimeoutError
        return True
    if not isinstance(exc, anthropic.APIStatusError):
        return False
    should_retry = exc.response.headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        return should_retry == "true"
    status = exc.status_code
    return status in (408, 409, 429) or status >= 500


def retry_after(headers: httpx2.Headers) -> float | None:
    """Seconds the server asks the client to wait: ``retry-after-ms``, else ``retry-after`` as
    seconds or as an HTTP date (measured against the response's own ``date`` header, so no
    wall clock is read)."""
    try:
        return float(headers.get("retry-after-ms", "")) / 1000
    except ValueError:
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    when, sent = email.utils.parsedate_tz(value), email.utils.parsedate_tz(headers.get("date", ""))
    if when is None or sent is None:
        return None
    return float(email.utils.mktime_tz(when) - email.utils.mktime_tz(sent))


class RetryPolicy:
    """Up to ``max_retries`` retries of retryable errors, exponential backoff with seeded jitter.

    The wait before retry ``n`` (1-based) is the server's ``retry-after`` when it gives a
    positive one, else ``min(0.5 * 2**(n-1), 8) * (1 - 0.25 * u)`` with ``u`` drawn from
    ``rng`` — the SDK's formula with the run's random source.
    """

    def __init__(self, max_retries: int, *, rng: ChaosRandom) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0 (got {max_retries})")
        self.max_retries = max_retries
        self._rng = rng

    def next(self, retries_taken: int, exc: BaseException) -> Retry | None:
        """The retry to make after attempt ``retries_taken`` (0 = the first request) failed with
        ``exc``, or ``None`` when the error is final."""
        if retries_taken >= self.max_retries or not retryable(exc):
            return None
        asked = (
            retry_after(exc.response.headers) if isinstance(exc, anthropic.APIStatusError) else None
        )
        if asked is not None and asked > 0:
            return Retry(retries_taken + 1, min(asked, _MAX_RETRY_AFTER), asked)
        # The exponent is capped: the ceiling is reached long before, and a float power overflows.
        backoff = min(INITIAL_DELAY * 2.0 ** min(retries_taken, 32), MAX_DELAY)
        return Retry(retries_taken + 1, backoff * (1 - 0.25 * self._rng.random()), None)
