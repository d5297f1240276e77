"""A small client of Prometheus' HTTP API: instant queries, one evaluation time for all of them.

Only ``GET /api/v1/query`` is used: instant vectors, and range vectors (``metric[10m]``) whose raw
samples the caller sums itself. Errors are one line naming the server: unreachable, not a
Prometheus (no JSON, or no ``status``), or a query Prometheus refuses (its own error text).
"""

from __future__ import annotations

import dataclasses
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from mlci_lib.errors import InputError, ServiceError


@dataclasses.dataclass(frozen=True)
class Sample:
    """One element of an instant vector: its labels and value."""

    labels: Mapping[str, str]
    value: float


@dataclasses.dataclass(frozen=True)
class Series:
    """One element of a range vector: its labels, and its scraped values and their times, oldest first."""

    labels: Mapping[str, str]
    values: tuple[float, ...]
    times: tuple[float, ...] = ()

    def counter_increase(self, *, born_inside: bool = False) -> float:
        """How much a counter grew across these samples, exactly: no extrapolation.

        PromQL's ``increase()`` extrapolates to the window's edges, by a factor that differs
        between series that began at different times (a class first predicted mid-window), which
        skews shares computed from several series. A fall in the value is a counter reset (the
        process restarted): the value after it is all new. A series ``born_inside`` the window (a
        new pod, or the first answer with some status code) counted its first value from zero.
        """
        total = self.values[0] if born_inside and self.values else 0.0
        for before, after in zip(self.values[:-1], self.values[1:], strict=True):
            total += after - before if after >= before else after
        return total

    def change(self, *, born_inside: bool = False) -> float:
        """Last value minus first, for a sum that may fall (a sum of negative predictions is not
        a counter: a fall is no reset)."""
        if not self.values:
            return 0.0
        return self.values[-1] - (0.0 if born_inside else self.values[0])

    def step(self) -> float | None:
        """The median time between two samples (the scrape interval), None with one sample."""
        if len(self.times) < 2:
            return None
        gaps = sorted(b - a for a, b in zip(self.times[:-1], self.times[1:], strict=True))
        return gaps[len(gaps) // 2]


class PrometheusClient:
    """Queries one Prometheus server, all at the same evaluation time ``at`` (Unix seconds)."""

    def __init__(self, url: str, *, at: float, timeout: float = 10.0, option: str = "--prometheus") -> None:
        parsed = urllib.parse.urlsplit(url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InputError(
                f"option {option}: {url!r} is not an http(s) URL", hint="e.g. http://prometheus:9090"
            )
        self.url = url.strip().rstrip("/")
        self.at = at
        self.timeout = timeout

    def query(self, expression: str) -> list[Sample]:
        """The instant vector of ``expression`` at the client's evaluation time."""
        result = self._query(expression, "vector")
        out = []
        for item in result:
            value = float(item["value"][1])
            out.append(
                Sample(labels=dict(item.get("metric") or {}), value=value if math.isfinite(value) else 0.0)
            )
        return out

    def query_range(self, expression: str) -> list[Series]:
        """The range vector of ``expression`` (a selector with ``[window]``) at the evaluation time."""
        result = self._query(expression, "matrix")
        out = []
        for item in result:
            pairs = [(float(t), float(v)) for t, v in item.get("values") or [] if math.isfinite(float(v))]
            out.append(
                Series(
                    labels=dict(item.get("metric") or {}),
                    values=tuple(v for _, v in pairs),
                    times=tuple(t for t, _ in pairs),
                )
            )
        return out

    def _query(self, expression: str, kind: str) -> list[Any]:
        params = urllib.parse.urlencode({"query": expression, "time": f"{self.at:.3f}"})
        address = f"{self.url}/api/v1/query?{params}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            # Prometheus answers 400/422 with a JSON error for a query it refuses.
            body = exc.read()
            if exc.code not in (400, 422, 503):
                raise ServiceError(f"Prometheus at {self.url} answered HTTP {exc.code} to a query") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceError(
                f"Prometheus at {self.url} does not answer: {reason}",
                hint="check --prometheus (the server's address, e.g. http://prometheus:9090)",
            ) from None
        try:
            data = json.loads(body)
        except ValueError:
            raise ServiceError(
                f"{self.url} did not answer like Prometheus (no JSON from /api/v1/query)"
            ) from None
        if not isinstance(data, dict) or "status" not in data:
            raise ServiceError(f"{self.url} did not answer like Prometheus (no status in /api/v1/query)")
        if data["status"] != "success":
            error = " ".join(str(data.get("error", "unknown error")).split())[:300]
            raise InputError(f"Prometheus at {self.url} refused the query {expression!r}: {error}")
        result = (data.get("data") or {}).get("result")
        if (data.get("data") or {}).get("resultType") != kind or not isinstance(result, list):
            raise ServiceError(f"Prometheus at {self.url} did not return a {kind} for {expression!r}")
        return result
