"""Serving metrics in the Prometheus text exposition format (version 0.0.4).

Request counts by endpoint and status, a request latency histogram, predictions by class (or a
sum and count of predicted values for regressors), and a running summary of each numeric input
feature (count, sum, sum of squares, min, max) so the monitoring side can follow input drift.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Sequence
from typing import Any

#: Latency buckets in seconds, from 0.5 ms to 10 s.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class ServingMetrics:
    """Thread-safe counters the server updates on every request."""

    def __init__(self, feature_names: Sequence[str] = ()) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int], int] = {}
        self._bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0
        self._rows = 0
        self._classes: dict[str, int] = {}
        self._value_sum = 0.0
        self._value_count = 0
        self._features = list(feature_names)
        n = len(self._features)
        self._f_count = [0] * n
        self._f_sum = [0.0] * n
        self._f_sumsq = [0.0] * n
        self._f_min = [math.inf] * n
        self._f_max = [-math.inf] * n

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (endpoint, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            if endpoint == "/predict":
                self._bucket_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
                self._latency_sum += seconds
                self._latency_count += 1

    def total_requests(self) -> int:
        with self._lock:
            return sum(self._requests.values())

    def observe_predictions(self, predictions: Any, *, classifier: bool, features: Any = None) -> None:
        """Count predictions (by class, or their sum) and summarise the numeric input ``features``.

        ``features`` is a 2-D float array whose columns follow ``feature_names``.
        """
        import numpy as np

        values = np.asarray(predictions)
        stats = None
        if features is not None and self._features:
            block = np.asarray(features, dtype="float64")
            mask = ~np.isnan(block)
            clean = np.where(mask, block, 0.0)
            stats = (
                mask.sum(axis=0),
                clean.sum(axis=0),
                (clean * clean).sum(axis=0),
                np.where(mask, block, np.inf).min(axis=0),
                np.where(mask, block, -np.inf).max(axis=0),
            )
        if classifier:
            labels, counts = np.unique(values, return_counts=True)
            pairs = [
                (str(label.item() if hasattr(label, "item") else label), int(c))
                for label, c in zip(labels, counts, strict=True)
            ]
        else:
            pairs = []
            total = float(np.nansum(values.astype("float64")))
        with self._lock:
            self._rows += int(values.shape[0]) if values.ndim else 1
            if classifier:
                for label, count in pairs:
                    self._classes[label] = self._classes.get(label, 0) + count
            else:
                self._value_sum += total
                self._value_count += int(values.size)
            if stats is not None:
                count, total_f, sumsq, low, high = stats
                for i in range(len(self._features)):
                    self._f_count[i] += int(count[i])
                    self._f_sum[i] += float(total_f[i])
                    self._f_sumsq[i] += float(sumsq[i])
                    self._f_min[i] = min(self._f_min[i], float(low[i]))
                    self._f_max[i] = max(self._f_max[i], float(high[i]))

    def render(self) -> str:
        """The metrics page."""
        with self._lock:
            lines = [
                "# HELP mlci_requests_total HTTP requests by endpoint and status code.",
                "# TYPE mlci_requests_total counter",
            ]
            for (endpoint, status), count in sorted(self._requests.items()):
                lines.append(f'mlci_requests_total{{endpoint="{_label(endpoint)}",code="{status}"}} {count}')
            lines += [
                "# HELP mlci_request_duration_seconds Time to answer POST /predict.",
                "# TYPE mlci_request_duration_seconds histogram",
            ]
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS, self._bucket_counts[:-1], strict=True):
                cumulative += count
                lines.append(f'mlci_request_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
            cumulative += self._bucket_counts[-1]
            lines.append(f'mlci_request_duration_seconds_bucket{{le="+Inf"}} {cumulative}')
            lines.append(f"mlci_request_duration_seconds_sum {_number(self._latency_sum)}")
            lines.append(f"mlci_request_duration_seconds_count {self._latency_count}")
            lines += [
                "# HELP mlci_predicted_rows_total Rows predicted.",
                "# TYPE mlci_predicted_rows_total counter",
                f"mlci_predicted_rows_total {self._rows}",
            ]
            if self._classes:
                lines += [
                    "# HELP mlci_predictions_total Predictions by predicted class.",
                    "# TYPE mlci_predictions_total counter",
                ]
                for label, count in sorted(self._classes.items()):
                    lines.append(f'mlci_predictions_total{{class="{_label(label)}"}} {count}')
            if self._value_count:
                lines += [
                    "# HELP mlci_prediction_value Sum and count of predicted values (regression).",
                    "# TYPE mlci_prediction_value summary",
                    f"mlci_prediction_value_sum {_number(self._value_sum)}",
                    f"mlci_prediction_value_count {self._value_count}",
                ]
            if self._features:
                lines += [
                    "# HELP mlci_input_feature Summary of each numeric input feature (non-missing values).",
                    "# TYPE mlci_input_feature summary",
                ]
                for i, name in enumerate(self._features):
                    label = _label(name)
                    lines.append(f'mlci_input_feature_count{{feature="{label}"}} {self._f_count[i]}')
                    lines.append(f'mlci_input_feature_sum{{feature="{label}"}} {_number(self._f_sum[i])}')
                for suffix, values in (
                    ("sum_squares", self._f_sumsq),
                    ("min", self._f_min),
                    ("max", self._f_max),
                ):
                    lines.append(f"# TYPE mlci_input_feature_{suffix} gauge")
                    for i, name in enumerate(self._features):
                        if self._f_count[i]:
                            lines.append(
                                f'mlci_input_feature_{suffix}{{feature="{_label(name)}"}} '
                                f"{_number(values[i])}"
                            )
        return "\n".join(lines) + "\n"
