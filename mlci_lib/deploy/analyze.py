"""``mlci deploy analyze``: judge a canary against the stable version from Prometheus' counts.

Over a window (the raw samples of ``metric[10m]`` at one evaluation time, summed without
``increase()``'s extrapolation, which skews shares between series of different ages, and counting
a series that began inside the window from zero, as the process that started it did), for the
stable and the canary selectors: prediction requests and their 5xx and 4xx answers, the
request-duration histogram's bucket counts, and the predictions (class counts, or the sum and
count of predicted values).
Each rule compares canary with stable and ends as a gate rule does — ``pass``, ``fail``,
``inconclusive`` (the interval straddles the threshold: too little traffic, with how many
requests would decide), ``undefined`` (no traffic at all on one side: never a pass) or
``skipped`` — and the verdict follows the gate's ``on-inconclusive`` policy. Promote when it
passes, roll back when not.

Rules, in a file of their own (``--rules``)::

    errors: {max-increase: 0.01}          # canary 5xx share minus stable's
    client-errors: {max-increase: 0.01}   # the same for 4xx (a canary refusing rows it should take)
    latency:
      p95_ms: {max-relative-increase: 0.25}
    predictions: {max-share-change: 0.05, max-mean-relative-change: 0.05}
    bootstrap: {resamples: 1000, confidence: 0.95, seed: 0}
    on-inconclusive: fail

A gate file (``--gate``) contributes its latency rules, bootstrap settings and policy; the rules
file overrides it, and ``--on-inconclusive`` both. With neither, the values above are the rules.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from mlci_lib.deploy import serving_metrics as names
from mlci_lib.deploy.canary_stats import (
    histogram_quantile,
    proportion_difference,
    resample_buckets,
    z_value,
)
from mlci_lib.deploy.prometheus import PrometheusClient
from mlci_lib.errors import ConfigError, InputError, UsageError
from mlci_lib.gate.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, interval
from mlci_lib.gate.checks import POWER
from mlci_lib.gate.results import (
    FAIL,
    INCONCLUSIVE,
    OUTCOMES,
    PASS,
    SKIPPED,
    UNDEFINED,
    Outcome,
    RuleKind,
    RuleResult,
)
from mlci_lib.gate.rules import (
    LatencyRule,
    check_confidence,
    check_policy,
    check_resamples,
    check_seed,
    load_gate_rules,
)
from mlci_lib.options import check_keys
from mlci_lib.results import Result

_WINDOW = re.compile(r"^[1-9][0-9]*(ms|s|m|h|d)$")
_QUANTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}
_TOP_KEYS = ("errors", "client-errors", "latency", "predictions", "bootstrap", "on-inconclusive")
_PREDICTION_CHECKS = ("max-share-change", "max-mean-relative-change")


@dataclasses.dataclass(frozen=True)
class CanaryRules:
    """What the canary must hold against the stable version; a None threshold is not checked."""

    server_errors: float | None = 0.01
    client_errors: float | None = 0.01
    latency: tuple[LatencyRule, ...] = (LatencyRule("p95_ms", {"max-relative-increase": 0.25}),)
    share_change: float | None = 0.05
    mean_relative_change: float | None = 0.05
    resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = DEFAULT_SEED
    on_inconclusive: str = "fail"
    source: str = "(defaults)"


def _threshold(spec: Any, key: str, where: str) -> float | None:
    if spec is False or spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a mapping like {{{key}: 0.01}}, or false")
    check_keys(spec, (key,), where=where)
    if key not in spec:
        raise ConfigError(f"{where} has no {key}", hint=f"e.g. {{{key}: 0.01}}")
    return _amount(spec[key], f"{where}.{key}")


def _amount(value: Any, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigError(f"{where} must be a non-negative number, got {value!r}")
    return float(value)


def parse_canary_rules(data: Mapping[str, Any], base: CanaryRules, *, source: str) -> CanaryRules:
    """Rules from a ``--rules`` mapping, over ``base`` (the defaults, or a gate file's)."""
    check_keys(data, _TOP_KEYS, where=source)
    rules = dataclasses.replace(base, source=source)
    if "errors" in data:
        rules = dataclasses.replace(
            rules, server_errors=_threshold(data["errors"], "max-increase", f"{source}: errors")
        )
    if "client-errors" in data:
        rules = dataclasses.replace(
            rules, client_errors=_threshold(data["client-errors"], "max-increase", f"{source}: client-errors")
        )
    if "latency" in data:
        from mlci_lib.gate.rules import parse_rules

        latency = data["latency"] or {}
        rules = dataclasses.replace(rules, latency=parse_rules({"latency": latency}, source=source).latency)
    if "predictions" in data:
        spec = data["predictions"]
        if spec is False or spec is None:
            rules = dataclasses.replace(rules, share_change=None, mean_relative_change=None)
        else:
            if not isinstance(spec, Mapping):
                raise ConfigError(f"{source}: predictions must be a mapping, e.g. {{max-share-change: 0.05}}")
            check_keys(spec, _PREDICTION_CHECKS, where=f"{source}: predictions")
            where = f"{source}: predictions"
            share, mean = rules.share_change, rules.mean_relative_change
            if "max-share-change" in spec:
                share = _amount(spec["max-share-change"], f"{where}.max-share-change")
            if "max-mean-relative-change" in spec:
                mean = _amount(spec["max-mean-relative-change"], f"{where}.max-mean-relative-change")
            rules = dataclasses.replace(rules, share_change=share, mean_relative_change=mean)
    boot = data.get("bootstrap") or {}
    if not isinstance(boot, Mapping):
        raise ConfigError(f"{source}: bootstrap must be a mapping")
    check_keys(boot, ("resamples", "confidence", "seed"), where=f"{source}: bootstrap")
    if "resamples" in boot:
        rules = dataclasses.replace(
            rules, resamples=check_resamples(boot["resamples"], f"{source}: bootstrap.resamples")
        )
    if "confidence" in boot:
        rules = dataclasses.replace(
            rules, confidence=check_confidence(boot["confidence"], f"{source}: bootstrap.confidence")
        )
    if "seed" in boot:
        rules = dataclasses.replace(rules, seed=check_seed(boot["seed"], f"{source}: bootstrap.seed"))
    if data.get("on-inconclusive") is not None:
        rules = dataclasses.replace(
            rules, on_inconclusive=check_policy(data["on-inconclusive"], f"{source}: on-inconclusive")
        )
    return rules


def load_canary_rules(
    *, gate: str | None = None, rules: str | None = None, on_inconclusive: str | None = None
) -> CanaryRules:
    """The defaults, then a gate file's latency rules and settings, then a rules file, then the option."""
    from mlci_lib.files import read_mapping

    out = CanaryRules()
    if gate:
        g = load_gate_rules(gate)
        out = dataclasses.replace(
            out,
            latency=g.latency or out.latency,
            resamples=out.resamples if g.resamples is None else g.resamples,
            confidence=g.confidence or out.confidence,
            seed=out.seed if g.seed is None else g.seed,
            on_inconclusive=g.on_inconclusive or out.on_inconclusive,
            source=str(gate),
        )
    if rules:
        data = read_mapping(rules, what="canary rules file", option="--rules")
        out = parse_canary_rules(data, out, source=str(rules) if not gate else f"{gate} and {rules}")
    if on_inconclusive:
        out = dataclasses.replace(
            out, on_inconclusive=check_policy(on_inconclusive, "option --on-inconclusive")
        )
    return out


# -- what Prometheus counted -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Traffic:
    """One side's counts over the window: how much each counter grew between its samples."""

    selector: str
    requests: int
    server_errors: int
    client_errors: int
    #: (upper bound in seconds, requests in that bucket), ascending, the last bound +Inf.
    buckets: tuple[tuple[float, int], ...]
    classes: Mapping[str, int]
    value_sum: float | None
    value_count: int


def check_selector(text: str, option: str) -> str:
    """A series selector's matchers without braces: ``job="canary"`` or ``{job="canary"}``."""
    inner = (text or "").strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1].strip()
    if not inner or "{" in inner or "}" in inner or not re.search(r"[=~]", inner):
        raise UsageError(
            f"option {option}: {text!r} is not a series selector",
            hint='give label matchers, e.g. {job="churn",track="canary"} or pod=~"churn-canary-.*"',
        )
    return inner


def window_seconds(window: str) -> float:
    """A checked window (``10m``) in seconds."""
    match = re.match(r"^([0-9]+)(ms|s|m|h|d)$", window)
    assert match is not None
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return int(match.group(1)) * unit


def check_window(text: str) -> str:
    window = (text or "").strip()
    if not _WINDOW.match(window):
        raise UsageError(f"option --window: {text!r} is not a duration", hint="e.g. 10m, 600s or 1h")
    return window


def _count(value: float) -> int:
    return max(0, round(value))


def read_traffic(client: PrometheusClient, selector: str, window: str, *, option: str) -> Traffic:
    """Query one side's counts; InputError when Prometheus has no series of the model for it."""
    existing = client.query(f"count({names.REQUESTS}{{{selector}}})")
    if not existing:
        raise InputError(
            f"option {option}: Prometheus at {client.url} has no {names.REQUESTS} series for {{{selector}}}",
            hint="check the selector against the scrape job's labels, and that Prometheus scrapes /metrics",
        )
    predict = f'{selector},{names.ENDPOINT_LABEL}=~"{names.PREDICT_ENDPOINTS}"'

    start = client.at - window_seconds(window)

    def grown(metric: str, matchers: str, label: str | None, *, counter: bool = True) -> dict[str, float]:
        # The raw samples of each series over the window, summed by ``label`` (see Series).
        found = client.query_range(f"{metric}{{{matchers}}}[{window}]")
        steps = sorted(step for step in (s.step() for s in found) if step)
        usual = steps[len(steps) // 2] if steps else None
        out: dict[str, float] = {}
        for series in found:
            step = series.step() or usual
            # A series whose first sample comes more than two scrapes after the window opened
            # began inside it: its first value was counted from zero by a process that had
            # just started (or had just answered that status for the first time).
            born = bool(series.times) and step is not None and series.times[0] > start + 2 * step
            key = str(series.labels.get(label, "")) if label else ""
            grew = series.counter_increase(born_inside=born) if counter else series.change(born_inside=born)
            out[key] = out.get(key, 0.0) + grew
        return out

    requests = server = client_errors = 0
    for code, value in grown(names.REQUESTS, predict, names.CODE_LABEL).items():
        count = _count(value)
        requests += count
        server += count if code.startswith("5") else 0
        client_errors += count if code.startswith("4") else 0
    cumulative: dict[float, float] = {}
    for le, value in grown(names.DURATION_BUCKET, selector, names.BUCKET_LABEL).items():
        try:
            cumulative[float(le)] = value
        except ValueError:
            continue
    buckets: list[tuple[float, int]] = []
    previous = 0
    for bound in sorted(cumulative):
        total = max(previous, _count(cumulative[bound]))  # cumulative counts never fall
        buckets.append((bound, total - previous))
        previous = total
    classes = {k: _count(v) for k, v in grown(names.PREDICTIONS, selector, names.CLASS_LABEL).items()}
    value_sum = grown(names.VALUE_SUM, selector, None, counter=False)
    value_count = grown(names.VALUE_COUNT, selector, None)
    return Traffic(
        selector=selector,
        requests=requests,
        server_errors=server,
        client_errors=client_errors,
        buckets=tuple(buckets),
        classes={k: v for k, v in sorted(classes.items()) if v > 0},
        value_sum=value_sum.get("") if value_sum else None,
        value_count=_count(value_count.get("", 0.0)),
    )


# -- the verdict -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CanaryVerdict(Result):
    """Promote or roll back: every canary rule with its numbers, as the gate's verdict has them."""

    SCHEMA: ClassVar[str] = "mlci.canary-verdict"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    status: str  # pass | warn | fail
    decision: str  # promote | rollback
    on_inconclusive: str
    confidence: float
    resamples: int
    seed: int
    prometheus: str
    window: str
    evaluated_at: float
    stable: Traffic
    canary: Traffic
    rules: tuple[RuleResult, ...]
    counts: Mapping[str, int]
    notes: tuple[str, ...] = ()
    source: str = "(defaults)"

    def text(self) -> str:
        lines = [
            f"canary {self.decision.upper()} ({self.status}): {self.canary.requests:,} canary and "
            f"{self.stable.requests:,} stable requests over {self.window}"
        ]
        for rule in self.rules:
            shown = "" if rule.value is None else f" {rule.value:+.4g}"
            if rule.interval is not None:
                shown += f" [{rule.interval[0]:+.4g}, {rule.interval[1]:+.4g}]"
            lines.append(f"  {rule.outcome:<12} {rule.rule}:{shown} vs {rule.threshold:g}")
            if rule.message and rule.outcome != PASS:
                lines.append(f"               {rule.message}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _decide_upper(low: float, high: float, threshold: float) -> Outcome:
    return PASS if high <= threshold else FAIL if low > threshold else INCONCLUSIVE


def _decide_within(low: float, high: float, threshold: float) -> Outcome:
    if -threshold <= low and high <= threshold:
        return PASS
    return FAIL if low > threshold or high < -threshold else INCONCLUSIVE


def _guidance(result: RuleResult, se: float, n: int, confidence: float, unit: str) -> RuleResult:
    """The minimum detectable effect and, when inconclusive, the traffic that would decide.

    As the gate does: the standard error scales as 1/√n, so n decides a distance d from the
    threshold with 80% power once (z_{1-α/2} + z_{0.80}) × SE × √(n₀/n) ≤ d.
    """
    from mlci_lib.gate.checks import detectable_multiplier

    if result.value is None or n <= 0 or not math.isfinite(se):
        return result
    mde = detectable_multiplier(confidence) * se
    if result.outcome != INCONCLUSIVE:
        return dataclasses.replace(result, mde=mde)
    observed = abs(result.value) if result.comparison == "|x| <=" else result.value
    distance = abs(observed - result.threshold)
    if distance > 0 and se > 0:
        needed = max(n + 1, math.ceil(n * (mde / distance) ** 2))
        more = f"about {needed:,} canary {unit} would decide it"
    else:
        needed = None
        more = "the observed difference sits on the threshold: no amount of traffic decides it"
    message = (
        f"too little traffic: at {n:,} canary {unit} the analysis detects a distance from the threshold "
        f"of {mde:.4g} or more ({confidence * 100:g}% confidence, {POWER * 100:g}% power); {more}"
    )
    return dataclasses.replace(result, mde=mde, rows_needed=needed, message=message)


def _undefined(
    rule: str,
    kind: RuleKind,
    metric: str,
    check: str,
    threshold: float,
    why: str,
    *,
    outcome: Outcome = UNDEFINED,
    statistic: str = "change",
    required: bool = True,
) -> RuleResult:
    """A rule decided without a value: undefined (no data to compute it), or skipped."""
    return RuleResult(
        rule=rule,
        kind=kind,
        metric=metric,
        check=check,
        direction="lower",
        candidate=None,
        baseline=None,
        delta=None,
        statistic=statistic,
        value=None,
        interval=None,
        comparison="<=",
        threshold=threshold,
        outcome=outcome,
        required=required,
        message=why,
    )


def _error_rule(
    name: str,
    metric: str,
    canary: tuple[int, int],
    stable: tuple[int, int],
    threshold: float,
    confidence: float,
) -> RuleResult:
    rule = f"{name} max-increase"
    (events_c, total_c), (events_s, total_s) = canary, stable
    if total_c == 0 or total_s == 0:
        side = "canary" if total_c == 0 else "stable"
        return _undefined(
            rule,
            "canary-errors",
            metric,
            "max-increase",
            threshold,
            f"no prediction request reached the {side} in the window: nothing to compare",
        )
    difference, (low, high) = proportion_difference(events_c, total_c, events_s, total_s, confidence)
    outcome = _decide_upper(low, high, threshold)
    result = RuleResult(
        rule=rule,
        kind="canary-errors",
        metric=metric,
        check="max-increase",
        direction="lower",
        candidate=events_c / total_c,
        baseline=events_s / total_s,
        delta=difference,
        statistic="change",
        value=difference,
        interval=(low, high),
        comparison="<=",
        threshold=threshold,
        outcome=outcome,
        method="Newcombe hybrid score interval",
        message=f"{events_c:,} of {total_c:,} canary and {events_s:,} of {total_s:,} stable requests",
    )
    return _guidance(result, (high - low) / (2 * z_value(confidence)), total_c, confidence, "requests")


def _latency_rules(rules: CanaryRules, canary: Traffic, stable: Traffic, rng_seed: int) -> list[RuleResult]:
    import numpy as np

    out: list[RuleResult] = []
    same_bounds = [b for b, _ in canary.buckets] == [b for b, _ in stable.buckets]
    bounds = [b for b, _ in canary.buckets]
    seeds = np.random.SeedSequence(rng_seed).spawn(2)
    rng_c, rng_s = np.random.default_rng(seeds[0]), np.random.default_rng(seeds[1])
    draws_c = draws_s = None
    for rule in rules.latency:
        for check, threshold in rule.checks.items():
            name = f"latency {rule.stat} {check}"
            if rule.stat not in _QUANTILES:
                why = (
                    f"{rule.stat} is not a quantile the request-duration histogram gives "
                    "(use p50_ms, p95_ms or p99_ms)"
                )
                out.append(
                    _undefined(
                        name,
                        "canary-latency",
                        rule.stat,
                        check,
                        threshold,
                        why,
                        outcome=SKIPPED,
                        statistic="value",
                        required=rule.required,
                    )
                )
                continue
            n_c = sum(c for _, c in canary.buckets)
            n_s = sum(c for _, c in stable.buckets)
            compared = check != "max"
            why = ""
            if n_c == 0 or (compared and n_s == 0):
                why = f"no timed request reached the {'canary' if n_c == 0 else 'stable'} in the window"
            elif compared and not same_bounds:
                why = "the two sides' histograms have different buckets"
            if why:
                out.append(
                    _undefined(
                        name, "canary-latency", rule.stat, check, threshold, why, required=rule.required
                    )
                )
                continue
            q = _QUANTILES[rule.stat]
            counts_c = np.asarray([[c for _, c in canary.buckets]], dtype=np.float64)
            counts_s = np.asarray([[c for _, c in stable.buckets]], dtype=np.float64)
            point_c = float(histogram_quantile(q, bounds, counts_c)[0]) * 1000
            stable_bounds = [b for b, _ in stable.buckets]
            point_s = float(histogram_quantile(q, stable_bounds, counts_s)[0]) * 1000 if n_s else math.nan
            if rules.resamples and draws_c is None:
                draws_c = resample_buckets(counts_c[0], rules.resamples, rng_c)
                if same_bounds:
                    draws_s = resample_buckets(counts_s[0], rules.resamples, rng_s)

            def statistic(c: Any, s: Any, check: str = check) -> Any:
                if check == "max":
                    return c
                if check == "max-increase":
                    return c - s
                with np.errstate(divide="ignore", invalid="ignore"):
                    return (c - s) / s

            value = float(statistic(point_c, point_s))
            label = {"max": "value", "max-increase": "change"}.get(check, "relative-change")
            bounds_ci = None
            se = math.nan
            if draws_c is not None and (draws_s is not None or not compared):
                resampled = statistic(
                    histogram_quantile(q, bounds, draws_c) * 1000,
                    None if draws_s is None else histogram_quantile(q, bounds, draws_s) * 1000,
                )
                found = interval(value, np.asarray(resampled, dtype=np.float64), value, rules.confidence)
                if found is not None:
                    bounds_ci = (found.low, found.high)
                    finite = resampled[np.isfinite(resampled)]
                    se = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
            if not math.isfinite(value):
                outcome = UNDEFINED
            elif bounds_ci is None:
                outcome = PASS if value <= threshold else FAIL
            else:
                outcome = _decide_upper(bounds_ci[0], bounds_ci[1], threshold)
            result = RuleResult(
                rule=name,
                kind="canary-latency",
                metric=rule.stat,
                check=check,
                direction="lower",
                candidate=point_c,
                baseline=None if check == "max" else point_s,
                delta=None if check == "max" else point_c - point_s,
                statistic=label,
                value=value if math.isfinite(value) else None,
                interval=bounds_ci,
                comparison="<=",
                threshold=threshold,
                outcome=outcome,
                required=rule.required,
                method="multinomial bootstrap of bucket counts, quantile interpolated as histogram_quantile"
                if bounds_ci
                else "point",
                message=f"{n_c:,} canary and {n_s:,} stable timed requests",
            )
            out.append(_guidance(result, se, n_c, rules.confidence, "requests"))
    return out


def _prediction_rules(rules: CanaryRules, canary: Traffic, stable: Traffic) -> list[RuleResult]:
    out: list[RuleResult] = []
    if rules.share_change is not None and (canary.classes or stable.classes):
        total_c, total_s = sum(canary.classes.values()), sum(stable.classes.values())
        for label in sorted(set(canary.classes) | set(stable.classes)):
            name = f"predictions class {label} max-share-change"
            if total_c == 0 or total_s == 0:
                side = "canary" if total_c == 0 else "stable"
                out.append(
                    _undefined(
                        name,
                        "canary-predictions",
                        f"share of {label}",
                        "max-share-change",
                        rules.share_change,
                        f"the {side} predicted nothing in the window",
                    )
                )
                continue
            k_c, k_s = canary.classes.get(label, 0), stable.classes.get(label, 0)
            difference, (low, high) = proportion_difference(k_c, total_c, k_s, total_s, rules.confidence)
            result = RuleResult(
                rule=name,
                kind="canary-predictions",
                metric=f"share of {label}",
                check="max-share-change",
                direction="lower",
                candidate=k_c / total_c,
                baseline=k_s / total_s,
                delta=difference,
                statistic="change",
                value=difference,
                interval=(low, high),
                comparison="|x| <=",
                threshold=rules.share_change,
                outcome=_decide_within(low, high, rules.share_change),
                method="Newcombe hybrid score interval",
                message=f"{k_c:,} of {total_c:,} canary and {k_s:,} of {total_s:,} stable predictions",
            )
            se = (high - low) / (2 * z_value(rules.confidence))
            out.append(_guidance(result, se, total_c, rules.confidence, "predictions"))
    if rules.mean_relative_change is not None and (canary.value_count or stable.value_count):
        name = "predictions mean max-mean-relative-change"
        if (
            not canary.value_count
            or not stable.value_count
            or canary.value_sum is None
            or stable.value_sum is None
        ):
            side = "canary" if not canary.value_count else "stable"
            out.append(
                _undefined(
                    name,
                    "canary-predictions",
                    "mean prediction",
                    "max-mean-relative-change",
                    rules.mean_relative_change,
                    f"the {side} predicted no value in the window",
                )
            )
        else:
            mean_c = canary.value_sum / canary.value_count
            mean_s = stable.value_sum / stable.value_count
            change = (mean_c - mean_s) / abs(mean_s) if mean_s else mean_c - mean_s
            threshold = rules.mean_relative_change
            out.append(
                RuleResult(
                    rule=name,
                    kind="canary-predictions",
                    metric="mean prediction",
                    check="max-mean-relative-change",
                    direction="lower",
                    candidate=mean_c,
                    baseline=mean_s,
                    delta=mean_c - mean_s,
                    statistic="relative-change" if mean_s else "change",
                    value=change,
                    interval=None,
                    comparison="|x| <=",
                    threshold=threshold,
                    outcome=PASS if abs(change) <= threshold else FAIL,
                    method="point",
                    # The runtime exports a sum and a count, no second moment: no interval is possible.
                    message="point estimate: the runtime exports the sum and count of predicted values, "
                    "not their spread",
                )
            )
    return out


def compare_traffic(rules: CanaryRules, stable_traffic: Traffic, canary_traffic: Traffic) -> list[RuleResult]:
    """Every canary rule's outcome on the two sides' counts."""
    results: list[RuleResult] = []
    if rules.server_errors is not None:
        results.append(
            _error_rule(
                "errors",
                "5xx share",
                (canary_traffic.server_errors, canary_traffic.requests),
                (stable_traffic.server_errors, stable_traffic.requests),
                rules.server_errors,
                rules.confidence,
            )
        )
    if rules.client_errors is not None:
        results.append(
            _error_rule(
                "client-errors",
                "4xx share",
                (canary_traffic.client_errors, canary_traffic.requests),
                (stable_traffic.client_errors, stable_traffic.requests),
                rules.client_errors,
                rules.confidence,
            )
        )
    results.extend(_latency_rules(rules, canary_traffic, stable_traffic, rules.seed))
    results.extend(_prediction_rules(rules, canary_traffic, stable_traffic))
    return results


def analyze_canary(
    prometheus: str,
    *,
    stable: str,
    canary: str,
    window: str = "10m",
    rules: CanaryRules | None = None,
    at: float | None = None,
    timeout: float = 10.0,
) -> CanaryVerdict:
    """Compare the canary's traffic with the stable's over ``window``; see the module's docstring."""
    rules = rules or CanaryRules()
    window = check_window(window)
    stable_selector = check_selector(stable, "--stable")
    canary_selector = check_selector(canary, "--canary")
    if stable_selector == canary_selector:
        raise UsageError(
            "options --stable and --canary select the same series", hint="give each its own labels"
        )
    client = PrometheusClient(prometheus, at=time.time() if at is None else at, timeout=timeout)
    stable_traffic = read_traffic(client, stable_selector, window, option="--stable")
    canary_traffic = read_traffic(client, canary_selector, window, option="--canary")
    results = compare_traffic(rules, stable_traffic, canary_traffic)
    if not results:
        raise ConfigError(f"{rules.source}: every canary rule is switched off", hint="keep at least errors")
    failing = [r for r in results if r.required and r.outcome in (FAIL, UNDEFINED)]
    unsure = [r for r in results if r.required and r.outcome == INCONCLUSIVE]
    advisory = [r for r in results if not r.required and r.outcome in (FAIL, INCONCLUSIVE, UNDEFINED)]
    policy = rules.on_inconclusive
    passed = not failing and (not unsure or policy != "fail")
    status = "fail" if not passed else "warn" if (unsure and policy == "warn") or advisory else "pass"
    notes = []
    if unsure and policy == "pass":
        notes.append(f"{len(unsure)} inconclusive rule(s) pass under on-inconclusive: pass")
    notes.append(
        "counts are how much each counter grew between the samples in the window; a series that "
        "began inside the window (a new pod, a first error) counts from zero"
    )
    return CanaryVerdict(
        passed=passed,
        status=status,
        decision="promote" if passed else "rollback",
        on_inconclusive=policy,
        confidence=rules.confidence,
        resamples=rules.resamples,
        seed=rules.seed,
        prometheus=client.url,
        window=window,
        evaluated_at=client.at,
        stable=stable_traffic,
        canary=canary_traffic,
        rules=tuple(results),
        counts={k: sum(1 for r in results if r.outcome == k) for k in OUTCOMES},
        notes=tuple(notes),
        source=rules.source,
    )
