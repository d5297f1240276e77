"""The monitor config: what a window of production traffic must show, in the gate file's grammar.

A monitor file::

    metrics:                               # the gate's metric rules (mlci_lib.gate.rules)
      accuracy: {min: 0.80}                # realized, on the rows a --labels file joins
      f1_macro: {max-drop: 0.05}           # change checks compare with the evaluation set
      estimated_accuracy: {min: 0.80}      # estimated from the probabilities, before labels
    drift:                                 # a drift config, as for mlci drift --config
      thresholds: {psi: 0.2}
      max_drift_share: 0.3
    data-quality: pass                     # pass (required) | warn (advisory) | off
    min-rows: 500                          # fewer rows in a version's window: inconclusive
    on-inconclusive: fail                  # fail | warn | pass, as the gate's
    on-no-traffic: fail                    # fail | inconclusive: an empty window never passes
    bootstrap: {resamples: 1000, confidence: 0.95, seed: 0}
    calibration: {max-ece: 0.05, bins: 10}

``estimated_<metric>`` names a metric of the confusion matrix (accuracy, balanced_accuracy,
precision, recall, f1 and their _macro/_weighted forms). Inline ``--rule`` values use the gate's
form (``"accuracy min=0.8"``, ``"estimated_accuracy min=0.8"``) and override the file's checks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import Any

from mlci_lib.drift.gate import DriftConfig
from mlci_lib.errors import ConfigError, UsageError
from mlci_lib.gate.rules import MetricRule

ESTIMATED_PREFIX = "estimated_"
DATA_QUALITY = ("pass", "warn", "off")
NO_TRAFFIC = ("fail", "inconclusive")
DEFAULT_MIN_ROWS = 100
DEFAULT_MAX_ECE = 0.05
DEFAULT_CALIBRATION_BINS = 10
_TOP_KEYS = (
    "metrics",
    "drift",
    "data-quality",
    "min-rows",
    "on-inconclusive",
    "on-no-traffic",
    "bootstrap",
    "calibration",
)


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    realized: tuple[MetricRule, ...] = ()
    estimated: tuple[MetricRule, ...] = ()
    #: None: the drift gate's defaults (or --drift-config).
    drift: DriftConfig | None = None
    #: None: "pass" when a suite is given, else not checked.
    data_quality: str | None = None
    min_rows: int = DEFAULT_MIN_ROWS
    on_inconclusive: str = "fail"
    on_no_traffic: str = "fail"
    resamples: int | None = None
    confidence: float | None = None
    seed: int | None = None
    max_ece: float = DEFAULT_MAX_ECE
    calibration_bins: int = DEFAULT_CALIBRATION_BINS
    source: str = "(defaults)"


def load_monitor_config(
    path: str | os.PathLike[str] | None = None, rules: Iterable[str] = ()
) -> MonitorConfig:
    """Read a monitor file (YAML or JSON) and apply inline ``--rule`` values."""
    raw: Mapping[str, Any] = {}
    source = "(defaults)"
    if path is not None and str(path).strip():
        from mlci_lib.files import read_mapping

        raw = read_mapping(path, what="monitor config")
        source = str(path)
    return parse_monitor_config(raw, source=source, rules=rules)


def parse_monitor_config(
    raw: Mapping[str, Any], *, source: str = "(inline)", rules: Iterable[str] = ()
) -> MonitorConfig:
    from mlci_lib.drift.gate import parse_drift_config
    from mlci_lib.gate.rules import (
        check_confidence,
        check_policy,
        check_positive_int,
        check_resamples,
        check_seed,
        parse_inline_rule,
        parse_rules,
    )
    from mlci_lib.options import check_keys

    check_keys(raw, _TOP_KEYS, where=source)
    specs: dict[str, dict[str, Any]] = {}
    metrics = raw.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise ConfigError(
            f"{source}: metrics must be a mapping of metric rules", hint="e.g. accuracy: {min: 0.8}"
        )
    for name, spec in metrics.items():
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"{source}: metrics.{name}: expected a mapping of checks, got {spec!r}",
                hint="e.g. {min: 0.8}",
            )
        specs[str(name)] = dict(spec)
    inline = list(rules)
    for text in inline:
        section, name, spec = parse_inline_rule(text)
        if section != "metrics":
            raise UsageError(
                f"option --rule {text!r}: a monitor rule names a metric, not a {section} rule",
                hint="e.g. --rule 'accuracy min=0.8' or --rule 'estimated_accuracy min=0.8'",
            )
        specs.setdefault(name, {}).update(spec)
    where = source + (" and --rule" if inline else "")
    realized_specs = {n: s for n, s in specs.items() if not n.startswith(ESTIMATED_PREFIX)}
    estimated_specs = {
        n.removeprefix(ESTIMATED_PREFIX): s for n, s in specs.items() if n.startswith(ESTIMATED_PREFIX)
    }
    realized = parse_rules({"metrics": realized_specs}, source=where).metrics
    estimated = parse_rules({"metrics": estimated_specs}, source=f"{where} ({ESTIMATED_PREFIX}*)").metrics
    from mlci_lib.gate.metrics import METRICS

    for rule in estimated:
        spec = METRICS.get(rule.metric)
        if spec is None or spec.family != "confusion":
            confusion = [m.name for m in METRICS.values() if m.family == "confusion"]
            raise ConfigError(
                f"{where}: {ESTIMATED_PREFIX}{rule.metric}: only metrics of the confusion matrix can be "
                "estimated from the model's probabilities",
                hint=f"estimate one of {', '.join(confusion)}",
            )
    drift = None
    if raw.get("drift") is not None:
        if not isinstance(raw["drift"], Mapping):
            raise ConfigError(
                f"{source}: drift must be a drift config mapping", hint="e.g. {max_drift_share: 0.3}"
            )
        drift = parse_drift_config(raw["drift"], where=f"{source}: drift")
    quality = raw.get("data-quality")
    if quality is not None:
        quality = {True: "pass", False: "off"}.get(quality, quality) if isinstance(quality, bool) else quality
        if str(quality).strip().lower() not in DATA_QUALITY:
            raise ConfigError(
                f"{source}: data-quality must be one of {', '.join(DATA_QUALITY)}, got {quality!r}"
            )
        quality = str(quality).strip().lower()
    no_traffic = str(raw.get("on-no-traffic", "fail")).strip().lower()
    if no_traffic not in NO_TRAFFIC:
        raise ConfigError(
            f"{source}: on-no-traffic must be one of {', '.join(NO_TRAFFIC)}, got {raw['on-no-traffic']!r}",
            hint="an empty window never passes: fail it, or call it inconclusive",
        )
    boot = raw.get("bootstrap") or {}
    if not isinstance(boot, Mapping):
        raise ConfigError(f"{source}: bootstrap must be a mapping like {{resamples: 1000}}")
    check_keys(boot, ("resamples", "confidence", "seed"), where=f"{source}: bootstrap")
    calibration = raw.get("calibration") or {}
    if not isinstance(calibration, Mapping):
        raise ConfigError(f"{source}: calibration must be a mapping like {{max-ece: 0.05}}")
    check_keys(calibration, ("max-ece", "bins"), where=f"{source}: calibration")
    max_ece = calibration.get("max-ece", DEFAULT_MAX_ECE)
    if isinstance(max_ece, bool) or not isinstance(max_ece, (int, float)) or not 0 < max_ece < 1:
        raise ConfigError(f"{source}: calibration.max-ece must be a number between 0 and 1, got {max_ece!r}")
    bins = calibration.get("bins", DEFAULT_CALIBRATION_BINS)
    if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= 100:
        raise ConfigError(f"{source}: calibration.bins must be a whole number from 2 to 100, got {bins!r}")
    return MonitorConfig(
        realized=realized,
        estimated=estimated,
        drift=drift,
        data_quality=quality,
        min_rows=check_positive_int(raw["min-rows"], f"{source}: min-rows")
        if "min-rows" in raw
        else DEFAULT_MIN_ROWS,
        on_inconclusive=check_policy(raw.get("on-inconclusive", "fail"), f"{source}: on-inconclusive"),
        on_no_traffic=no_traffic,
        resamples=check_resamples(boot["resamples"], f"{source}: bootstrap.resamples")
        if "resamples" in boot
        else None,
        confidence=check_confidence(boot["confidence"], f"{source}: bootstrap.confidence")
        if "confidence" in boot
        else None,
        seed=check_seed(boot["seed"], f"{source}: bootstrap.seed") if "seed" in boot else None,
        max_ece=float(max_ece),
        calibration_bins=bins,
        source=where,
    )
