from __future__ import annotations

import pytest

from mlci_lib.retry import RetryPolicy, Transient, call_with_retries, parse_retry_after


class Flaky(Exception):
    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after


def classify(error: BaseException) -> Transient | None:
    if isinstance(error, Flaky) and error.status in (429, 503):
        return Transient(error.retry_after)
    return None


def test_transient_failures_are_retried_with_the_servers_delay() -> None:
    failures = [Flaky(503), Flaky(429, retry_after=7.0)]
    waits: list[float] = []

    def operation() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    result = call_with_retries(
        operation, classify, policy=RetryPolicy(base_delay=1, jitter=0), sleep=waits.append
    )
    assert result == "done"
    assert waits == [1.0, 7.0]


def test_permanent_failures_are_not_retried() -> None:
    calls = []

    def operation() -> None:
        calls.append(1)
        raise Flaky(404)

    with pytest.raises(Flaky):
        call_with_retries(operation, classify, sleep=lambda _s: None)
    assert len(calls) == 1


def test_attempts_are_bounded() -> None:
    calls = []

    def operation() -> None:
        calls.append(1)
        raise Flaky(503)

    with pytest.raises(Flaky):
        call_with_retries(operation, classify, policy=RetryPolicy(attempts=3), sleep=lambda _s: None)
    assert len(calls) == 3


def test_a_retry_after_beyond_the_ceiling_fails_at_once() -> None:
    calls = []

    def operation() -> None:
        calls.append(1)
        raise Flaky(429, retry_after=3600)

    with pytest.raises(Flaky):
        call_with_retries(operation, classify, sleep=lambda _s: None)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("12", 12.0), ("0", 0.0), ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0), ("soon", None), (None, None)],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now = 1445412480.0  # 2015-10-21 07:28:00 UTC
    assert parse_retry_after(header, now=now) == seconds
