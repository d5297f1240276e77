"""Serving metrics for Prometheus, exposed through ``prometheus_client``.

Request counts by endpoint and status, a request latency histogram, predictions by class (or a
sum and count of predicted values for regressors), a running summary of each numeric input
feature (count, sum, sum of squares, min, max) so the monitoring side can follow input drift,
and the prediction log's written and dropped rows.

Each :class:`ServingMetrics` has its own registry (never the library's global one), so two
services in one process (tests, benchmarks) keep apart. The per-request work is one append
under a lock: the request (endpoint, status, latency), its predictions and its input block go to
a pending list, and the counters, the latency histogram, the class counts and the feature
summaries are updated per batch of pending requests, vectorised where they can be. A batch is
folded when ``/metrics`` is scraped, and by a background thread once the list grows long, so no
request waits for a fold.

The metric names are those of the hand-written exposition this replaced (see
``tests/test_monitor_metrics.py``); ``prometheus_client`` adds ``*_created`` series for counters
and histograms, which Prometheus ignores unless asked.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
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

#: Requests whose predictions wait before their counts are folded in (and the scrape folds).
FOLD_EVERY = 256
#: Pending requests beyond which a request folds them itself: the background thread is late.
FOLD_LIMIT = 16 * FOLD_EVERY

#: Why a prediction-log row was not written (the ``reason`` label of the dropped counter).
DROP_REASONS = ("queue_full", "write_error")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServingMetrics:
    """Thread-safe counters the server updates on every request, in a registry of their own."""

    def __init__(
        self,
        feature_names: Sequence[str] = (),
        classes: Sequence[Any] | None = None,
        reference: Mapping[str, Any] | None = None,
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = Counter(
            "mlci_requests",
            "HTTP requests by endpoint and status code.",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "mlci_request_duration_seconds",
            "Time to answer POST /predict.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._log_dropped = Counter(
            "mlci_prediction_log_dropped_rows",
            "Prediction-log rows not written: the queue was full, or the log folder refused the write.",
            ["reason"],
            registry=self.registry,
        )
        self._log_written = Counter(
            "mlci_prediction_log_written_rows",
            "Prediction-log rows written to a closed log file or to standard output.",
            registry=self.registry,
        )
        for reason in DROP_REASONS:
            self._log_dropped.labels(reason=reason)
        self._lock = threading.Lock()
        self._pending: list[tuple[Any, Any]] = []
        self._pending_requests: list[tuple[str, int, float]] = []
        self._fold_due = threading.Event()
        self._folder: threading.Thread | None = None
        self._fold_lock = threading.Lock()
        self._rows = 0
        self._classes: dict[str, int] = {str(c): 0 for c in classes or ()}
        self._classifier = classes is not None
        self._value_sum = 0.0
        self._value_count = 0
        self._features = list(feature_names)
        n = len(self._features)
        self._f_count = [0] * n
        self._f_sum = [0.0] * n
        self._f_sumsq = [0.0] * n
        self._f_min = [math.inf] * n
        self._f_max = [-math.inf] * n
        self._total_requests = 0
        self._dropped = 0
        self.registry.register(_Folded(self))
        if reference:
            self.registry.register(_Reference(reference))

    # -- updates, on the request's thread ------------------------------------------------------

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self._pending_requests.append((endpoint, status, seconds))
            self._total_requests += 1
            waiting = len(self._pending_requests)
        if waiting >= FOLD_EVERY:
            self._due(waiting)

    def total_requests(self) -> int:
        with self._lock:
            return self._total_requests

    def observe_predictions(self, predictions: Any, *, classifier: bool, features: Any = None) -> None:
        """Count predictions (by class, or their sum) and summarise the numeric input ``features``.

        ``features`` is a 2-D float array whose columns follow ``feature_names``. The counting
        itself happens per batch of requests (:meth:`fold`).
        """
        if classifier:
            self._classifier = True
        with self._lock:
            self._pending.append((predictions, features if self._features else None))
            waiting = len(self._pending)
        if waiting >= FOLD_EVERY:
            self._due(waiting)

    def _due(self, waiting: int) -> None:
        """A batch is due: the background thread folds it (the request folds only past the limit)."""
        if waiting >= FOLD_LIMIT:
            self.fold()
            return
        if self._folder is None:
            with self._lock:
                if self._folder is None:
                    self._folder = threading.Thread(
                        target=_fold_when_due,
                        args=(weakref.ref(self), self._fold_due),
                        name="mlci-metrics-fold",
                        daemon=True,
                    )
                    self._folder.start()
        self._fold_due.set()

    def log_dropped(self, rows: int, reason: str) -> None:
        self._log_dropped.labels(reason=reason).inc(rows)
        with self._lock:
            self._dropped += rows

    def log_written(self, rows: int) -> None:
        self._log_written.inc(rows)

    def dropped_log_rows(self) -> int:
        with self._lock:
            return self._dropped

    # -- the batch work ------------------------------------------------------------------------

    def fold(self) -> None:
        """Fold the pending requests' predictions and inputs into the running counts."""
        import numpy as np

        with self._fold_lock:
            with self._lock:
                pending, self._pending = self._pending, []
                requests, self._pending_requests = self._pending_requests, []
            if requests:
                self._fold_requests(requests)
            if not pending:
                return
            values = [np.asarray(p).reshape(-1) for p, _ in pending]
            predictions = np.concatenate(values) if len(values) > 1 else values[0]
            blocks = [np.asarray(f, dtype="float64") for _, f in pending if f is not None]
            stats = None
            if blocks:
                block = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
                mask = ~np.isnan(block)
                clean = np.where(mask, block, 0.0)
                stats = (
                    mask.sum(axis=0),
                    clean.sum(axis=0),
                    (clean * clean).sum(axis=0),
                    np.where(mask, block, np.inf).min(axis=0),
                    np.where(mask, block, -np.inf).max(axis=0),
                )
            with self._lock:
                self._rows += int(predictions.shape[0])
                if self._classifier:
                    labels, counts = np.unique(predictions, return_counts=True)
                    for label, count in zip(labels, counts, strict=True):
                        key = str(label.item() if hasattr(label, "item") else label)
                        self._classes[key] = self._classes.get(key, 0) + int(count)
                else:
                    self._value_sum += float(np.nansum(predictions.astype("float64")))
                    self._value_count += int(predictions.size)
                if stats is not None:
                    count, total, sumsq, low, high = stats
                    for i in range(len(self._features)):
                        self._f_count[i] += int(count[i])
                        self._f_sum[i] += float(total[i])
                        self._f_sumsq[i] += float(sumsq[i])
                        self._f_min[i] = min(self._f_min[i], float(low[i]))
                        self._f_max[i] = max(self._f_max[i], float(high[i]))

    def _fold_requests(self, requests: list[tuple[str, int, float]]) -> None:
        counts: dict[tuple[str, int], int] = {}
        for endpoint, status, seconds in requests:
            counts[endpoint, status] = counts.get((endpoint, status), 0) + 1
            if endpoint == "/predict":
                self._latency.observe(seconds)
        for (endpoint, status), count in counts.items():
            self._requests.labels(endpoint=endpoint, code=str(status)).inc(count)

    def render(self) -> str:
        """The metrics page (Prometheus text format 0.0.4)."""
        from prometheus_client import generate_latest

        self.fold()  # the request counters too, before the registry reads them
        return generate_latest(self.registry).decode()

    def _families(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

        self.fold()
        with self._lock:
            rows = CounterMetricFamily("mlci_predicted_rows", "Rows predicted.")
            rows.add_metric([], self._rows)
            yield rows
            if self._classes:
                classes = CounterMetricFamily(
                    "mlci_predictions", "Predictions by predicted class.", labels=["class"]
                )
                for label, count in sorted(self._classes.items()):
                    classes.add_metric([label], count)
                yield classes
            if self._value_count:
                value = SummaryMetricFamily(
                    "mlci_prediction_value", "Sum and count of predicted values (regression)."
                )
                value.add_metric([], count_value=self._value_count, sum_value=self._value_sum)
                yield value
            if not self._features:
                return
            summary = SummaryMetricFamily(
                "mlci_input_feature",
                "Summary of each numeric input feature (non-missing values).",
                labels=["feature"],
            )
            for i, name in enumerate(self._features):
                summary.add_metric([name], count_value=self._f_count[i], sum_value=self._f_sum[i])
            yield summary
            for suffix, values, text in (
                ("sum_squares", self._f_sumsq, "Sum of squares of each numeric input feature (only grows)."),
                ("min", self._f_min, "Smallest value of each numeric input feature since start."),
                ("max", self._f_max, "Largest value of each numeric input feature since start."),
            ):
                gauge = GaugeMetricFamily(f"mlci_input_feature_{suffix}", text, labels=["feature"])
                for i, name in enumerate(self._features):
                    if self._f_count[i]:
                        gauge.add_metric([name], values[i])
                yield gauge


def _fold_when_due(metrics: weakref.ref[ServingMetrics], due: threading.Event) -> None:
    """Fold each batch once it is due; end with the metrics object (a weak reference keeps no
    finished service alive)."""
    while True:
        due.wait(1.0)
        current = metrics()
        if current is None:
            return
        if due.is_set():
            due.clear()
            current.fold()
        del current


class _Folded:
    """The counts kept by hand (per batch) as a ``prometheus_client`` collector."""

    def __init__(self, metrics: ServingMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        return self._metrics._families()


class _Reference:
    """The training reference baked into the image (``mlci image build --reference``), as gauges.

    ``mlci_reference_info{reference}`` names the reference by its digest, so the alert rules can
    tell when the model served is not the one they were rendered for; the figures themselves let
    a dashboard draw the reference beside the served values.
    """

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        doc = self._document
        info = GaugeMetricFamily(
            "mlci_reference_info", "The training reference the image carries (1).", labels=["reference"]
        )
        info.add_metric([str(doc.get("digest", ""))], 1)
        yield info
        features = doc.get("features") or {}
        for stat in ("mean", "std"):
            gauge = GaugeMetricFamily(
                f"mlci_reference_feature_{stat}",
                f"The {stat} of each numeric input feature on the training reference.",
                labels=["feature"],
            )
            for name, stats in sorted(features.items()):
                gauge.add_metric([str(name)], float(stats[stat]))
            yield gauge
        shares = doc.get("class_shares") or {}
        if shares:
            gauge = GaugeMetricFamily(
                "mlci_reference_class_share",
                "The share of each class the model predicts on the training reference.",
                labels=["class"],
            )
            for label, share in sorted(shares.items()):
                gauge.add_metric([str(label)], float(share))
            yield gauge
        prediction = doc.get("prediction") or {}
        if prediction:
            gauge = GaugeMetricFamily(
                "mlci_reference_prediction_mean", "The mean prediction on the training reference."
            )
            gauge.add_metric([], float(prediction["mean"]))
            yield gauge


def monitored_features(model: Any) -> list[str]:
    """The input features ``/metrics`` summarises: the numeric columns of the signature.

    Without a signature, the names the estimator was fitted with. One function, so the server's
    metrics and the alert rules of ``mlci monitor render`` name the same features.
    """
    if model.signature is not None:
        return [c.name for c in model.signature.columns if c.kind in ("integer", "float")]
    names = getattr(model.estimator, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else []
