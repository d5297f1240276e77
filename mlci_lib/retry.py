"""Bounded retries with exponential backoff for transient failures of remote services.

One policy for every remote call mlci makes (tracking server, image registry, GitHub API):
only failures that a later attempt can fix are retried (HTTP 408, 429, 502, 503, 504 and dropped
connections), a server's ``Retry-After`` is honoured up to a ceiling, and the number of attempts
is bounded so a broken service fails the step in seconds, not hours.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

TRANSIENT_HTTP_STATUSES = frozenset({408, 429, 502, 503, 504})


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    #: Largest Retry-After mlci will wait for; a longer one is treated as a failure.
    max_retry_after: float = 120.0
    jitter: float = 0.1

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        backoff: float = min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)
        return backoff * (1 + random.uniform(-self.jitter, self.jitter))


@dataclasses.dataclass(frozen=True)
class Transient:
    """What a classifier says of a failure: retry it, and after how long if the server said."""

    retry_after: float | None = None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def call_with_retries(
    operation: Callable[[], T],
    classify: Callable[[BaseException], Transient | None],
    *,
    policy: RetryPolicy | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``operation``; when ``classify`` calls its failure transient, wait and try again.

    The last failure is re-raised unchanged once the attempts are spent, or at once when it is
    not transient, so callers keep their own error handling.
    """
    rules = policy or RetryPolicy()
    attempt = 1
    while True:
        try:
            return operation()
        except Exception as error:
            verdict = classify(error)
            if verdict is None or attempt >= rules.attempts:
                raise
            if verdict.retry_after is not None and verdict.retry_after > rules.max_retry_after:
                raise
            wait = rules.delay(attempt, verdict.retry_after)
            if on_retry is not None:
                on_retry(attempt, error, wait)
            sleep(wait)
            attempt += 1
