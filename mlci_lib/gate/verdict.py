"""The gate itself: :func:`run_gate` reads inputs, evaluates every rule and returns a verdict.

Each rule ends ``pass``, ``fail``, ``inconclusive`` (its confidence interval straddles the
threshold), ``undefined`` (the metric has no value on these rows, e.g. ROC AUC with one class in
the labels: a required undefined rule fails the gate whatever ``on-inconclusive`` says) or
``skipped`` (a slice below the minimum size). With per-row predictions the gate
bootstraps; with metrics files it compares point estimates, says so, and decides exactly as
MLflow's ``validate_evaluation_results`` does on the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from mlci_lib.errors import InputError, UsageError
from mlci_lib.gate.bootstrap import BootstrapSettings, Draws, bootstrap_metrics, interval
from mlci_lib.gate.latency import load_latency
from mlci_lib.gate.metrics import (
    METRICS,
    EncodedRows,
    canonical_name,
    metric_for_task,
    needs_scores,
    point_metric,
    undefined_reason,
)
from mlci_lib.gate.predictions import (
    Columns,
    PredictionTable,
    align_baseline,
    encode_tables,
    is_metrics_file,
    load_metrics_json,
    read_predictions,
    validate_metrics_mapping,
)
from mlci_lib.gate.rules import (
    GateRules,
    InconclusivePolicy,
    MetricRule,
    load_gate_rules,
    merge_inline_rules,
    parse_rules,
)
from mlci_lib.gate.settings import GateSettings
from mlci_lib.results import Result

if TYPE_CHECKING:
    import numpy as np

#: The closed vocabularies of a verdict: Literal types, so type checkers and the JSON Schema
#: (mlci_lib/schemas/mlci.gate-verdict.schema.json, derived from these) both know them.
Outcome = Literal["pass", "fail", "inconclusive", "undefined", "skipped"]
Status = Literal["pass", "warn", "fail"]
RuleKind = Literal[
    "metric", "slice", "slice-gap", "latency", "canary-errors", "canary-latency", "canary-predictions"
]
Direction = Literal["higher", "lower"]
Comparison = Literal[">=", "<=", "|x| <="]
Method = Literal["bootstrap", "point"]

PASS: Outcome = "pass"
FAIL: Outcome = "fail"
INCONCLUSIVE: Outcome = "inconclusive"
UNDEFINED: Outcome = "undefined"
SKIPPED: Outcome = "skipped"
OUTCOMES: tuple[Outcome, ...] = (PASS, FAIL, INCONCLUSIVE, UNDEFINED, SKIPPED)
#: The power of the minimum detectable effect and of the rows-needed estimate.
POWER = 0.80
#: MLflow's margin for "strictly better" when a relative change cannot be computed (zero baseline).
ZERO_BASELINE_MARGIN = 1e-10


@dataclasses.dataclass(frozen=True)
class RuleResult:
    """The outcome of one check, with the numbers behind it."""

    rule: str
    kind: RuleKind
    metric: str
    check: str
    direction: Direction  # which way is better
    candidate: float | None
    baseline: float | None
    delta: float | None  # candidate - baseline
    #: What is compared with the threshold: value, change, relative-change or gap.
    statistic: str
    value: float | None
    interval: tuple[float, float] | None
    comparison: Comparison
    threshold: float
    outcome: Outcome
    required: bool = True
    slice: str | None = None
    #: "point", "bootstrap", or the interval method of a canary rule, spelled out.
    method: str = "point"
    message: str = ""
    #: The smallest distance between the statistic and the threshold that this sample size
    #: decides with 80% power at the verdict's confidence: (z_{1-α/2} + z_{0.80}) × SE, SE the
    #: standard deviation of the bootstrap distribution of the statistic. None without a bootstrap.
    mde: float | None = None
    #: For an inconclusive rule: the rows that would decide the observed distance from the
    #: threshold with 80% power, the SE scaling as 1/√n: n × ((z_{1-α/2} + z_{0.80}) × SE / distance)².
    rows_needed: int | None = None


@dataclasses.dataclass(frozen=True)
class SliceRow:
    column: str
    value: str
    rows: int
    gated: bool
    metrics: Mapping[str, float | None]


@dataclasses.dataclass(frozen=True)
class GateVerdict(Result):
    """The gate's decision: every rule with its numbers, and the overall result."""

    SCHEMA: ClassVar[str] = "mlci.gate-verdict"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    status: Status
    method: Method
    on_inconclusive: InconclusivePolicy
    confidence: float
    resamples: int
    seed: int
    task: str | None
    rows: int | None
    candidate: Mapping[str, Any]
    baseline: Mapping[str, Any] | None
    rules: tuple[RuleResult, ...]
    slices: tuple[SliceRow, ...] = ()
    counts: Mapping[str, int] = dataclasses.field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: Fingerprint of the data the candidate was evaluated on, when the gate was told (see run_gate).
    data_fingerprint: str | None = None

    def failing(self) -> list[RuleResult]:
        """Required rules that fail the gate: failed, or undefined (an undefined metric never passes)."""
        return [r for r in self.rules if r.required and r.outcome in (FAIL, UNDEFINED)]

    def inconclusive(self) -> list[RuleResult]:
        return [r for r in self.rules if r.required and r.outcome == INCONCLUSIVE]


# -- inputs ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Side:
    """One model's evidence: per-row predictions, or metric values only."""

    source: str
    table: PredictionTable | None = None
    metrics: dict[str, float] | None = None
    rows: EncodedRows | None = None


def _load_side(
    value: Any, *, what: str, columns: Columns, slice_columns: Sequence[str], need_labels: bool
) -> _Side:
    import pandas as pd

    if isinstance(value, PredictionTable):
        return _Side(value.source, table=value)
    if isinstance(value, pd.DataFrame):
        return _Side(f"{what} (DataFrame)", table=_table_from_frame(value, what, columns, slice_columns))
    if isinstance(value, Mapping):
        return _Side(f"{what} (metrics)", metrics=validate_metrics_mapping(value, where=what))
    if isinstance(value, (str, os.PathLike)):
        if str(value).strip() == "":
            raise UsageError(
                f"the {what} file name is empty", hint=f"give the {what} predictions or metrics file"
            )
        if is_metrics_file(value):
            return _Side(str(value), metrics=load_metrics_json(value, what=f"{what} metrics file"))
        table = read_predictions(
            value,
            what=f"{what} predictions file",
            columns=columns,
            slice_columns=slice_columns,
            need_labels=need_labels,
        )
        return _Side(str(value), table=table)
    raise UsageError(
        f"{what} must be a file path, a DataFrame or a mapping of metrics, not {type(value).__name__}"
    )


def _table_from_frame(
    frame: Any, what: str, columns: Columns, slice_columns: Sequence[str]
) -> PredictionTable:
    import tempfile
    from pathlib import Path

    # One code path for files and frames: a DataFrame goes through the same checks as a file.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{what}.parquet"
        frame.to_parquet(path, index=False)
        table = read_predictions(path, what=what, columns=columns, slice_columns=slice_columns)
    return dataclasses.replace(table, source=f"{what} (DataFrame)")


def _load_rules(rules: Any, inline: Sequence[str]) -> GateRules:
    base: GateRules | None
    if rules is None or (isinstance(rules, str) and rules.strip() == ""):
        base = None
    elif isinstance(rules, GateRules):
        base = rules
    elif isinstance(rules, Mapping):
        base = parse_rules(rules)
    else:
        base = load_gate_rules(rules)
    merged = merge_inline_rules(base, inline)
    if merged.empty:
        raise UsageError(
            "the gate has no rules, so it cannot pass or fail anything",
            hint="give a gate file with --rules, or a rule with --rule 'accuracy max-drop=0.01'",
        )
    return merged


# -- deciding ----------------------------------------------------------------------------------------


def _decide(value: float, bounds: tuple[float, float] | None, op: Comparison, threshold: float) -> Outcome:
    if bounds is None:
        ok = value >= threshold if op == ">=" else value <= threshold
        return PASS if ok else FAIL
    low, high = bounds
    if op == ">=":
        return PASS if low >= threshold else FAIL if high < threshold else INCONCLUSIVE
    return PASS if high <= threshold else FAIL if low > threshold else INCONCLUSIVE


@dataclasses.dataclass(frozen=True)
class _MetricEvidence:
    candidate: float
    baseline: float | None
    draws: Draws | None  # values[:, 0] candidate, values[:, 1] baseline when paired
    paired: bool
    #: Evaluation rows behind the draws (the sample size the detectable effect is for).
    rows: int | None = None
    #: Why the candidate's value is undefined (NaN), else "".
    candidate_undefined: str = ""
    #: Why the baseline's value is undefined (NaN), else "".
    baseline_undefined: str = ""


def _metric_result(
    rule: MetricRule,
    check: str,
    ev: _MetricEvidence,
    *,
    statistic: str,
    value: float,
    bounds: tuple[float, float] | None,
    comparison: Comparison,
    threshold: float,
    outcome: Outcome,
    method: str,
    message: str,
) -> RuleResult:
    """One check of a metric rule: the fields every check shares, and this check's decision."""
    c, b = _finite(ev.candidate), _finite(ev.baseline)
    return RuleResult(
        rule=f"{rule.metric} {check}",
        kind="metric",
        metric=rule.metric,
        check=check,
        direction=rule.direction,
        candidate=c,
        baseline=b,
        delta=None if b is None or c is None else c - b,
        statistic=statistic,
        value=_finite(value),
        interval=bounds,
        comparison=comparison,
        threshold=threshold,
        outcome=outcome,
        required=rule.required,
        method=method,
        message=message,
    )


def _metric_checks(rule: MetricRule, ev: _MetricEvidence, confidence: float) -> list[RuleResult]:
    import numpy as np

    sign = 1.0 if rule.higher_is_better else -1.0
    c, b = ev.candidate, ev.baseline
    out = []
    for check, threshold in rule.checks.items():
        draws = ev.draws
        why = ev.candidate_undefined or ("" if check in ("min", "max") else ev.baseline_undefined)
        if why:
            out.append(_undefined_check(rule, check, threshold, ev, why))
            continue
        if check in ("min", "max"):
            op: Comparison = ">=" if check == "min" else "<="
            bounds = None
            if draws is not None:
                iv = interval(c, draws.values[:, 0], float(draws.basis[0]), confidence)
                bounds = None if iv is None else (iv.low, iv.high)
            outcome = (
                _decide(c, bounds, op, threshold) if draws is None or bounds is not None else INCONCLUSIVE
            )
            result = _metric_result(
                rule, check, ev, statistic="value", value=c, bounds=bounds, comparison=op,
                threshold=threshold, outcome=outcome, method=_method(draws),
                message=_undefined_message(draws, bounds),
            )  # fmt: skip
            if draws is not None and bounds is not None:
                result = _with_sensitivity(result, draws.values[:, 0], confidence, ev.rows)
            out.append(result)
            continue
        if b is None:  # pragma: no cover - run_gate checks this before
            raise InputError(f"rule {rule.metric} {check} needs a baseline")
        relative = "relative" in check
        zero_base = relative and b == 0
        if check == "max-drop":
            stat_threshold = 0.0 - threshold
        elif check == "min-improvement":
            stat_threshold = threshold
        elif check == "max-relative-drop":
            stat_threshold = 0.0 if zero_base else 0.0 - threshold
        else:  # min-relative-improvement
            stat_threshold = ZERO_BASELINE_MARGIN if zero_base else threshold
        statistic = "relative-change" if relative and not zero_base else "change"
        change = sign * (c - b)
        value = change / abs(b) if statistic == "relative-change" else change
        bounds = None
        message = ""
        if zero_base:
            message = "baseline is 0, so the relative check compares the change with 0"
        if draws is not None:
            cand = draws.values[:, 0]
            cand_basis = float(draws.basis[0])
            if ev.paired:
                base_draw, base_basis = draws.values[:, 1], float(draws.basis[1])
            else:  # metric values only for the baseline: held fixed
                base_draw, base_basis = np.full_like(cand, b), b
            with np.errstate(divide="ignore", invalid="ignore"):
                stat = sign * (cand - base_draw)
                basis = sign * (cand_basis - base_basis)
                if statistic == "relative-change":
                    stat = np.where(base_draw != 0, stat / np.abs(base_draw), np.nan)
                    basis = basis / abs(base_basis) if base_basis != 0 else math.nan
            iv = interval(value, stat, basis, confidence)
            bounds = None if iv is None else (iv.low, iv.high)
            outcome = INCONCLUSIVE if bounds is None else _decide(value, bounds, ">=", stat_threshold)
            message = message or _undefined_message(draws, bounds)
        else:
            outcome = _point_change_outcome(check, c, b, threshold, rule.higher_is_better)
        result = _metric_result(
            rule, check, ev, statistic=statistic, value=value, bounds=bounds, comparison=">=",
            threshold=stat_threshold, outcome=outcome, method=_method(draws), message=message,
        )  # fmt: skip
        if draws is not None and bounds is not None:
            result = _with_sensitivity(result, stat, confidence, ev.rows)
        out.append(result)
    return out


def detectable_multiplier(confidence: float) -> float:
    """z_{1-α/2} + z_{power}: the MDE in standard errors (a two-sided interval, 80% power)."""
    from statistics import NormalDist

    normal = NormalDist()
    return normal.inv_cdf(1 - (1 - confidence) / 2) + normal.inv_cdf(POWER)


def _with_sensitivity(
    result: RuleResult, resampled: "np.ndarray", confidence: float, rows: int | None
) -> RuleResult:
    """Add the minimum detectable effect and, when inconclusive, the rows that would decide.

    The standard error is the spread of the bootstrap distribution of the statistic the rule
    compares with its threshold; it scales as 1/√n, so n rows decide a distance d from the
    threshold with 80% power once (z_{1-α/2} + z_{0.80}) × SE × √(n₀/n) ≤ d.
    """
    import numpy as np

    finite = resampled[np.isfinite(resampled)]
    if len(finite) < 2 or rows is None or result.value is None:
        return result
    se = float(np.std(finite, ddof=1))
    mde = detectable_multiplier(confidence) * se
    needed = None
    message = result.message
    if result.outcome == INCONCLUSIVE:
        distance = abs(result.value - result.threshold)
        if distance > 0 and se > 0:
            needed = max(rows + 1, math.ceil(rows * (mde / distance) ** 2))
            more = f"about {needed:,} rows would decide the observed {_stat_word(result)}"
        else:
            more = f"the observed {_stat_word(result)} sits on the threshold: no sample size decides it"
        guidance = (
            f"at {rows:,} rows the gate detects a distance from the threshold of "
            f"{_shown_amount(mde, result)} or more ({confidence * 100:g}% confidence, "
            f"{POWER * 100:g}% power); {more}"
        )
        message = f"{message}; {guidance}" if message else guidance
    return dataclasses.replace(result, mde=mde, rows_needed=needed, message=message)


def _stat_word(result: RuleResult) -> str:
    return {"value": "value", "change": "change", "relative-change": "relative change"}.get(
        result.statistic, result.statistic
    )


def _shown_amount(amount: float, result: RuleResult) -> str:
    return f"{amount * 100:.2f}%" if result.statistic == "relative-change" else f"{amount:.4g}"


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _undefined_check(
    rule: MetricRule, check: str, threshold: float, ev: _MetricEvidence, why: str
) -> RuleResult:
    """A check on an undefined metric: no value, no interval, outcome undefined, and why."""
    op: Comparison
    if check in ("min", "max"):
        statistic, op, limit = "value", (">=" if check == "min" else "<="), threshold
    else:
        relative = "relative" in check and ev.baseline not in (None, 0.0)
        statistic, op = ("relative-change" if relative else "change"), ">="
        limit = -threshold if check in ("max-drop", "max-relative-drop") else threshold
    return _metric_result(
        rule, check, ev, statistic=statistic, value=math.nan, bounds=None, comparison=op,
        threshold=limit, outcome=UNDEFINED, method=_method(ev.draws), message=why,
    )  # fmt: skip


def _point_change_outcome(check: str, c: float, b: float, threshold: float, higher: bool) -> Outcome:
    """Decide a change rule on point estimates exactly as MLflow's MetricThreshold does."""
    if check in ("max-drop", "min-improvement"):
        margin = -threshold if check == "max-drop" else threshold
        ok = c >= b + margin if higher else c <= b - margin
        return PASS if ok else FAIL
    if b == 0:
        margin = 0.0 if check == "max-relative-drop" else ZERO_BASELINE_MARGIN
        ok = c >= b + margin if higher else c <= b - margin
        return PASS if ok else FAIL
    change = (c - b) / abs(b) if higher else (b - c) / abs(b)
    limit = -threshold if check == "max-relative-drop" else threshold
    return PASS if change >= limit else FAIL


def _method(draws: Draws | None) -> str:
    return "point" if draws is None else "bootstrap"


def _undefined_message(draws: Draws | None, bounds: tuple[float, float] | None) -> str:
    if draws is not None and bounds is None:
        return "the metric is undefined in too many resamples (e.g. a class missing) to give an interval"
    return ""


# -- slices ---------------------------------------------------------------------------------------------


def _slice_labels(values: "np.ndarray") -> "np.ndarray":
    import numpy as np
    import pandas as pd

    series = pd.Series(values)
    text = series.map(lambda v: str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v))
    return np.where(series.isna().to_numpy(), "(missing)", text.to_numpy(dtype=object))


def _slice_checks(
    rules: Sequence[MetricRule],
    table: PredictionTable,
    rows: EncodedRows,
    columns: Sequence[str],
    min_size: int,
) -> tuple[list[RuleResult], list[SliceRow]]:
    import numpy as np

    results: list[RuleResult] = []
    table_rows: list[SliceRow] = []
    for column in columns:
        labels = _slice_labels(table.slices[column])
        values_seen, inverse = np.unique(labels.astype(str), return_inverse=True)
        per_metric: dict[str, list[tuple[str, float]]] = {r.metric: [] for r in rules}
        undefined_slices: dict[str, list[str]] = {r.metric: [] for r in rules}
        for i, value in enumerate(values_seen):
            index = np.flatnonzero(inverse == i)
            gated = len(index) >= min_size
            sub = rows.take(index)
            with np.errstate(all="ignore"):
                metrics = {r.metric: point_metric(r.metric, sub) for r in rules}
            table_rows.append(
                SliceRow(
                    column, str(value), len(index), gated,
                    {k: (v if math.isfinite(v) else None) for k, v in metrics.items()},
                )
            )  # fmt: skip
            for rule in rules:
                v = metrics[rule.metric]
                for check, threshold in rule.checks.items():
                    if check == "max-gap":
                        continue
                    slice_op: Comparison = ">=" if check == "min" else "<="
                    if not gated:
                        outcome, message = (
                            SKIPPED,
                            f"{len(index)} rows, below the minimum slice size {min_size}",
                        )
                    elif not math.isfinite(v):
                        outcome, message = UNDEFINED, undefined_reason(rule.metric, sub)
                    else:
                        outcome, message = _decide(v, None, slice_op, threshold), ""
                    results.append(
                        RuleResult(
                            rule=f"{rule.metric} {check} [{column}={value}]", kind="slice",
                            metric=rule.metric, check=check, direction=rule.direction,
                            candidate=v if math.isfinite(v) else None, baseline=None, delta=None,
                            statistic="value", value=v if math.isfinite(v) else None, interval=None,
                            comparison=slice_op, threshold=threshold, outcome=outcome, required=rule.required,
                            slice=f"{column}={value}", message=message,
                        )
                    )  # fmt: skip
                if gated and math.isfinite(v):
                    per_metric[rule.metric].append((str(value), v))
                elif gated:
                    undefined_slices[rule.metric].append(str(value))
        for rule in rules:
            if "max-gap" not in rule.checks:
                continue
            threshold = rule.checks["max-gap"]
            found = per_metric[rule.metric]
            if undefined_slices[rule.metric]:
                # The slice without a value may be the worst: a gap over the others proves nothing.
                first = undefined_slices[rule.metric][0]
                outcome, gap, message = (
                    UNDEFINED,
                    None,
                    f"{rule.metric} is undefined on {column}={first}, so the gap cannot be measured",
                )
                best = worst = None
            elif len(found) < 2:
                outcome, gap, message = (
                    SKIPPED,
                    None,
                    f"fewer than two slices of {column} have {min_size}+ rows",
                )
                best = worst = None
            else:
                ordered = sorted(found, key=lambda item: item[1], reverse=rule.higher_is_better)
                best, worst = ordered[0], ordered[-1]
                gap = abs(best[1] - worst[1])
                outcome = _decide(gap, None, "<=", threshold)
                message = (
                    f"best {column}={best[0]} ({best[1]:.4g}), worst {column}={worst[0]} ({worst[1]:.4g})"
                )
            results.append(
                RuleResult(
                    rule=f"{rule.metric} max-gap [{column}]", kind="slice-gap", metric=rule.metric,
                    check="max-gap", direction=rule.direction, candidate=None, baseline=None, delta=None,
                    statistic="gap", value=gap, interval=None, comparison="<=", threshold=threshold,
                    outcome=outcome, required=rule.required, slice=column, message=message,
                )
            )  # fmt: skip
    return results, table_rows


# -- latency ----------------------------------------------------------------------------------------------


def _latency_checks(rules: GateRules, candidate: Any, baseline: Any) -> list[RuleResult]:
    if not rules.latency:
        return []
    if candidate is None or (isinstance(candidate, str) and not candidate.strip()):
        raise UsageError(
            "latency rules need the candidate's latency file",
            hint="pass --candidate-latency (the JSON that 'mlci image smoke' writes)",
        )
    cand = load_latency(candidate, what="candidate latency file")
    base = None
    if baseline is not None and not (isinstance(baseline, str) and not baseline.strip()):
        base = load_latency(baseline, what="baseline latency file")
    out = []
    for rule in rules.latency:
        if rule.stat not in cand:
            raise InputError(f"the candidate latency file has no {rule.stat}", hint="rerun the smoke test")
        c = cand[rule.stat]
        for check, threshold in rule.checks.items():
            b = None
            if check == "max":
                value, limit, statistic = c, threshold, "value"
            else:
                if base is None:
                    raise UsageError(
                        f"latency rule {rule.stat} {check} needs the baseline's latency",
                        hint="pass --baseline-latency, or use only 'max'",
                    )
                if rule.stat not in base:
                    raise InputError(f"the baseline latency file has no {rule.stat}")
                b = base[rule.stat]
                if check == "max-increase" or b == 0:
                    value, limit, statistic = c - b, (threshold if check == "max-increase" else 0.0), "change"
                else:
                    value, limit, statistic = (c - b) / b, threshold, "relative-change"
            out.append(
                RuleResult(
                    rule=f"latency {rule.stat} {check}", kind="latency", metric=rule.stat, check=check,
                    direction="lower", candidate=c, baseline=b, delta=None if b is None else c - b,
                    statistic=statistic, value=value, interval=None, comparison="<=", threshold=limit,
                    outcome=_decide(value, None, "<=", limit), required=rule.required,
                )
            )  # fmt: skip
    return out


# -- the gate ---------------------------------------------------------------------------------------------


def run_gate(
    candidate: Any,
    baseline: Any = None,
    rules: Any = None,
    *,
    rule: Sequence[str] = (),
    candidate_latency: Any = None,
    baseline_latency: Any = None,
    id_column: str | None = None,
    label_column: str = "label",
    prediction_column: str = "prediction",
    score_column: str = "score",
    proba_prefix: str = "proba_",
    pos_label: str | None = None,
    task: str | None = None,
    slice_column: Sequence[str] = (),
    slice_min_size: int | None = None,
    resamples: int | None = None,
    confidence: float | None = None,
    seed: int | None = None,
    on_inconclusive: str | None = None,
    model: str | os.PathLike[str] | None = None,
    data_fingerprint: str | None = None,
) -> GateVerdict:
    """Gate ``candidate`` against ``baseline`` under ``rules`` (and inline ``rule`` strings).

    ``candidate`` and ``baseline`` are each a predictions file (CSV, Parquet, JSON Lines), a
    metrics JSON file, a DataFrame of predictions, or a mapping of metric values; ``baseline``
    may be None (absolute rules only). ``rules`` is a gate file path, a mapping of the same
    shape, or :class:`GateRules`. Options given here override the gate file's settings.

    The verdict records what it was computed on, so that a push or a promotion can refuse it for
    another model: the candidate predictions file's fingerprint, the digest of ``model`` (the
    candidate model itself, when given) and ``data_fingerprint`` (of the evaluation data).
    """
    gate_rules = _load_rules(rules, rule)
    resolved = GateSettings.resolve(
        gate_rules,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        on_inconclusive=on_inconclusive,
        slice_column=slice_column,
        slice_min_size=slice_min_size,
    )
    settings, policy = resolved.bootstrap, resolved.on_inconclusive
    slice_columns, min_size = list(resolved.slice_columns), resolved.slice_min_size
    columns = Columns(
        id=id_column or "id",
        label=label_column,
        prediction=prediction_column,
        score=score_column,
        proba_prefix=proba_prefix,
        id_explicit=bool(id_column),
    )
    notes: list[str] = []
    has_metric_rules = bool(gate_rules.metrics or gate_rules.slice_metrics)
    cand = base = None
    if has_metric_rules:
        if candidate is None:
            raise UsageError("metric rules need the candidate", hint="pass --candidate")
        cand = _load_side(
            candidate, what="candidate", columns=columns, slice_columns=slice_columns, need_labels=True
        )
        if baseline is not None and not (isinstance(baseline, str) and not baseline.strip()):
            base = _load_side(baseline, what="baseline", columns=columns, slice_columns=(), need_labels=False)
    needs_baseline = [r for r in gate_rules.metrics if any(k not in ("min", "max") for k in r.checks)]
    if needs_baseline and base is None:
        first = needs_baseline[0]
        raise UsageError(
            f"rule {first.metric} compares with the baseline, but no baseline was given",
            hint="pass --baseline (predictions or metrics of the current model), or use only min/max",
        )
    results: list[RuleResult] = []
    slice_rows: list[SliceRow] = []
    task_name: str | None = None
    n_rows: int | None = None
    method: Method = "point"
    if cand is not None and base is not None and cand.table is not None and base.table is not None:
        base.table = align_baseline(cand.table, base.table)
    # Encode per-row sides together so both share one class list.
    tables = [s.table for s in (cand, base) if s is not None and s.table is not None]
    if tables:
        encoded, _ = encode_tables(tables, task=task, pos_label=pos_label)
        task_name = encoded[0].task
        it = iter(encoded)
        for side in (cand, base):
            if side is not None and side.table is not None:
                side.rows = next(it)
    metric_names = list(dict.fromkeys(r.metric for r in (*gate_rules.metrics, *gate_rules.slice_metrics)))
    values = {}
    # side -> metric -> why its value is undefined on that side's rows
    undefined_reasons: dict[str, dict[str, str]] = {"candidate": {}, "baseline": {}}
    for label, side in (("candidate", cand), ("baseline", base)):
        if side is None:
            continue
        values[label] = _side_metrics(
            side, metric_names, gate_rules, label, task_name, columns, undefined_reasons[label]
        )
    if cand is not None and cand.rows is not None:
        n_rows = len(cand.rows)
    # Bootstrap where the candidate has rows, paired when the baseline has the same rows.
    draws: dict[str, Draws] = {}
    paired = base is not None and base.rows is not None
    if cand is not None and cand.rows is not None and settings.resamples > 0 and gate_rules.metrics:
        models = [cand.rows] + ([base.rows] if paired and base is not None and base.rows is not None else [])
        names = list(dict.fromkeys(r.metric for r in gate_rules.metrics))
        draws = bootstrap_metrics(models, names, settings)
        method = "bootstrap"
        if not paired and base is not None:
            notes.append("the baseline has metric values only: intervals hold the baseline fixed")
    else:
        if cand is not None and cand.rows is None:
            notes.append(
                "the candidate has metric values only, not per-row predictions: point estimates, no intervals"
            )
        elif settings.resamples == 0:
            notes.append("resamples is 0: point estimates, no intervals")
    for metric_rule in gate_rules.metrics:
        assert cand is not None
        evidence = _MetricEvidence(
            candidate=values["candidate"][metric_rule.metric],
            baseline=values.get("baseline", {}).get(metric_rule.metric),
            draws=draws.get(metric_rule.metric),
            paired=paired,
            rows=n_rows,
            candidate_undefined=undefined_reasons["candidate"].get(metric_rule.metric, ""),
            baseline_undefined=undefined_reasons["baseline"].get(metric_rule.metric, ""),
        )
        results.extend(_metric_checks(metric_rule, evidence, settings.confidence))
    if any(r.mde is not None for r in results):
        notes.append(
            f"detectable = minimum detectable effect = (z_{{1-α/2}} + z_{{{POWER:g}}}) × SE = "
            f"{detectable_multiplier(settings.confidence):.3f} × SE, SE the standard deviation of the "
            f"rule's bootstrap distribution: the smallest distance from the threshold that "
            f"{n_rows:,} rows decide with {POWER:.0%} power; rows needed = n × (detectable / "
            "|observed − threshold|)², as SE scales with 1/√n"
        )
    if gate_rules.slice_metrics:
        assert cand is not None
        if cand.table is None or cand.rows is None:
            raise InputError(
                f"slice rules need per-row predictions, but the candidate {cand.source} holds metric values",
                hint="pass the candidate's predictions file",
            )
        slice_results, slice_rows = _slice_checks(
            gate_rules.slice_metrics, cand.table, cand.rows, slice_columns, min_size
        )
        results.extend(slice_results)
        notes.append(f"slice rules use point estimates; slices under {min_size} rows are reported, not gated")
    results.extend(_latency_checks(gate_rules, candidate_latency, baseline_latency))
    verdict = _verdict(
        results, slice_rows, policy, settings, method, task_name, n_rows, cand, base, values, notes
    )
    return _record_provenance(verdict, candidate, model, data_fingerprint)


def _record_provenance(
    verdict: GateVerdict, candidate: Any, model: Any, data_fingerprint: str | None
) -> GateVerdict:
    """What the verdict was computed on: the predictions file, the model, the data."""
    from mlci_lib.fingerprint import fingerprint_path
    from mlci_lib.models.digest import model_digest

    info = dict(verdict.candidate)
    if isinstance(candidate, (str, os.PathLike)) and str(candidate).strip():
        info["fingerprint"] = fingerprint_path(candidate)
    if model is not None and str(model).strip():
        if not os.path.exists(model):
            raise InputError(f"model {model} (option --model) does not exist", hint="check the path")
        info["model_digest"] = model_digest(model)
    return dataclasses.replace(verdict, candidate=info, data_fingerprint=data_fingerprint or None)


def _side_metrics(
    side: _Side,
    names: Sequence[str],
    rules: GateRules,
    label: str,
    task: str | None,
    columns: Columns,
    undefined: dict[str, str],
) -> dict[str, float]:
    """Each metric's value on one side (NaN when undefined, with the reason put in ``undefined``)."""
    import numpy as np

    out: dict[str, float] = {}
    if side.metrics is not None:
        available = {canonical_name(k): v for k, v in side.metrics.items()}
        for name in names:
            if name not in available:
                shown = ", ".join(sorted(side.metrics)) or "(none)"
                raise InputError(
                    f"{label} metrics file {side.source} has no metric {name!r} that a rule needs",
                    hint=f"it has: {shown}",
                )
            out[name] = available[name]
        return out
    assert side.rows is not None and task is not None
    for name in names:
        if name not in METRICS:
            raise InputError(
                f"rule on {name!r}: mlci cannot compute this metric from the {label} predictions",
                hint="give metrics JSON files for custom metrics, or check the metric name",
            )
        metric_for_task(name, task, where=f"rule on {name!r}")
        if needs_scores(name):
            if side.rows.scores is None:
                raise InputError(
                    f"metric {name!r} needs scores, but {label} predictions {side.source} have no "
                    f"{columns.score!r} column and no {columns.proba_prefix}<class> columns",
                    hint="write the predicted probabilities, or set --score-column / --proba-prefix",
                )
            if METRICS[name].family == "proba":
                scores = np.asarray(side.rows.scores)
                if scores.min() < 0 or scores.max() > 1:
                    raise InputError(
                        f"metric {name!r} needs probabilities, but {label} scores in {side.source} "
                        f"range from {scores.min():.4g} to {scores.max():.4g}",
                        hint="write probabilities in [0, 1], or drop this metric",
                    )
        value = point_metric(name, side.rows)
        if not math.isfinite(value):
            undefined[name] = (
                f"{name} is undefined on the {label}'s rows: {undefined_reason(name, side.rows)}"
            )
        out[name] = value
    return out


def _verdict(
    results: list[RuleResult],
    slice_rows: list[SliceRow],
    policy: InconclusivePolicy,
    settings: BootstrapSettings,
    method: Method,
    task: str | None,
    n_rows: int | None,
    cand: _Side | None,
    base: _Side | None,
    values: Mapping[str, Mapping[str, float]],
    notes: list[str],
) -> GateVerdict:
    failing = [r for r in results if r.required and r.outcome in (FAIL, UNDEFINED)]
    unsure = [r for r in results if r.required and r.outcome == INCONCLUSIVE]
    advisory = [r for r in results if not r.required and r.outcome in (FAIL, INCONCLUSIVE, UNDEFINED)]
    passed = not failing and (not unsure or policy != "fail")
    if not passed:
        status: Status = "fail"
    elif (unsure and policy == "warn") or advisory:
        status = "warn"
    else:
        status = "pass"
    if unsure and policy == "pass":
        notes.append(f"{len(unsure)} inconclusive rule(s) pass under on-inconclusive: pass")
    counts: dict[str, int] = {k: sum(1 for r in results if r.outcome == k) for k in OUTCOMES}

    def side_info(side: _Side | None, label: str) -> dict[str, Any] | None:
        if side is None:
            return None
        return {
            "source": side.source,
            "kind": "predictions" if side.table is not None else "metrics",
            # JSON has no NaN: an undefined metric is null, its reason in the rule's message.
            "metrics": {k: _finite(v) for k, v in values.get(label, {}).items()},
        }

    return GateVerdict(
        passed=passed,
        status=status,
        method=method,
        on_inconclusive=policy,
        confidence=settings.confidence,
        resamples=settings.resamples if method == "bootstrap" else 0,
        seed=settings.seed,
        task=task,
        rows=n_rows,
        candidate=side_info(cand, "candidate") or {"source": None, "kind": "none", "metrics": {}},
        baseline=side_info(base, "baseline"),
        rules=tuple(results),
        slices=tuple(slice_rows),
        counts=counts,
        notes=tuple(notes),
    )
