"""The gate verdict for people, in one place: Markdown for the job summary and the report, one line
per rule for annotations, and plain text for a terminal.

``mlci gate`` renders the verdict it just computed; ``mlci report`` reads the verdict file back
into a :class:`~mlci_lib.gate.results.GateVerdict` (``result_schemas.from_dict``) and renders it
with the same :func:`verdict_markdown`, so the two never disagree. Every value taken from data or
files goes through :mod:`mlci_lib.report.escape`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlci_lib.report import mermaid
from mlci_lib.report.escape import code, text
from mlci_lib.report.markdown import MAX_TABLE_ROWS, more, num

if TYPE_CHECKING:
    from collections.abc import Sequence

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
#: The job summary's title; the report calls the section "Metric gate".
TITLE = "mlci gate"


def _threshold(r: RuleResult) -> str:
    op = "≥" if r.comparison == ">=" else "≤"
    if r.statistic == "relative-change":
        return f"relative change {op} {num(r.threshold, signed=True, percent=True)}"
    if r.statistic == "change":
        return f"change {op} {num(r.threshold, signed=True)}"
    if r.statistic == "gap":
        return f"gap {op} {num(r.threshold)}"
    return f"{op} {num(r.threshold)}"


def _interval(r: RuleResult) -> str:
    if r.interval is None:
        return "–"
    percent = r.statistic == "relative-change"
    signed = r.statistic in ("change", "relative-change")
    low, high = r.interval
    return f"[{num(low, signed=signed, percent=percent)}, {num(high, signed=signed, percent=percent)}]"


def _change(r: RuleResult) -> str:
    """The change in the direction that is better (+ is better), on the scale the interval uses."""
    if r.statistic == "relative-change":
        return num(r.value, signed=True, percent=True)
    if r.delta is None:
        return "–"
    sign = -1.0 if r.direction == "lower" else 1.0
    return num(sign * r.delta, signed=True)


def _detectable(r: RuleResult) -> str:
    """The minimum detectable effect in the statistic's units (± : either side of the threshold)."""
    if r.mde is None:
        return "–"
    return "±" + num(r.mde, percent=r.statistic == "relative-change")


def _outcome(r: RuleResult) -> str:
    return _ICONS.get(r.outcome, r.outcome) + ("" if r.required else " (advisory)")


def describe(r: RuleResult) -> str:
    """One line about a rule: the annotations, the plain text and the Markdown's explanations."""
    where = f" on {r.slice}" if r.slice and r.kind == "slice" else ""
    shown = num(
        r.value, signed=r.statistic in ("change", "relative-change"), percent=r.statistic == "relative-change"
    )
    ival = f", {_interval(r)} interval" if r.interval else ""
    if r.mde is not None:
        ival += f", detectable {_detectable(r)}"
    base = f" (candidate {num(r.candidate)}, baseline {num(r.baseline)})" if r.baseline is not None else ""
    extra = f"; {r.message}" if r.message else ""
    return f"{r.rule}: {r.statistic} {shown}{ival}, needs {_threshold(r)}{base}{where} -> {r.outcome}{extra}"


def verdict_markdown(v: GateVerdict, *, title: str = TITLE) -> str:
    """The verdict as Markdown: the rules table, a chart, slices, latency, and why rules did not pass."""
    conf = f"{v.confidence * 100:g}%"
    lines = [f"### {text(title)}: {_STATUS.get(v.status, '❌ failed')}", ""]
    source = f"candidate {code(v.candidate.get('source'))}" if v.candidate.get("source") else "candidate"
    if v.baseline and v.baseline.get("source"):
        source += f" vs baseline {code(v.baseline.get('source'))}"
    if v.method == "bootstrap":
        how = f"paired bootstrap, {v.resamples} resamples, {conf} intervals, seed {v.seed}"
        rows = f" on {v.rows:,} rows" if v.rows else ""
    else:
        how = "point estimates (no per-row predictions, so no intervals)"
        rows = ""
    lines += [
        f"{source}{rows}; {how}; inconclusive rules: **{text(v.on_inconclusive)}**. Change is + when better.",
        "",
    ]
    main = [r for r in v.rules if r.kind not in ("slice", "latency")]
    if main:
        lines += [
            f"| rule | candidate | baseline | change | {conf} interval | needs | detectable | rows needed "
            "| outcome |",
            "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | --- |",
        ]
        for r in main[:MAX_TABLE_ROWS]:
            value = r.value if r.kind == "slice-gap" else r.candidate
            needed = "–" if r.rows_needed is None else f"{r.rows_needed:,}"
            lines.append(
                f"| {text(r.rule)} | {num(value)} | {num(r.baseline)} | {_change(r)} | {_interval(r)} "
                f"| {_threshold(r)} | {_detectable(r)} | {needed} | {_outcome(r)} |"
            )
        lines += more(min(len(main), MAX_TABLE_ROWS), len(main), "rules")
    chart = metric_chart(v.rules)
    if chart:
        lines += ["", chart]
    slices = _slices(v)
    if slices:
        lines += ["", slices]
    latency = [r for r in v.rules if r.kind == "latency"]
    if latency:
        lines += ["", "#### Latency", "", "| rule | candidate | baseline | needs | outcome |"]
        lines.append("| --- | ---: | ---: | --- | --- |")
        for r in latency:
            lines.append(
                f"| {text(r.rule)} | {num(r.candidate)} ms | {num(r.baseline)} | {_threshold(r)} "
                f"| {_outcome(r)} |"
            )
    explained = [r for r in v.rules if r.outcome in _EXPLAINED and r.kind != "slice"]
    explained += [r for r in v.rules if r.outcome in _EXPLAINED and r.kind == "slice"]
    if explained:
        lines.append("")
        for r in explained[:MAX_TABLE_ROWS]:
            lines.append(f"- **{text(r.rule)}** {r.outcome}: {text(describe(r), 600)}")
        lines += more(min(len(explained), MAX_TABLE_ROWS), len(explained), "rules that did not pass")
    if v.notes:
        lines.append("")
        lines += [f"> {text(note, 600)}" for note in v.notes]
    return "\n".join(lines) + "\n"


def metric_chart(rules: Sequence[RuleResult]) -> str | None:
    """Candidate vs baseline for each metric a rule compares, as a Mermaid bar chart."""
    seen: dict[str, tuple[float, float | None]] = {}
    for r in rules:
        if r.kind != "metric" or not r.metric or r.metric in seen or r.candidate is None:
            continue
        seen[r.metric] = (r.candidate, r.baseline)
    if not seen:
        return None
    categories: list[str] = []
    values: list[float] = []
    for metric, (cand, base) in list(seen.items())[:12]:
        categories.append(f"{metric} cand")
        values.append(cand)
        if base is not None:
            categories.append(f"{metric} base")
            values.append(base)
    return mermaid.bar_chart("Candidate vs baseline", categories, values, y_label="metric")


def _slices(v: GateVerdict) -> str:
    """Each slice's size and metrics, then every slice rule (those that did not pass first)."""
    rules = [r for r in v.rules if r.kind == "slice"]
    if not v.slices and not rules:
        return ""
    failing = [r for r in rules if r.outcome in _EXPLAINED]
    lines = [f"<details{' open' if failing else ''}><summary>Slices</summary>", ""]
    if v.slices:
        names = list(dict.fromkeys(k for row in v.slices for k in row.metrics))
        lines.append("| slice | rows | gated | " + " | ".join(text(n) for n in names) + " |")
        lines.append("| --- | ---: | :---: | " + " | ".join("---:" for _ in names) + " |")
        for row in v.slices[:MAX_TABLE_ROWS]:
            lines.append(
                f"| {code(f'{row.column}={row.value}')} | {row.rows:,} | {'yes' if row.gated else 'no'} | "
                + " | ".join(num(row.metrics.get(n)) for n in names)
                + " |"
            )
        lines += more(min(len(v.slices), MAX_TABLE_ROWS), len(v.slices), "slices")
    if rules:
        ordered = failing + [r for r in rules if r.outcome not in _EXPLAINED]
        sizes = {f"{s.column}={s.value}": s.rows for s in v.slices}
        lines += [
            "",
            "| slice | rows | rule | value | needs | outcome |",
            "| --- | ---: | --- | ---: | --- | --- |",
        ]
        for r in ordered[:MAX_TABLE_ROWS]:
            size = sizes.get(str(r.slice))
            shown = "–" if size is None else f"{size:,}"
            lines.append(
                f"| {code(r.slice)} | {shown} | {text(f'{r.metric} {r.check}')} "
                f"| {num(r.value)} | {_threshold(r)} | {_outcome(r)} |"
            )
        lines += more(min(len(ordered), MAX_TABLE_ROWS), len(ordered), "slice rules")
    return "\n".join([*lines, "", "</details>"])


def verdict_text(v: GateVerdict) -> str:
    """The verdict for a terminal: the status, then one :func:`describe` line per rule that matters."""
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
