"""The gate verdict for people: a Markdown table for the job summary and plain text for a terminal."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mlci_lib.report.escape import code, text

if TYPE_CHECKING:
    from mlci_lib.gate.results import GateVerdict, RuleResult

_ICONS = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "inconclusive": "⚠️ inconclusive",
    "undefined": "❌ undefined",
    "skipped": "➖ skipped",
}
_EXPLAINED = ("fail", "inconclusive", "undefined")
_STATUS = {"pass": "✅ passed", "warn": "⚠️ passed with warnings", "fail": "❌ failed"}


def _num(value: float | None, *, signed: bool = False, percent: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    if percent:
        return f"{value * 100:+.2f}%" if signed else f"{value * 100:.2f}%"
    shown = f"{value:+.4f}" if signed else f"{value:.4f}"
    return shown if abs(value) >= 1e-4 or value == 0 else (f"{value:+.3g}" if signed else f"{value:.3g}")


def _threshold(r: "RuleResult") -> str:
    op = "≥" if r.comparison == ">=" else "≤"
    if r.statistic == "relative-change":
        return f"relative change {op} {_num(r.threshold, signed=True, percent=True)}"
    if r.statistic == "change":
        return f"change {op} {_num(r.threshold, signed=True)}"
    if r.statistic == "gap":
        return f"gap {op} {_num(r.threshold)}"
    return f"{op} {_num(r.threshold)}"


def _interval(r: "RuleResult") -> str:
    if r.interval is None:
        return "–"
    percent = r.statistic == "relative-change"
    signed = r.statistic in ("change", "relative-change")
    low, high = r.interval
    return f"[{_num(low, signed=signed, percent=percent)}, {_num(high, signed=signed, percent=percent)}]"


def _improvement(r: "RuleResult") -> str:
    """The change in the direction that is better (+ is better), as the interval shows it."""
    if r.statistic == "relative-change":
        return _num(r.value, signed=True, percent=True)
    if r.delta is None:
        return "–"
    sign = 1.0 if r.direction == "higher" else -1.0
    return _num(sign * r.delta, signed=True)


def _detectable(r: "RuleResult") -> str:
    """The minimum detectable effect in the statistic's units (± : either side of the threshold)."""
    if r.mde is None:
        return "–"
    return "±" + _num(r.mde, percent=r.statistic == "relative-change")


def describe(r: "RuleResult") -> str:
    """One line about a rule, as used in annotations."""
    where = f" on {r.slice}" if r.slice and r.kind == "slice" else ""
    shown = _num(
        r.value, signed=r.statistic in ("change", "relative-change"), percent=r.statistic == "relative-change"
    )
    ival = f", {_interval(r)} interval" if r.interval else ""
    if r.mde is not None:
        ival += f", detectable {_detectable(r)}"
    base = f" (candidate {_num(r.candidate)}, baseline {_num(r.baseline)})" if r.baseline is not None else ""
    extra = f"; {r.message}" if r.message else ""
    return f"{r.rule}: {r.statistic} {shown}{ival}, needs {_threshold(r)}{base}{where} -> {r.outcome}{extra}"


def verdict_markdown(v: "GateVerdict") -> str:
    conf = f"{v.confidence * 100:g}%"
    lines = [f"### mlci gate: {_STATUS[v.status]}", ""]
    source = f"candidate {code(v.candidate.get('source'))}"
    if v.baseline:
        source += f" vs baseline {code(v.baseline.get('source'))}"
    if v.method == "bootstrap":
        how = f"paired bootstrap, {v.resamples} resamples, {conf} intervals, seed {v.seed}"
        rows = f" on {v.rows:,} rows" if v.rows else ""
    else:
        how = "point estimates (no per-row predictions, so no intervals)"
        rows = ""
    lines.append(
        f"{source}{rows}; {how}; inconclusive rules: **{v.on_inconclusive}**. Improvement is + when better."
    )
    lines.append("")
    lines.append(
        f"| rule | candidate | baseline | improvement | {conf} interval | needs | detectable | rows needed "
        "| outcome |"
    )
    lines.append("| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | --- |")
    for r in v.rules:
        if r.kind == "slice":
            continue
        outcome = _ICONS[r.outcome] + ("" if r.required else " (advisory)")
        value = r.value if r.kind == "slice-gap" else r.candidate
        lines.append(
            f"| {text(r.rule)} | {_num(value)} | {_num(r.baseline)} | {_improvement(r)} "
            f"| {_interval(r)} | {_threshold(r)} | {_detectable(r)} "
            f"| {'–' if r.rows_needed is None else f'{r.rows_needed:,}'} | {outcome} |"
        )
    slice_rules = [r for r in v.rules if r.kind == "slice"]
    if slice_rules:
        lines += ["", "<details><summary>Slices</summary>", ""]
        lines.append("| slice | rows | rule | value | needs | outcome |")
        lines.append("| --- | ---: | --- | ---: | --- | --- |")
        sizes = {f"{s.column}={s.value}": s.rows for s in v.slices}
        for r in slice_rules:
            lines.append(
                f"| {code(r.slice)} | {sizes.get(str(r.slice), 0):,} | {text(f'{r.metric} {r.check}')} "
                f"| {_num(r.value)} | {_threshold(r)} | {_ICONS[r.outcome]} |"
            )
        lines += ["", "</details>"]
    explained = [r for r in v.rules if r.outcome in _EXPLAINED and r.kind != "slice"]
    explained += [r for r in slice_rules if r.outcome in _EXPLAINED]
    if explained:
        lines.append("")
        for r in explained:
            lines.append(f"- **{text(r.rule)}** {r.outcome}: {text(describe(r), 600)}")
    if v.notes:
        lines.append("")
        lines += [f"> {text(note, 600)}" for note in v.notes]
    return "\n".join(lines) + "\n"


def verdict_text(v: "GateVerdict") -> str:
    head = {"pass": "PASSED", "warn": "PASSED with warnings", "fail": "FAILED"}[v.status]
    counts = ", ".join(
        f"{v.counts.get(k, 0)} {k}" for k in ("pass", "fail", "inconclusive", "undefined", "skipped")
    )
    lines = [f"mlci gate {head} ({v.method}; {counts})"]
    for r in v.rules:
        if r.kind == "slice" and r.outcome in ("pass", "skipped"):
            continue
        lines.append(f"  {r.outcome.upper():13} {describe(r)}")
    lines += [f"  note: {note}" for note in v.notes]
    return "\n".join(lines)
