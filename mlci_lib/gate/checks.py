"""Deciding a rule: each metric check against its threshold, with its interval, and the latency rules."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError, UsageError
from mlci_lib.gate.bootstrap import Draws, interval
from mlci_lib.gate.latency import load_latency
from mlci_lib.gate.results import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    UNDEFINED,
    Comparison,
    Outcome,
    RuleResult,
)
from mlci_lib.gate.rules import (
    GateRules,
    MetricRule,
)

if TYPE_CHECKING:
    import numpy as np

#: The power of the minimum detectable effect and of the rows-needed estimate.
POWER = 0.80
#: MLflow's margin for "strictly better" when a relative change cannot be computed (zero baseline).
ZERO_BASELINE_MARGIN = 1e-10


# -- deciding ----------------------------------------------------------------------------------------


def decide(value: float, bounds: tuple[float, float] | None, op: Comparison, threshold: float) -> Outcome:
    if bounds is None:
        ok = value >= threshold if op == ">=" else value <= threshold
        return PASS if ok else FAIL
    low, high = bounds
    if op == ">=":
        return PASS if low >= threshold else FAIL if high < threshold else INCONCLUSIVE
    return PASS if high <= threshold else FAIL if low > threshold else INCONCLUSIVE


@dataclasses.dataclass(frozen=True)
class MetricEvidence:
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
    ev: MetricEvidence,
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
    c, b = finite(ev.candidate), finite(ev.baseline)
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
        value=finite(value),
        interval=bounds,
        comparison=comparison,
        threshold=threshold,
        outcome=outcome,
        required=rule.required,
        method=method,
        message=message,
    )


def metric_checks(rule: MetricRule, ev: MetricEvidence, confidence: float) -> list[RuleResult]:
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
                decide(c, bounds, op, threshold) if draws is None or bounds is not None else INCONCLUSIVE
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
            outcome = INCONCLUSIVE if bounds is None else decide(value, bounds, ">=", stat_threshold)
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


def finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _undefined_check(
    rule: MetricRule, check: str, threshold: float, ev: MetricEvidence, why: str
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


# -- latency ----------------------------------------------------------------------------------------------


def latency_checks(rules: GateRules, candidate: Any, baseline: Any) -> list[RuleResult]:
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
                    outcome=decide(value, None, "<=", limit), required=rule.required,
                )
            )  # fmt: skip
    return out
