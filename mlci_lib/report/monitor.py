"""The monitor verdict (``mlci.monitor-verdict``) as Markdown: the job summary and the report's section.

Rendered from the verdict's JSON, so the summary of ``mlci monitor check`` and a report of the
verdict file are the same text; every value from data goes through :mod:`mlci_lib.report.escape`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlci_lib.report.escape import code, text
from mlci_lib.report.markdown import MAX_TABLE_ROWS, num

_STATUS = {
    "pass": "✅ passed",
    "warn": "⚠️ passed with warnings",
    "fail": "❌ failed",
    "inconclusive": "⚠️ inconclusive (does not pass)",
}
_OUTCOME = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "inconclusive": "⚠️ inconclusive",
    "undefined": "❌ undefined",
    "skipped": "➖ skipped",
}


def _needs(r: Mapping[str, Any]) -> str:
    op = "≥" if r.get("comparison") == ">=" else "≤"
    statistic = r.get("statistic")
    if statistic == "relative-change":
        return f"relative change {op} {num(r.get('threshold'), signed=True, percent=True)}"
    if statistic == "change":
        return f"change {op} {num(r.get('threshold'), signed=True)}"
    shown = (
        num(r.get("threshold"))
        if r.get("kind") not in ("rows", "data-quality")
        else f"{r.get('threshold'):g}"
    )
    return f"{text(statistic) + ' ' if statistic not in (None, 'value') else ''}{op} {shown}"


def _value(r: Mapping[str, Any]) -> str:
    value = r.get("value")
    if r.get("kind") in ("rows", "data-quality") and isinstance(value, (int, float)):
        return f"{value:,.0f}"
    if r.get("statistic") == "relative-change":
        return num(value, signed=True, percent=True)
    return num(value, signed=r.get("statistic") == "change")


def _interval(pair: Any, *, percent: bool = False, signed: bool = False) -> str:
    if not isinstance(pair, Sequence) or len(pair) != 2:
        return "–"
    return f"[{num(pair[0], percent=percent, signed=signed)}, {num(pair[1], percent=percent, signed=signed)}]"


def _rules_table(rules: Sequence[Mapping[str, Any]], confidence: str) -> list[str]:
    lines = [
        f"| rule | value | {confidence} interval | needs | outcome |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for r in rules[:MAX_TABLE_ROWS]:
        statistic = r.get("statistic")
        outcome = _OUTCOME.get(str(r.get("outcome")), text(r.get("outcome")))
        if r.get("required") is False:
            outcome += " (advisory)"
        shown = _interval(
            r.get("interval"),
            percent=statistic == "relative-change",
            signed=statistic in ("change", "relative-change"),
        )
        lines.append(f"| {text(r.get('rule'))} | {_value(r)} | {shown} | {_needs(r)} | {outcome} |")
    if len(rules) > MAX_TABLE_ROWS:
        lines += ["", f"… and {len(rules) - MAX_TABLE_ROWS} more rules (see the verdict file)."]
    return lines


def _drift(data: Mapping[str, Any]) -> str:
    """A version's drift, by the drift verdict's own renderer."""
    from mlci_lib.drift.gate import DriftVerdict
    from mlci_lib.drift.render import drift_markdown
    from mlci_lib.result_schemas import from_dict

    return drift_markdown(
        from_dict(DriftVerdict, data, what="the monitor verdict's drift"), title="Drift"
    ).rstrip()


def _quality(data: Mapping[str, Any]) -> str:
    """A version's data quality, by the data check's own renderer."""
    from mlci_lib.data.check import DataCheckResult
    from mlci_lib.data.render import check_markdown
    from mlci_lib.result_schemas import from_dict

    result = from_dict(DataCheckResult, data, what="the monitor verdict's data quality")
    return check_markdown(result, title="Data quality").rstrip()


def _performance(v: Mapping[str, Any], confidence: str) -> list[str]:
    realized = v.get("realized") if isinstance(v.get("realized"), Mapping) else None
    estimated = v.get("estimated") if isinstance(v.get("estimated"), Mapping) else None
    lines: list[str] = []
    if estimated is not None:
        calibration = (
            estimated.get("calibration") if isinstance(estimated.get("calibration"), Mapping) else None
        )
        if estimated.get("valid"):
            lines.append(f"Estimated performance (CBPE): valid, {text(estimated.get('message', ''))}.")
        else:
            lines.append(f"⚠️ **Estimated performance is not valid**: {text(estimated.get('message', ''))}.")
        if calibration is not None:
            lines.append(
                f"Calibration on {calibration.get('rows', 0):,} evaluation rows: "
                f"ECE {num(calibration.get('ece'))} (max {num(calibration.get('max_ece'))}), "
                f"reliability test χ² {num(calibration.get('statistic'))} on {calibration.get('dof')} bins, "
                f"p = {num(calibration.get('p_value'))}."
            )
        lines.append("")
    names = list(
        dict.fromkeys([*((estimated or {}).get("metrics") or {}), *((realized or {}).get("metrics") or {})])
    )
    if names and ((estimated is not None and estimated.get("metrics")) or realized is not None):
        labelled = (realized or {}).get("labelled_rows")
        head = f"realized ({labelled:,} labelled rows)" if isinstance(labelled, int) else "realized"
        lines += [
            f"| metric | estimated | {confidence} interval | {head} | {confidence} interval |",
            "| --- | ---: | --- | ---: | --- |",
        ]
        est_m = (estimated or {}).get("metrics") or {}
        est_i = (estimated or {}).get("intervals") or {}
        real_m = (realized or {}).get("metrics") or {}
        real_i = (realized or {}).get("intervals") or {}
        mark = "" if (estimated or {}).get("valid", True) else " ⚠️"
        for name in names[:MAX_TABLE_ROWS]:
            est = num(est_m.get(name)) + (mark if name in est_m else "")
            lines.append(
                f"| {text(name)} | {est} | {_interval(est_i.get(name))} "
                f"| {num(real_m.get(name))} | {_interval(real_i.get(name))} |"
            )
        lines.append("")
    elif realized is not None and realized.get("message"):
        lines += [f"Realized performance: {text(realized['message'])}.", ""]
    return lines


def _version(v: Mapping[str, Any], confidence: str) -> list[str]:
    label = (
        f"{v.get('name')} {v['version']}"
        if v.get("version")
        else f"{v.get('name')} {str(v.get('digest'))[:19]}"
    )
    lines = [
        f"#### {text(label)}: {_STATUS.get(str(v.get('status')), text(v.get('status')))}",
        "",
        f"{v.get('rows', 0):,} logged rows, digest {code(v.get('digest'))}"
        + (f", {v['labelled_rows']:,} with a label" if v.get("labelled_rows") else "")
        + ".",
        "",
    ]
    rules = [r for r in v.get("rules") or [] if isinstance(r, Mapping)]
    if rules:
        lines += [*_rules_table(rules, confidence), ""]
    explained = [
        r for r in rules if r.get("outcome") in ("fail", "inconclusive", "undefined") and r.get("message")
    ]
    lines += [f"- **{text(r.get('rule'))}**: {text(r.get('message'))}" for r in explained[:MAX_TABLE_ROWS]]
    if explained:
        lines.append("")
    lines += _performance(v, confidence)
    drift = v.get("drift")
    if isinstance(drift, Mapping):
        open_ = "" if drift.get("passed") else " open"
        lines += [
            f"<details{open_}><summary>Drift</summary>",
            "",
            _drift(drift),
            "",
            "</details>",
            "",
        ]
    quality = v.get("data_quality")
    if isinstance(quality, Mapping):
        open_ = "" if quality.get("passed") else " open"
        lines += [
            f"<details{open_}><summary>Data quality</summary>",
            "",
            _quality(quality),
        ]
        skipped = v.get("data_quality_skipped") or []
        if skipped:
            lines += ["", "Not run on the logs: " + "; ".join(text(s) for s in skipped[:20]) + "."]
        lines += ["", "</details>", ""]
    return lines


def monitor_section(v: Mapping[str, Any], *, title: str = "Monitor") -> str:
    """The whole monitor verdict: window, labels, then each model version's rules and figures."""
    status = str(v.get("status") or ("pass" if v.get("passed") else "fail"))
    model: Mapping[str, Any] = v["model"] if isinstance(v.get("model"), Mapping) else {}
    rows = v.get("rows") if isinstance(v.get("rows"), int) else 0
    lines = [
        f"### {text(title)}: {_STATUS.get(status, text(status))}, {text(model.get('name') or 'model')} "
        f"over {rows:,} logged rows",
        "",
    ]
    window: Mapping[str, Any] = v["window"] if isinstance(v.get("window"), Mapping) else {}
    files = v.get("files") or []
    confidence_value = v.get("confidence")
    confidence = f"{confidence_value * 100:g}%" if isinstance(confidence_value, (int, float)) else "95%"
    lines += [
        f"Window {text(window.get('since') or 'start of the logs')} to {text(window.get('until') or 'now')}, "
        f"{len(files)} log files; rules {code(v.get('config') or '(defaults)')}, inconclusive rules: "
        f"**{text(v.get('on_inconclusive') or 'fail')}**.",
        "",
    ]
    labels = v.get("labels")
    if isinstance(labels, Mapping):
        key = " and ".join(str(k) for k in labels.get("key") or [])
        lines += [
            f"Labels {code(labels.get('source'))}: {labels.get('joined_rows', 0):,} of "
            f"{labels.get('logged_rows', 0):,} logged rows joined on {code(key)}; "
            f"{labels.get('unmatched_labels', 0):,} of {labels.get('label_rows', 0):,} labels matched no "
            f"logged row of the window"
            + (f", {labels['missing_labels']:,} labels missing" if labels.get("missing_labels") else "")
            + ".",
            "",
        ]
    reasons = v.get("reasons") or []
    if not v.get("versions"):
        lines += [f"- {text(r)}" for r in reasons] + [""]
    for version in v.get("versions") or []:
        if isinstance(version, Mapping):
            lines += _version(version, confidence)
    not_checked = v.get("not_checked") or []
    if not_checked:
        lines.append("Not checked: " + "; ".join(text(n) for n in not_checked) + ".")
    return "\n".join(lines).rstrip()
