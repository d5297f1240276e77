"""Prometheus alert rules and a Grafana dashboard for one served model (``mlci monitor render``).

Everything is computed from what the serving runtime exposes on ``/metrics``
(:mod:`mlci_lib.serving.metrics`) and from the model's training reference:

- **errors**: the share of ``POST /predict`` answered 5xx, and the share refused 4xx (rows that
  no longer fit the signature are a data problem worth an alert of their own);
- **latency**: each ``latency`` rule of the gate file with a ``max`` (p50/p95/p99 from the
  request histogram, mean from its sum and count); without a gate file, p95 at most 500 ms;
- **no traffic**: no predicted row for a while, including a target that is gone;
- **input drift**: the window's mean of each numeric feature moved by more than a share of the
  reference standard deviation, or its variance grew or shrank by more than a ratio; the
  reference mean and standard deviation are computed from the reference data;
- **prediction drift**: each predicted class's share moved from its share on the reference
  data (the model's own predictions on it), or for a regressor the mean prediction moved;
- **prediction log**: rows dropped;
- **reference**: the server exports (``mlci_reference_info``) another training reference than the
  one these rules were rendered from: a retrained model was deployed and the rules are stale.

Each alert is written as ``SIGNAL OP THRESHOLD``; the result lists the signal queries too, so a
test (or a user) can evaluate them on a live Prometheus. A ``promtool test rules`` file is
rendered with the rules: input series in which each alert fires, and in which it stays silent.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlci_lib.errors import ConfigError, InputError
from mlci_lib.monitor.reference import REFERENCE_FILE, Reference, load_reference
from mlci_lib.results import Result
from mlci_lib.serving.metrics import LATENCY_BUCKETS

RULES_FILE = "alerts.yml"
RULES_TEST_FILE = "alerts.test.yml"
DASHBOARD_FILE = "dashboard.json"

#: The gate's latency figures an alert can follow, and the quantile each one is.
_QUANTILES = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}
DEFAULT_LATENCY = {"p95_ms": 500.0}


@dataclasses.dataclass(frozen=True)
class AlertSettings:
    """The thresholds of the rendered alerts (the options of ``mlci monitor render``)."""

    job: str
    #: The model's name, a label of every alert: the retrain reason of ``mlci monitor receive``.
    model: str = ""
    window: str = "1h"
    min_rows: int = 100
    error_rate: float = 0.05
    reject_rate: float = 0.2
    mean_shift: float = 0.25
    variance_ratio: float = 2.0
    share_shift: float = 0.1
    no_traffic: str = "15m"
    hold: str = "10m"

    def __post_init__(self) -> None:
        for option, value, low, high in (
            ("--error-rate", self.error_rate, 0.0, 1.0),
            ("--reject-rate", self.reject_rate, 0.0, 1.0),
            ("--share-shift", self.share_shift, 0.0, 1.0),
        ):
            if not low < value < high:
                raise InputError(f"option {option} must be between {low:g} and {high:g}, got {value}")
        if not self.mean_shift > 0:
            raise InputError(f"option --mean-shift must be positive, got {self.mean_shift}")
        if not self.variance_ratio > 1:
            raise InputError(f"option --variance-ratio must be above 1, got {self.variance_ratio}")
        if self.min_rows < 1:
            raise InputError(f"option --min-rows must be at least 1, got {self.min_rows}")
        for option, text in (
            ("--window", self.window),
            ("--no-traffic", self.no_traffic),
            ("--hold", self.hold),
        ):
            duration_seconds(text, option)
        if not self.job or '"' in self.job or "\\" in self.job:
            raise InputError(f"option --job must be a plain Prometheus job name, got {self.job!r}")


def duration_seconds(text: str, option: str) -> float:
    """Seconds of a Prometheus duration of one unit (``90s``, ``15m``, ``1h``, ``7d``)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        raise InputError(f"option {option} must be a duration like 30s, 15m, 1h or 7d, got {text!r}")
    return float(int(number) * units[unit])


@dataclasses.dataclass(frozen=True)
class Alert:
    name: str
    signal: str
    op: str
    threshold: float
    hold: str
    labels: Mapping[str, str]
    summary: str
    guard: str = ""  # an ``and`` clause: enough rows in the window to judge

    @property
    def expr(self) -> str:
        return f"{self.signal} {self.op} {_num(self.threshold)}{self.guard}"

    def _with_guard(self, guard: str) -> Alert:
        return dataclasses.replace(self, guard=guard)


@dataclasses.dataclass(frozen=True)
class MonitorRender(Result):
    SCHEMA = "mlci.monitor-render"
    SCHEMA_VERSION = 1

    job: str
    rules: str
    rules_test: str
    dashboard: str
    reference: str
    alerts: list[dict[str, Any]]
    dashboard_queries: list[str]
    skipped: dict[str, str]


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def latency_limits(gate: str | os.PathLike[str] | None) -> dict[str, float]:
    """The ``max`` of each latency rule of the gate file that a histogram can follow."""
    if gate is None:
        return dict(DEFAULT_LATENCY)
    from mlci_lib.gate.rules import load_gate_rules

    rules = load_gate_rules(gate)
    limits: dict[str, float] = {}
    for rule in rules.latency:
        if "max" not in rule.checks:
            continue
        if rule.stat not in (*_QUANTILES, "mean_ms"):
            continue  # max_ms: a histogram cannot tell the largest latency
        limit = float(rule.checks["max"])
        low, high = LATENCY_BUCKETS[0] * 1000, LATENCY_BUCKETS[-1] * 1000
        if not low <= limit < high:
            raise ConfigError(
                f"gate file {gate}: latency.{rule.stat} max={limit:g} ms is outside the serving histogram "
                f"({low:g} ms to {high:g} ms), so no alert can follow it",
                hint=f"use a limit from {low:g} to below {high:g} ms",
            )
        limits[rule.stat] = limit
    return limits or dict(DEFAULT_LATENCY)


def build_alerts(
    reference: Reference, latency: Mapping[str, float], s: AlertSettings
) -> tuple[list[Alert], dict[str, str]]:
    job = f'job="{s.job}"'
    w = s.window
    alerts: list[Alert] = []
    skipped: dict[str, str] = {}
    predict = f'{job},endpoint="/predict"'
    for name, pattern, limit, what in (
        ("MlciHighErrorRate", "5..", s.error_rate, "answered with a server error (5xx)"),
        ("MlciHighRejectRate", "4..", s.reject_rate, "refused (4xx): rows that do not fit the model"),
    ):
        alerts.append(
            Alert(
                name,
                f'((sum(rate(mlci_requests_total{{{predict},code=~"{pattern}"}}[5m])) or vector(0))'
                f" / sum(rate(mlci_requests_total{{{predict}}}[5m])))",
                ">",
                limit,
                "5m",
                {},
                f"more than {limit:.0%} of POST /predict requests {what} over 5 minutes",
            )
        )
    for stat, limit in sorted(latency.items()):
        if stat == "mean_ms":
            signal = (
                f"(sum(rate(mlci_request_duration_seconds_sum{{{job}}}[5m]))"
                f" / sum(rate(mlci_request_duration_seconds_count{{{job}}}[5m])) * 1000)"
            )
        else:
            signal = (
                f"(histogram_quantile({_QUANTILES[stat]}, sum by (le) "
                f"(rate(mlci_request_duration_seconds_bucket{{{job}}}[5m]))) * 1000)"
            )
        alerts.append(
            Alert(
                "MlciLatencyHigh",
                signal,
                ">",
                limit,
                "5m",
                {"stat": stat},
                f"POST /predict latency {stat} is above the gate's {limit:g} ms",
            )
        )
    alerts.append(
        Alert(
            "MlciNoTraffic",
            f"(sum(rate(mlci_predicted_rows_total{{{job}}}[{s.no_traffic}])) or vector(0))",
            "==",
            0,
            s.no_traffic,
            {},
            f"no row predicted for {s.no_traffic} (or the server is not scraped)",
        )
    )
    for name, stats in sorted(reference.features.items()):
        std = stats["std"]
        if not std > 0:
            skipped[f"feature {name}"] = "constant in the reference: no standard deviation to compare with"
            continue
        sel = f'{job},feature="{_escape(name)}"'
        count = f"sum by (feature) (increase(mlci_input_feature_count{{{sel}}}[{w}]))"
        mean = f"(sum by (feature) (increase(mlci_input_feature_sum{{{sel}}}[{w}])) / {count})"
        enough = f" and on (feature) {count} >= {s.min_rows}"
        alerts.append(
            Alert(
                "MlciFeatureMeanShift",
                f"(abs({mean} - {_num(stats['mean'])}) / {_num(std)})",
                ">",
                s.mean_shift,
                s.hold,
                {"feature": name},
                f"the mean of input {name} over {w} moved more than {s.mean_shift:g} reference "
                f"standard deviations from the reference mean {stats['mean']:.6g}",
            )._with_guard(enough)
        )
        squares = f"sum by (feature) (increase(mlci_input_feature_sum_squares{{{sel}}}[{w}]))"
        variance = f"({squares} / {count} - {mean} ^ 2)"
        alerts.append(
            Alert(
                "MlciFeatureVarianceShift",
                # |ln(variance ratio)|: a variance grown or shrunk by the same factor weighs the same
                f"abs(ln({variance} / {_num(std * std)}))",
                ">",
                math.log(s.variance_ratio),
                s.hold,
                {"feature": name},
                f"the variance of input {name} over {w} is more than {s.variance_ratio:g} times "
                f"away from the reference variance {std * std:.6g}",
            )._with_guard(enough)
        )
    total = f"sum(increase(mlci_predictions_total{{{job}}}[{w}]))"
    for label, share in sorted(reference.class_shares.items()):
        sel = f'{job},class="{_escape(label)}"'
        alerts.append(
            Alert(
                "MlciPredictionShareShift",
                f"abs(sum by (class) (increase(mlci_predictions_total{{{sel}}}[{w}])) / ignoring (class) "
                f"group_left {total} - {_num(share)})",
                ">",
                s.share_shift,
                s.hold,
                {"class": label},
                f"the share of predicted class {label} over {w} moved more than {s.share_shift:g} "
                f"from its share on the reference, {share:.3f}",
            )._with_guard(f" and on () {total} >= {s.min_rows}")
        )
    if reference.prediction:
        std = reference.prediction["std"]
        if std > 0:
            count = f"sum(increase(mlci_prediction_value_count{{{job}}}[{w}]))"
            alerts.append(
                Alert(
                    "MlciPredictionMeanShift",
                    f"(abs(sum(increase(mlci_prediction_value_sum{{{job}}}[{w}])) / {count} - "
                    f"{_num(reference.prediction['mean'])}) / {_num(std)})",
                    ">",
                    s.mean_shift,
                    s.hold,
                    {},
                    f"the mean prediction over {w} moved more than {s.mean_shift:g} reference standard "
                    "deviations from the mean prediction on the reference",
                )._with_guard(f" and on () {count} >= {s.min_rows}")
            )
        else:
            skipped["prediction"] = "constant on the reference: no standard deviation to compare with"
    alerts.append(
        Alert(
            "MlciReferenceChanged",
            f'(count(mlci_reference_info{{{job},reference!="{reference.digest}"}}) or vector(0))',
            ">",
            0,
            "5m",
            {},
            f"the server exports another training reference than {reference.digest}, the one these rules "
            "compare with (a retrained model was deployed?): render them again with mlci monitor render",
        )
    )
    alerts.append(
        Alert(
            "MlciPredictionLogDropping",
            f"sum(increase(mlci_prediction_log_dropped_rows_total{{{job}}}[10m]))",
            ">",
            0,
            "0s",
            {},
            "the prediction log dropped rows in the last 10 minutes (queue full or log folder not writable)",
        )
    )
    return alerts, skipped


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


_SEVERITY = {"MlciHighErrorRate": "critical", "MlciNoTraffic": "critical"}


def rules_document(alerts: Sequence[Alert], s: AlertSettings) -> dict[str, Any]:
    rules = []
    for alert in alerts:
        rules.append(
            {
                "alert": alert.name,
                "expr": alert.expr,
                "for": alert.hold,
                "labels": _labels_of(alert, s),
                "annotations": _annotations_of(alert),
            }
        )
    return {"groups": [{"name": f"mlci-{s.job}", "rules": rules}]}


def _labels_of(alert: Alert, s: AlertSettings) -> dict[str, str]:
    model = {"model": s.model} if s.model else {}
    return {"severity": _SEVERITY.get(alert.name, "warning"), "job": s.job, **model, **alert.labels}


def _annotations_of(alert: Alert) -> dict[str, str]:
    return {"summary": alert.summary, "query": alert.signal}


def read_rules_file(path: str | os.PathLike[str], *, option: str = "--alert-rules") -> dict[str, Any]:
    """The rule groups of a Prometheus rules file (the ``alerts.yml`` of ``mlci monitor render``).

    Checked for the shape a rules file has (groups, each named with a list of rules, each an
    ``alert`` or a ``record`` with an ``expr``): anything else is an InputError naming the file.
    """
    from mlci_lib.files import read_mapping

    doc = read_mapping(path, what="alert rules file", option=option)
    groups = doc.get("groups")
    hint = "pass the alerts.yml that mlci monitor render wrote"
    if not isinstance(groups, list) or not groups:
        raise InputError(f"alert rules file {path} (option {option}) has no list of groups", hint=hint)
    for i, group in enumerate(groups):
        rules = group.get("rules") if isinstance(group, dict) else None
        named = isinstance(group, dict) and isinstance(group.get("name"), str)
        if not named or not isinstance(rules, list):
            raise InputError(
                f"alert rules file {path}: groups[{i}] needs a name and a list of rules", hint=hint
            )
        for j, rule in enumerate(rules):
            named = isinstance(rule, dict) and any(isinstance(rule.get(k), str) for k in ("alert", "record"))
            if not named or not isinstance(rule.get("expr"), str):
                raise InputError(
                    f"alert rules file {path}: groups[{i}].rules[{j}] needs an alert (or record) and an expr",
                    hint=hint,
                )
            for key in ("labels", "annotations"):
                if not isinstance(rule.get(key, {}), dict):
                    raise InputError(
                        f"alert rules file {path}: groups[{i}].rules[{j}].{key} must map names to text",
                        hint=hint,
                    )
    return {"groups": groups}


# -- the promtool unit tests ------------------------------------------------------------------

#: Rows (and requests) per minute in the rendered test series.
_RATE = 60.0
SCENARIOS = (
    "reference",
    "errors",
    "rejected",
    "slow",
    "no_traffic",
    "inputs_moved",
    "variance_moved",
    "predictions_moved",
    "log_dropping",
    "reference_changed",
)


def _minutes(text: str) -> int:
    return math.ceil(duration_seconds(text, "duration") / 60)


def _values(increment: float, steps: int, start: float = 0.0) -> str:
    step = format(abs(increment), ".12g")
    sign = "-" if increment < 0 else "+"
    return f"{format(start, '.12g')}{sign}{step}x{steps}"


def _latency_buckets(latency: Mapping[str, float]) -> tuple[int, float, int, float]:
    """Bucket index and latency (s) of calm and of slow requests for these limits."""
    low = min(latency.values()) / 1000
    high = max(latency.values()) / 1000
    bounds = (0.0, *LATENCY_BUCKETS)
    calm = max(i for i in range(1, len(bounds)) if bounds[i] <= low) if bounds[1] <= low else None
    slow = min(i for i in range(len(bounds) - 1) if bounds[i] >= high)
    if calm is None:
        raise ConfigError(f"latency limit {low * 1000:g} ms is below the histogram's first bucket")
    # calm requests take the upper bound of their bucket; slow ones the middle of theirs
    return calm - 1, bounds[calm], slow, (bounds[slow] + bounds[slow + 1]) / 2


def scenario_series(
    scenario: str, reference: Reference, latency: Mapping[str, float], s: AlertSettings, steps: int
) -> dict[str, str]:
    job = f'job="{s.job}"'
    rate = 0.0 if scenario == "no_traffic" else _RATE
    bad = {"errors": ("500", (1 + s.error_rate) / 2), "rejected": ("422", (1 + s.reject_rate) / 2)}.get(
        scenario
    )
    bad_share = bad[1] if bad else 0.0
    ok = rate * (1 - bad_share)
    series: dict[str, str] = {}
    series[f'mlci_requests_total{{{job},endpoint="/predict",code="200"}}'] = _values(ok, steps)
    if bad:
        series[f'mlci_requests_total{{{job},endpoint="/predict",code="{bad[0]}"}}'] = _values(
            rate * bad_share, steps
        )
    calm_bucket, calm_latency, slow_bucket, slow_latency = _latency_buckets(latency)
    bucket, seconds = (slow_bucket, slow_latency) if scenario == "slow" else (calm_bucket, calm_latency)
    for i, bound in enumerate((*LATENCY_BUCKETS, math.inf)):
        le = "+Inf" if math.isinf(bound) else str(bound)
        series[f'mlci_request_duration_seconds_bucket{{{job},le="{le}"}}'] = _values(
            rate if i >= bucket else 0, steps
        )
    series[f"mlci_request_duration_seconds_count{{{job}}}"] = _values(rate, steps)
    series[f"mlci_request_duration_seconds_sum{{{job}}}"] = _values(rate * seconds, steps)
    series[f"mlci_predicted_rows_total{{{job}}}"] = _values(ok, steps, start=1000.0)
    for name, stats in reference.features.items():
        mean, std = stats["mean"], stats["std"]
        if scenario == "inputs_moved":
            mean += 2 * s.mean_shift * std
        if scenario == "variance_moved":
            std *= s.variance_ratio
        sel = f'{job},feature="{_escape(name)}"'
        series[f"mlci_input_feature_count{{{sel}}}"] = _values(ok, steps)
        series[f"mlci_input_feature_sum{{{sel}}}"] = _values(ok * mean, steps)
        series[f"mlci_input_feature_sum_squares{{{sel}}}"] = _values(ok * (std * std + mean * mean), steps)
    shares = dict(reference.class_shares)
    if scenario == "predictions_moved" and shares:
        rare = min(shares, key=lambda c: (shares[c], c))
        shares = {c: 1.0 if c == rare else 0.0 for c in shares}
    for label, share in shares.items():
        series[f'mlci_predictions_total{{{job},class="{_escape(label)}"}}'] = _values(ok * share, steps)
    if reference.prediction:
        mean = reference.prediction["mean"]
        if scenario == "predictions_moved":
            mean += 2 * s.mean_shift * reference.prediction["std"]
        series[f"mlci_prediction_value_count{{{job}}}"] = _values(ok, steps)
        series[f"mlci_prediction_value_sum{{{job}}}"] = _values(ok * mean, steps)
    served = "sha256:0000000000000000" if scenario == "reference_changed" else reference.digest
    series[f'mlci_reference_info{{{job},reference="{served}"}}'] = _values(0, steps, start=1.0)
    dropped = 5.0 if scenario == "log_dropping" else 0.0
    series[f'mlci_prediction_log_dropped_rows_total{{{job},reason="queue_full"}}'] = _values(dropped, steps)
    return series


def expected_alerts(scenario: str, alerts: Sequence[Alert], reference: Reference) -> list[Alert]:
    """The alerts that must fire in ``scenario`` (every other one must stay silent)."""
    fire = {
        "errors": {"MlciHighErrorRate"},
        "rejected": {"MlciHighRejectRate"},
        "slow": {"MlciLatencyHigh"},
        "no_traffic": {"MlciNoTraffic"},
        "inputs_moved": {"MlciFeatureMeanShift"},
        "variance_moved": {"MlciFeatureVarianceShift"},
        "predictions_moved": {"MlciPredictionShareShift", "MlciPredictionMeanShift"},
        "log_dropping": {"MlciPredictionLogDropping"},
        "reference_changed": {"MlciReferenceChanged"},
    }.get(scenario, set())
    chosen = []
    shares = reference.class_shares
    rare = min(shares, key=lambda c: (shares[c], c)) if shares else None
    for alert in alerts:
        if alert.name not in fire:
            continue
        if alert.name == "MlciPredictionShareShift":
            label = alert.labels["class"]
            moved = 1.0 if label == rare else 0.0
            if not abs(moved - shares[label]) > alert.threshold:
                continue
        chosen.append(alert)
    return chosen


def rules_tests_document(
    alerts: Sequence[Alert], reference: Reference, latency: Mapping[str, float], s: AlertSettings
) -> dict[str, Any]:
    longest = max(_minutes(s.window), _minutes(s.no_traffic), 10)
    hold = max(_minutes(a.hold) if a.hold != "0s" else 0 for a in alerts)
    eval_minutes = longest + hold + 10
    steps = eval_minutes + 10
    names = sorted({a.name for a in alerts})
    tests = []
    for scenario in SCENARIOS:
        firing = expected_alerts(scenario, alerts, reference)
        cases = []
        for name in names:
            cases.append(
                {
                    "eval_time": f"{eval_minutes}m",
                    "alertname": name,
                    "exp_alerts": [
                        {"exp_labels": _labels_of(a, s), "exp_annotations": _annotations_of(a)}
                        for a in firing
                        if a.name == name
                    ],
                }
            )
        series = scenario_series(scenario, reference, latency, s, steps)
        tests.append(
            {
                "name": scenario,
                "interval": "1m",
                "input_series": [{"series": k, "values": v} for k, v in series.items()],
                "alert_rule_test": cases,
            }
        )
    return {"rule_files": [RULES_FILE], "evaluation_interval": "1m", "tests": tests}


# -- the Grafana dashboard --------------------------------------------------------------------


def dashboard_document(model_name: str, reference: Reference, s: AlertSettings) -> dict[str, Any]:
    job = f'job="{s.job}"'
    w = s.window
    predict = f'{job},endpoint="/predict"'
    panels: list[tuple[str, str, list[tuple[str, str]]]] = [
        (
            "Requests per second by status",
            "reqps",
            [
                (f"sum by (code) (rate(mlci_requests_total{{{predict}}}[5m]))", "{{code}}"),
            ],
        ),
        (
            "Error and refusal rate",
            "percentunit",
            [
                (
                    f'(sum(rate(mlci_requests_total{{{predict},code=~"5.."}}[5m])) or vector(0))'
                    f" / sum(rate(mlci_requests_total{{{predict}}}[5m]))",
                    "5xx",
                ),
                (
                    f'(sum(rate(mlci_requests_total{{{predict},code=~"4.."}}[5m])) or vector(0))'
                    f" / sum(rate(mlci_requests_total{{{predict}}}[5m]))",
                    "4xx",
                ),
            ],
        ),
        (
            "Latency of POST /predict",
            "s",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(mlci_request_duration_seconds_bucket{{{job}}}[5m])))",
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
        ),
        (
            "Predicted rows per second",
            "rowsps",
            [
                (f"sum(rate(mlci_predicted_rows_total{{{job}}}[5m]))", "rows"),
            ],
        ),
        (
            "Prediction log rows per second",
            "rowsps",
            [
                (f"sum(rate(mlci_prediction_log_written_rows_total{{{job}}}[5m]))", "written"),
                (
                    f"sum by (reason) (rate(mlci_prediction_log_dropped_rows_total{{{job}}}[5m]))",
                    "dropped {{reason}}",
                ),
            ],
        ),
    ]
    if reference.class_shares:
        total = f"sum(increase(mlci_predictions_total{{{job}}}[{w}]))"
        panels.append(
            (
                f"Predicted class shares over {w} (dashed: reference)",
                "percentunit",
                [
                    (
                        f"sum by (class) (increase(mlci_predictions_total{{{job}}}[{w}]))"
                        f" / ignoring (class) group_left {total}",
                        "{{class}}",
                    ),
                    *(
                        (
                            f'label_replace(vector({_num(share)}), "class", '
                            f'"{_escape(c)} (reference)", "", "")',
                            f"{c} (reference)",
                        )
                        for c, share in sorted(reference.class_shares.items())
                    ),
                ],
            )
        )
    if reference.prediction:
        panels.append(
            (
                f"Mean prediction over {w}",
                "none",
                [
                    (
                        f"sum(increase(mlci_prediction_value_sum{{{job}}}[{w}])) / "
                        f"sum(increase(mlci_prediction_value_count{{{job}}}[{w}]))",
                        "served",
                    ),
                    (f"vector({_num(reference.prediction['mean'])})", "reference"),
                ],
            )
        )
    for name, stats in sorted(reference.features.items()):
        sel = f'{job},feature="{_escape(name)}"'
        count = f"sum(increase(mlci_input_feature_count{{{sel}}}[{w}]))"
        mean = f"(sum(increase(mlci_input_feature_sum{{{sel}}}[{w}])) / {count})"
        panels.append(
            (
                f"Input {name}: mean and standard deviation over {w}",
                "none",
                [
                    (mean, "mean"),
                    (
                        f"sqrt(clamp_min(sum(increase(mlci_input_feature_sum_squares{{{sel}}}[{w}]))"
                        f" / {count} - {mean} ^ 2, 0))",
                        "std",
                    ),
                    (f"vector({_num(stats['mean'])})", "reference mean"),
                    (f"vector({_num(stats['std'])})", "reference std"),
                ],
            )
        )
    built = []
    for i, (title, unit, targets) in enumerate(panels):
        built.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {
                        "refId": chr(ord("A") + j),
                        "datasource": {"type": "prometheus", "uid": "${datasource}"},
                        "expr": expr,
                        "legendFormat": legend,
                    }
                    for j, (expr, legend) in enumerate(targets)
                ],
            }
        )
    return {
        "title": f"mlci: {model_name}",
        "uid": f"mlci-{_slug(s.job)}",
        "tags": ["mlci"],
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "panels": built,
    }


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)[:32]


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[str]:
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


# -- the whole render -------------------------------------------------------------------------


def render_monitoring(
    model: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    gate: str | os.PathLike[str] | None = None,
    job: str | None = None,
    allow_pickle: bool = False,
    trusted_types: Iterable[str] = (),
    **thresholds: Any,
) -> MonitorRender:
    """Write the alert rules, their promtool tests, the dashboard and the reference to ``out_dir``."""
    import yaml

    from mlci_lib.models import load_model

    loaded = load_model(model, allow_pickle=allow_pickle, trusted_types=trusted_types)
    name = str((loaded.metadata or {}).get("name") or Path(str(model)).name)
    settings = AlertSettings(job=job or name, model=name, **thresholds)
    latency = latency_limits(gate)
    ref = load_reference(loaded, reference)
    alerts, skipped = build_alerts(ref, latency, settings)
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output folder {folder} (option -o) cannot be created: {exc.strerror}") from None
    dashboard = dashboard_document(name, ref, settings)
    from mlci_lib.files import write_text_atomic

    def dump(doc: Any) -> str:
        return str(yaml.safe_dump(doc, sort_keys=False, width=10_000, allow_unicode=True))

    paths = {
        RULES_FILE: dump(rules_document(alerts, settings)),
        RULES_TEST_FILE: dump(rules_tests_document(alerts, ref, latency, settings)),
        DASHBOARD_FILE: json.dumps(dashboard, indent=2) + "\n",
        REFERENCE_FILE: ref.to_json(),
    }
    for file, text in paths.items():
        write_text_atomic(folder / file, text)
    return MonitorRender(
        job=settings.job,
        rules=str(folder / RULES_FILE),
        rules_test=str(folder / RULES_TEST_FILE),
        dashboard=str(folder / DASHBOARD_FILE),
        reference=str(folder / REFERENCE_FILE),
        alerts=[
            {"name": a.name, "labels": dict(a.labels), "expr": a.expr, "signal": a.signal} for a in alerts
        ],
        dashboard_queries=dashboard_queries(dashboard),
        skipped=skipped,
    )
