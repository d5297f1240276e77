"""Gate rules: what a candidate must achieve, read from a YAML gate file and/or inline rules.

A gate file::

    metrics:
      accuracy: {min: 0.80, max-drop: 0.01}
      f1_macro: {max-relative-drop: 0.02, required: false}
      my_custom_score: {min-improvement: 0.0, direction: higher}
    slices:
      columns: [region]
      min-size: 30
      metrics:
        recall: {min: 0.70, max-gap: 0.10}
    latency:
      p95_ms: {max: 250, max-relative-increase: 0.10}
    bootstrap: {resamples: 1000, confidence: 0.95, seed: 0}
    on-inconclusive: fail

Inline rules (``--rule``) use the same keys: ``"accuracy min=0.8 max-drop=0.01"``,
``"slice:recall min=0.7"``, ``"latency:p95_ms max=250"``; they add to or override the file.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from mlci_lib.errors import ConfigError, UsageError
from mlci_lib.gate.metrics import canonical_name, known_metric
from mlci_lib.options import check_keys

#: What an inconclusive required rule does to the verdict.
InconclusivePolicy = Literal["fail", "warn", "pass"]
POLICIES: tuple[InconclusivePolicy, ...] = ("fail", "warn", "pass")
METRIC_CHECKS = ("min", "max", "max-drop", "max-relative-drop", "min-improvement", "min-relative-improvement")
SLICE_CHECKS = ("min", "max", "max-gap")
LATENCY_CHECKS = ("max", "max-increase", "max-relative-increase")
#: Checks that compare with the baseline: without a champion they cannot be decided.
RELATIVE_CHECKS = tuple(
    dict.fromkeys(c for c in (*METRIC_CHECKS, *LATENCY_CHECKS) if c not in ("min", "max"))
)
LATENCY_STATS = ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms")
_COMMON_KEYS = ("required", "direction")
_TOP_KEYS = ("metrics", "slices", "latency", "bootstrap", "on-inconclusive")


@dataclasses.dataclass(frozen=True)
class MetricRule:
    """Checks on one metric. Thresholds left as None are not checked."""

    metric: str
    higher_is_better: bool
    checks: Mapping[str, float]
    required: bool = True

    @property
    def direction(self) -> Literal["higher", "lower"]:
        return "higher" if self.higher_is_better else "lower"


@dataclasses.dataclass(frozen=True)
class LatencyRule:
    stat: str
    checks: Mapping[str, float]
    required: bool = True


@dataclasses.dataclass(frozen=True)
class GateRules:
    """Everything the gate checks, and the settings the gate file may carry."""

    metrics: tuple[MetricRule, ...] = ()
    slice_metrics: tuple[MetricRule, ...] = ()
    slice_columns: tuple[str, ...] = ()
    slice_min_size: int | None = None
    latency: tuple[LatencyRule, ...] = ()
    resamples: int | None = None
    confidence: float | None = None
    seed: int | None = None
    on_inconclusive: InconclusivePolicy | None = None
    source: str = "(inline)"

    @property
    def empty(self) -> bool:
        return not (self.metrics or self.slice_metrics or self.latency)


def _number(value: Any, *, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(str(value))
        except ValueError:
            raise ConfigError(f"{where}: {key} must be a number, got {value!r}") from None
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{where}: {key} must be a finite number, got {value!r}")
    return number


def _bool(value: Any, *, where: str, key: str) -> bool:
    from mlci_lib.options import parse_bool

    try:
        return parse_bool(value if isinstance(value, bool) else str(value), option=key)
    except UsageError:
        raise ConfigError(f"{where}: {key} must be true or false, got {value!r}") from None


def _direction(name: str, spec: Mapping[str, Any], where: str) -> bool:
    direction = spec.get("direction")
    known = known_metric(name)
    if direction is None:
        if known is None:
            from mlci_lib.gate.metrics import ALIASES, METRICS
            from mlci_lib.options import suggest

            raise ConfigError(
                f"{where}: metric {name!r} is not a metric mlci knows{suggest(name, [*METRICS, *ALIASES])}, "
                "so it needs a direction",
                hint="add 'direction: higher' or 'direction: lower', or check the metric name",
            )
        return known.higher_is_better
    text = str(direction).strip().lower()
    if text not in ("higher", "lower"):
        raise ConfigError(f"{where}: direction must be 'higher' or 'lower', got {direction!r}")
    return text == "higher"


def _checks(spec: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> dict[str, float]:
    checks: dict[str, float] = {}
    from mlci_lib.options import suggest

    for key, value in spec.items():
        # One spelling, the action contract's: max_drop is refused, not read as max-drop.
        key_text = str(key)
        if key_text in _COMMON_KEYS:
            continue
        if key_text not in allowed:
            raise ConfigError(
                f"{where}: unknown check {key!r}{suggest(key_text, (*allowed, *_COMMON_KEYS))}",
                hint=f"use {', '.join(allowed)}, required or direction",
            )
        number = _number(value, where=where, key=key_text)
        if key_text.startswith(("max-drop", "max-relative", "max-increase", "max-gap")) and number < 0:
            raise ConfigError(f"{where}: {key_text} must not be negative, got {number}")
        checks[key_text] = number
    if not checks:
        raise ConfigError(f"{where}: no check given", hint=f"add one of {', '.join(allowed)}")
    return checks


def _metric_rule(name: str, spec: Any, allowed: tuple[str, ...], where: str) -> MetricRule:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping of checks, got {spec!r}", hint="e.g. {min: 0.8}")
    canonical = canonical_name(str(name))
    return MetricRule(
        metric=canonical,
        higher_is_better=_direction(canonical, spec, where),
        checks=_checks(spec, allowed, where),
        required=_bool(spec.get("required", True), where=where, key="required"),
    )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def parse_rules(data: Mapping[str, Any], *, source: str = "(inline)") -> GateRules:
    """Validate a gate-file mapping into :class:`GateRules`."""
    check_keys(data, _TOP_KEYS, where=source)
    metrics = tuple(
        _metric_rule(name, spec, METRIC_CHECKS, f"{source}: metrics.{name}")
        for name, spec in _mapping(data.get("metrics"), f"{source}: metrics").items()
    )
    slices = _mapping(data.get("slices"), f"{source}: slices")
    check_keys(slices, ("columns", "min-size", "metrics"), where=f"{source}: slices")
    columns = slices.get("columns", [])
    if isinstance(columns, str):
        columns = [columns]
    if not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns):
        raise ConfigError(f"{source}: slices.columns must be a list of column names")
    slice_metrics = tuple(
        _metric_rule(name, spec, SLICE_CHECKS, f"{source}: slices.metrics.{name}")
        for name, spec in _mapping(slices.get("metrics"), f"{source}: slices.metrics").items()
    )
    min_size = slices.get("min-size")
    if min_size is not None:
        min_size = check_positive_int(min_size, f"{source}: slices.min-size")
    latency = tuple(
        _latency_rule(stat, spec, f"{source}: latency.{stat}")
        for stat, spec in _mapping(data.get("latency"), f"{source}: latency").items()
    )
    boot = _mapping(data.get("bootstrap"), f"{source}: bootstrap")
    check_keys(boot, ("resamples", "confidence", "seed"), where=f"{source}: bootstrap")
    policy = data.get("on-inconclusive")
    return GateRules(
        metrics=metrics,
        slice_metrics=slice_metrics,
        slice_columns=tuple(columns),
        slice_min_size=min_size,
        latency=latency,
        resamples=check_resamples(boot["resamples"], f"{source}: bootstrap.resamples")
        if "resamples" in boot
        else None,
        confidence=check_confidence(boot["confidence"], f"{source}: bootstrap.confidence")
        if "confidence" in boot
        else None,
        seed=check_seed(boot["seed"], f"{source}: bootstrap.seed") if "seed" in boot else None,
        on_inconclusive=check_policy(policy, f"{source}: on-inconclusive") if policy is not None else None,
        source=source,
    )


def _latency_rule(stat: str, spec: Any, where: str) -> LatencyRule:
    if stat not in LATENCY_STATS:
        from mlci_lib.options import suggest

        raise ConfigError(
            f"{where}: unknown latency figure {stat!r}{suggest(str(stat), LATENCY_STATS)}",
            hint=f"use {', '.join(LATENCY_STATS)}",
        )
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a mapping of checks, got {spec!r}", hint="e.g. {max: 250}")
    return LatencyRule(
        stat=stat,
        checks=_checks(spec, LATENCY_CHECKS, where),
        required=_bool(spec.get("required", True), where=where, key="required"),
    )


def check_positive_int(value: Any, where: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigError(f"{where} must be a whole number, got {value!r}") from None
    if number < 1:
        raise ConfigError(f"{where} must be at least 1, got {number}")
    return number


def check_resamples(value: Any, where: str) -> int:
    """Number of bootstrap resamples: 0 means point estimates only, else at least 100."""
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigError(f"{where} must be a whole number, got {value!r}") from None
    if number != 0 and not 100 <= number <= 1_000_000:
        raise ConfigError(
            f"{where} must be 0 (point estimates only) or between 100 and 1000000, got {number}"
        )
    return number


def check_seed(value: Any, where: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ConfigError(f"{where} must be a whole number, got {value!r}") from None
    if number < 0:
        raise ConfigError(f"{where} must not be negative, got {number}")
    return number


def check_confidence(value: Any, where: str) -> float:
    number = _number(value, where=where, key="confidence")
    if number >= 1 and number < 100:
        number /= 100.0  # "95" means 95%
    if not 0.5 <= number < 1:
        raise ConfigError(f"{where} must be between 0.5 and 1 (e.g. 0.95), got {value!r}")
    return number


def check_policy(value: Any, where: str) -> InconclusivePolicy:
    text = str(value).strip().lower()
    for policy in POLICIES:
        if text == policy:
            return policy
    raise ConfigError(f"{where} must be one of {', '.join(POLICIES)}, got {value!r}")


def load_gate_rules(path: str | os.PathLike[str]) -> GateRules:
    """Read and validate a YAML (or JSON) gate file."""
    from mlci_lib.files import read_mapping

    data = read_mapping(path, what="gate rules file")
    return parse_rules(data, source=str(path))


def parse_inline_rule(text: str) -> tuple[str, str, dict[str, str]]:
    """``"slice:recall min=0.7"`` -> ("slice", "recall", {"min": "0.7"})."""
    parts = text.split()
    if not parts:
        raise UsageError("option --rule is empty", hint="e.g. --rule 'accuracy max-drop=0.01'")
    head, *pairs = parts
    section, _, name = head.rpartition(":")
    section = section or "metrics"
    if section not in ("metrics", "slice", "latency") or not name:
        raise UsageError(
            f"option --rule {text!r}: unknown section {section!r}",
            hint="write 'METRIC key=value', 'slice:METRIC key=value' or 'latency:p95_ms key=value'",
        )
    spec: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise UsageError(
                f"option --rule {text!r}: {pair!r} is not key=value", hint="e.g. --rule 'accuracy min=0.8'"
            )
        spec[key.strip()] = value.strip()
    if not spec:
        raise UsageError(f"option --rule {text!r} has no check", hint="e.g. --rule 'accuracy min=0.8'")
    return section, name, spec


def merge_inline_rules(base: GateRules | None, inline: Iterable[str]) -> GateRules:
    """Add ``--rule`` values to a gate file's rules; an inline check overrides the file's."""
    rules = base or GateRules()
    items = list(inline)
    if not items:
        return rules
    metrics = {r.metric: _spec_of(r) for r in rules.metrics}
    slices = {r.metric: _spec_of(r) for r in rules.slice_metrics}
    latency = {r.stat: {**r.checks, "required": r.required} for r in rules.latency}
    for text in items:
        section, name, spec = parse_inline_rule(text)
        target = {"metrics": metrics, "slice": slices, "latency": latency}[section]
        key = canonical_name(name) if section != "latency" else name
        target.setdefault(key, {}).update(spec)
    data: dict[str, Any] = {"metrics": metrics, "latency": latency}
    if slices:
        data["slices"] = {"metrics": slices}
    merged = parse_rules(data, source="--rule" if base is None else f"{rules.source} and --rule")
    return dataclasses.replace(
        rules,
        metrics=merged.metrics,
        slice_metrics=merged.slice_metrics,
        latency=merged.latency,
        source=merged.source,
    )


def _spec_of(rule: MetricRule) -> dict[str, Any]:
    return {**rule.checks, "required": rule.required, "direction": rule.direction}


def absolute_rules_only(rules: Mapping[str, Any]) -> dict[str, Any]:
    """A gate file's rules without the checks that need a baseline (for a first model, no champion)."""
    out = dict(rules)
    for section in ("metrics", "latency"):
        block = rules.get(section)
        if isinstance(block, dict):
            kept = {}
            for metric, checks in block.items():
                if isinstance(checks, dict):
                    checks = {k: v for k, v in checks.items() if k not in RELATIVE_CHECKS}
                    if any(k not in ("required", "direction") for k in checks):
                        kept[metric] = checks
            out[section] = kept
    return out


def absolute_inline_rule(rule: str) -> str | None:
    """An inline rule without its baseline checks; None when nothing is left of it."""
    words = rule.split()
    if not words:
        return None
    kept = [w for w in words[1:] if w.split("=", 1)[0] not in RELATIVE_CHECKS]
    return (
        " ".join([words[0], *kept])
        if any(w.split("=", 1)[0] not in ("required", "direction") for w in kept)
        else None
    )
