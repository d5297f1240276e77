"""Markdown sections of the report, rendered from verdict JSON (not from live objects).

Verdicts hold text from users' data (file names, column values, messages), so everything that
comes from one goes through :mod:`mlci_lib.report.escape` (``text`` and ``code``, re-exported
here): no stray table pipes, HTML tags, @-mentions or fake report markers.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mlci_lib.report import mermaid
from mlci_lib.report.escape import code, text

_STAGE_ICONS = {"passed": "✅", "failed": "❌", "error": "💥", "skipped": "➖"}
_RULE_ICONS = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "inconclusive": "⚠️ inconclusive",
    "undefined": "❌ undefined",
    "skipped": "➖ skipped",
}
_GATE_STATUS = {"pass": "✅ passed", "warn": "⚠️ passed with warnings", "fail": "❌ failed"}
#: Rows shown per table before "… and N more"; the full data is in the verdict file.
MAX_TABLE_ROWS = 50


@dataclasses.dataclass(frozen=True)
class Section:
    """One part of the report; ``name`` says what it is (head, stages, gate, data-check, ...)."""

    name: str
    markdown: str


# -- numbers ------------------------------------------------------------------------


def num(value: Any, *, signed: bool = False, percent: bool = False) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    if not math.isfinite(value):
        return "–"
    if percent:
        return f"{value * 100:+.2f}%" if signed else f"{value * 100:.2f}%"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:+.3g}" if signed else f"{value:.3g}"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _more(shown: int, total: int, what: str) -> list[str]:
    if total <= shown:
        return []
    return ["", f"… and {total - shown} more {what} (see the verdict file)."]


# -- head ------------------------------------------------------------------------------------------


def headline(passed: bool, failed: Sequence[str], title: str) -> str:
    if passed:
        return f"## ✅ {text(title)}: passed"
    where = ", ".join(f"**{text(name)}**" for name in failed)
    return f"## ❌ {text(title)}: failed" + (f" at {where}" if where else "")


def _server(git: Mapping[str, Any]) -> str | None:
    run_url, repo = git.get("run_url"), git.get("repository")
    if isinstance(run_url, str) and isinstance(repo, str) and f"/{repo}/" in run_url:
        server = run_url.split(f"/{repo}/", 1)[0]
        if re.fullmatch(r"https?://[A-Za-z0-9.:-]+", server):
            return server
    return None


def _safe_url(url: Any) -> str | None:
    if isinstance(url, str) and re.fullmatch(r"https?://[^\s()<>\"'`]+", url):
        return url
    return None


def links(
    git: Mapping[str, Any] | None,
    data_fingerprint: str | None,
    model: Mapping[str, Any] | None,
    image: Mapping[str, Any] | None,
) -> str:
    """One line: commit → data fingerprint → model version → image digest, with a run link."""
    git = git or {}
    parts = []
    commit = git.get("commit")
    if isinstance(commit, str) and commit:
        shown = code(commit[:12])
        server, repo = _server(git), git.get("repository")
        if server and re.fullmatch(r"[0-9a-fA-F]{7,64}", commit):
            shown = f"[{shown}]({server}/{repo}/commit/{commit})"
        ref = git.get("branch") or git.get("ref")
        parts.append(f"commit {shown}" + (f" ({text(ref, 80)})" if ref else ""))
    else:
        parts.append("commit –")
    parts.append(f"data {code(_short_digest(data_fingerprint))}" if data_fingerprint else "data –")
    if model:
        name, version = model.get("name"), model.get("version")
        shown = code(f"{name or 'model'}" + (f" v{version}" if version is not None else ""))
        parts.append(f"model {shown}")
    else:
        parts.append("model –")
    if image and (image.get("digest") or image.get("reference")):
        parts.append(f"image {code(_short_digest(image.get('digest') or image.get('reference')))}")
    else:
        parts.append("image –")
    line = " → ".join(parts)
    run_url = _safe_url(git.get("run_url"))
    return line + (f" · [run]({run_url})" if run_url else "")


def _short_digest(value: Any) -> str:
    text_value = str(value)
    if re.fullmatch(r"sha256:[0-9a-f]{64}", text_value):
        return text_value[:19] + "…"
    return text_value


def provenance(
    git: Mapping[str, Any] | None,
    data_fingerprint: str | None,
    model: Mapping[str, Any] | None,
    image: Mapping[str, Any] | None,
) -> str:
    """A details table with every identifier in full, for copy-paste."""
    rows = []
    for key, value in (git or {}).items():
        if value:
            rows.append((f"git {key}", value))
    if data_fingerprint:
        rows.append(("data fingerprint", data_fingerprint))
    for key, value in (model or {}).items():
        if value is not None and value != "":
            rows.append((f"model {key}", value))
    for key, value in (image or {}).items():
        if value:
            rows.append((f"image {key}", ", ".join(map(str, value)) if isinstance(value, list) else value))
    if not rows:
        return ""
    lines = ["<details><summary>Provenance</summary>", "", "| | |", "| --- | --- |"]
    lines += [f"| {text(k)} | {code(v, 200)} |" for k, v in rows]
    return "\n".join([*lines, "", "</details>"])


# -- stages ----------------------------------------------------------------------------------------


def stages_section(stages: Sequence[Mapping[str, Any]]) -> str:
    if not stages:
        return ""
    lines = ["### Stages", ""]
    lines.append(mermaid.stage_flowchart([(str(s["name"]), str(s["status"])) for s in stages]))
    lines += ["", "| stage | status | time | message |", "| --- | --- | ---: | --- |"]
    for s in stages:
        status = str(s["status"])
        duration = s.get("duration_s")
        took = (
            f"{duration:.1f} s"
            if isinstance(duration, (int, float)) and not isinstance(duration, bool)
            else ""
        )
        lines.append(
            f"| {text(s['name'])} | {_STAGE_ICONS.get(status, '')} {status} | {took} "
            f"| {text(s.get('message') or '')} |"
        )
    return "\n".join(lines)


# -- gate ------------------------------------------------------------------------------------------


def _threshold(r: Mapping[str, Any]) -> str:
    op = "≥" if r.get("comparison") == ">=" else "≤"
    statistic, threshold = r.get("statistic"), r.get("threshold")
    if statistic == "relative-change":
        return f"relative change {op} {num(threshold, signed=True, percent=True)}"
    if statistic == "change":
        return f"change {op} {num(threshold, signed=True)}"
    if statistic == "gap":
        return f"gap {op} {num(threshold)}"
    return f"{op} {num(threshold)}"


def _interval(r: Mapping[str, Any]) -> str:
    interval = r.get("interval")
    if not interval:
        return "–"
    percent = r.get("statistic") == "relative-change"
    signed = r.get("statistic") in ("change", "relative-change")
    low, high = interval
    return f"[{num(low, signed=signed, percent=percent)}, {num(high, signed=signed, percent=percent)}]"


def _change(r: Mapping[str, Any]) -> str:
    """The change in the better direction (+ is better), on the scale the interval uses."""
    if r.get("statistic") == "relative-change":
        return num(r.get("value"), signed=True, percent=True)
    delta = r.get("delta")
    if not isinstance(delta, (int, float)) or isinstance(delta, bool):
        return "–"
    sign = -1.0 if r.get("direction") == "lower" else 1.0
    return num(sign * delta, signed=True)


def _outcome(r: Mapping[str, Any]) -> str:
    icon = _RULE_ICONS.get(str(r["outcome"]), str(r["outcome"]))
    return icon + ("" if r.get("required", True) else " (advisory)")


def gate_section(v: Mapping[str, Any], *, title: str = "Metric gate") -> str:
    status = v.get("status") or ("pass" if v["passed"] else "fail")
    lines = [
        f"### {text(title)}: {_GATE_STATUS.get(str(status), '❌ failed' if not v['passed'] else '✅ passed')}"
    ]
    confidence = v.get("confidence")
    conf = f"{confidence * 100:g}%" if isinstance(confidence, (int, float)) else "95%"
    detail = []
    cand, base = v.get("candidate") or {}, v.get("baseline") or {}
    if cand.get("source"):
        detail.append(f"candidate {code(cand['source'])}")
    if base.get("source"):
        detail.append(f"baseline {code(base['source'])}")
    if v.get("method") == "bootstrap":
        rows = f" on {v['rows']:,} rows" if isinstance(v.get("rows"), int) else ""
        detail.append(f"paired bootstrap{rows}, {v.get('resamples', '?')} resamples, {conf} intervals")
    elif v.get("method"):
        detail.append("point estimates (no intervals)")
    if v.get("on_inconclusive"):
        detail.append(f"inconclusive rules: **{text(v['on_inconclusive'])}**")
    lines += ["", "; ".join(detail) + ("." if detail else "") + " Change is + when better.", ""]
    rules = list(v.get("rules") or [])
    main = [r for r in rules if r.get("kind") not in ("slice", "latency")]
    if main:
        lines += [
            f"| rule | candidate | baseline | change | {conf} interval | needs | outcome |",
            "| --- | ---: | ---: | ---: | --- | --- | --- |",
        ]
        for r in main[:MAX_TABLE_ROWS]:
            value = r.get("value") if r.get("kind") == "slice-gap" else r.get("candidate")
            lines.append(
                f"| {text(r['rule'])} | {num(value)} | {num(r.get('baseline'))} | {_change(r)} "
                f"| {_interval(r)} | {_threshold(r)} | {_outcome(r)} |"
            )
        lines += _more(min(len(main), MAX_TABLE_ROWS), len(main), "rules")
    chart = metric_chart(rules)
    if chart:
        lines += ["", chart]
    slices = slice_block(v)
    if slices:
        lines += ["", slices]
    latency = [r for r in rules if r.get("kind") == "latency"]
    if latency:
        lines += ["", "#### Latency", "", "| rule | candidate | baseline | needs | outcome |"]
        lines.append("| --- | ---: | ---: | --- | --- |")
        for r in latency:
            lines.append(
                f"| {text(r['rule'])} | {num(r.get('candidate'))} ms | {num(r.get('baseline'))} "
                f"| {_threshold(r)} | {_outcome(r)} |"
            )
    explained = [
        r for r in rules if r["outcome"] in ("fail", "inconclusive", "undefined") and r.get("message")
    ]
    if explained:
        lines.append("")
        lines += [f"- **{text(r['rule'])}**: {text(r['message'])}" for r in explained[:MAX_TABLE_ROWS]]
    notes = v.get("notes") or []
    if notes:
        lines.append("")
        lines += [f"> {text(note)}" for note in notes]
    return "\n".join(lines)


def metric_chart(rules: Sequence[Mapping[str, Any]]) -> str | None:
    """Candidate vs baseline for each metric a rule compares, as a Mermaid bar chart."""
    seen: dict[str, tuple[float, float | None]] = {}
    for r in rules:
        if r.get("kind") != "metric" or not r.get("metric") or r["metric"] in seen:
            continue
        cand, base = r.get("candidate"), r.get("baseline")
        if not isinstance(cand, (int, float)):
            continue
        seen[str(r["metric"])] = (float(cand), float(base) if isinstance(base, (int, float)) else None)
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


def slice_block(v: Mapping[str, Any]) -> str:
    rows = list(v.get("slices") or [])
    rules = [r for r in v.get("rules") or [] if r.get("kind") == "slice"]
    if not rows and not rules:
        return ""
    failing = [r for r in rules if r["outcome"] in ("fail", "inconclusive", "undefined")]
    lines = [f"<details{' open' if failing else ''}><summary>Slices</summary>", ""]
    if rows:
        names = list(dict.fromkeys(k for row in rows for k in (row.get("metrics") or {})))
        lines.append("| slice | rows | gated | " + " | ".join(text(n) for n in names) + " |")
        lines.append("| --- | ---: | :---: | " + " | ".join("---:" for _ in names) + " |")
        for row in rows[:MAX_TABLE_ROWS]:
            metrics = row.get("metrics") or {}
            rows_n = row.get("rows")
            lines.append(
                f"| {code(str(row['column']) + '=' + str(row['value']))} "
                f"| {f'{rows_n:,}' if isinstance(rows_n, int) else '–'} "
                f"| {'yes' if row.get('gated', True) else 'no'} | "
                + " | ".join(num(metrics.get(n)) for n in names)
                + " |"
            )
        lines += _more(min(len(rows), MAX_TABLE_ROWS), len(rows), "slices")
    if failing:
        lines += ["", "| slice rule | value | needs | outcome |", "| --- | ---: | --- | --- |"]
        for r in failing[:MAX_TABLE_ROWS]:
            lines.append(f"| {text(r['rule'])} | {num(r.get('value'))} | {_threshold(r)} | {_outcome(r)} |")
    return "\n".join([*lines, "", "</details>"])


# -- data check ------------------------------------------------------------------------------------


def data_check_section(v: Mapping[str, Any], *, title: str = "Data check") -> str:
    expectations = list(v.get("expectations") or [])
    failures = [e for e in expectations if not e["success"]]
    evaluated = v.get("evaluated") if isinstance(v.get("evaluated"), int) else len(expectations)
    if v["passed"]:
        head = f"### {text(title)}: ✅ passed, {evaluated} expectations"
    else:
        head = f"### {text(title)}: ❌ {len(failures)} of {evaluated} expectations failed"
    lines = [head, ""]
    where = []
    if v.get("data"):
        rows = f" ({v['rows']:,} rows)" if isinstance(v.get("rows"), int) else ""
        where.append(f"data {code(v['data'])}{rows}")
    if v.get("suite"):
        where.append(f"suite {code(v['suite'])}")
    if where:
        lines += [", ".join(where) + ".", ""]
    problems = list(v.get("problems") or [])
    lines += [f"- **{text(p)}**" for p in problems]
    if problems:
        lines.append("")
    if failures:
        lines += [
            "| expectation | column | unexpected | share | sample unexpected / error |",
            "| --- | --- | ---: | ---: | --- |",
        ]
        for e in failures[:MAX_TABLE_ROWS]:
            if e["type"] == "expect_column_to_exist":
                detail = "the column is missing from the data"
            elif e.get("exception"):
                detail = "error: " + text(e["exception"], 200)
            elif e.get("sample_unexpected"):
                detail = ", ".join(code(s, 40) for s in list(e["sample_unexpected"])[:5])
            elif e.get("observed_value") is not None:
                detail = "observed " + code(e["observed_value"], 80)
            else:
                detail = ""
            count = e.get("unexpected_count")
            share = e.get("unexpected_share")
            lines.append(
                f"| {text(e['type'])} | {code(e['column']) if e.get('column') else ''} "
                f"| {f'{count:,}' if isinstance(count, int) else ''} "
                f"| {num(share, percent=True) if share is not None else ''} "
                f"| {detail} |"
            )
        lines += _more(min(len(failures), MAX_TABLE_ROWS), len(failures), "failed expectations")
    return "\n".join(lines).rstrip()


# -- drift -----------------------------------------------------------------------------------------


def _severity(f: Mapping[str, Any]) -> float:
    value = f.get("severity")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.inf if f.get("drifted") else 0.0  # null severity is written for an infinite one


def drift_section(v: Mapping[str, Any], *, title: str = "Drift") -> str:
    features = list(v.get("features") or [])
    drifted = [f for f in features if f["drifted"]]
    share = v.get("drift_share")
    gate = v.get("max_drift_share")
    tail = ""
    if isinstance(share, (int, float)) and isinstance(gate, (int, float)):
        tail = f" ({share:.0%}, gate {gate:.0%})"
    icon = "✅" if v["passed"] else "❌"
    lines = [f"### {text(title)}: {icon} {len(drifted)} of {len(features)} features drifted{tail}", ""]
    reasons = list(v.get("reasons") or [])
    lines += [f"- {text(r)}" for r in reasons]
    if reasons:
        lines.append("")
    if v.get("reference") or v.get("current"):
        lines += [f"reference {code(v.get('reference', '–'))}, current {code(v.get('current', '–'))}.", ""]
    rows: list[tuple[Mapping[str, Any], bool]] = [(f, False) for f in features]
    if isinstance(v.get("prediction"), dict):
        rows.append((v["prediction"], True))
    # Most severe first: drifted before not, then by how far past the threshold.
    rows.sort(key=lambda item: (not item[0]["drifted"], -_severity(item[0]), str(item[0]["name"])))
    lines += [
        "| feature | method | statistic | threshold | severity | drifted |",
        "| --- | --- | ---: | ---: | ---: | :---: |",
    ]
    for f, is_prediction in rows[:MAX_TABLE_ROWS]:
        name = (
            code(f["name"])
            + (" (prediction)" if is_prediction else "")
            + (" (critical)" if f.get("critical") else "")
        )
        unseen = f.get("unseen_levels") or []
        if unseen:
            name += " · unseen: " + ", ".join(code(u, 30) for u in unseen[:5])
        severity = _severity(f)
        lines.append(
            f"| {name} | {text(f.get('method') or '–')} | {num(f.get('value'))} | {num(f.get('threshold'))} "
            f"| {'∞' if math.isinf(severity) else f'{severity:.2f}×'} | {'❌' if f['drifted'] else '✅'} |"
        )
    lines += _more(min(len(rows), MAX_TABLE_ROWS), len(rows), "features")
    chart = drift_chart([f for f, _ in rows])
    if chart:
        lines += ["", chart]
    return "\n".join(lines)


def drift_chart(features: Sequence[Mapping[str, Any]]) -> str | None:
    """Severity of the most drifted features (1.0 is the threshold), as a Mermaid bar chart."""
    top = [f for f in features if math.isfinite(_severity(f))][:10]
    if not top:
        return None
    values = [min(_severity(f), 100.0) for f in top]
    return mermaid.bar_chart(
        "Drift severity (threshold = 1)",
        [str(f["name"]) for f in top],
        values,
        y_label="severity",
        line=[1.0] * len(values),
    )


# -- plots -----------------------------------------------------------------------------------------


def plots_section(files: Sequence[str], folder: str | None) -> str:
    if not files:
        return ""
    lines = ["### Plots", ""]
    where = f" in {code(folder)}" if folder else ""
    lines.append(f"Written{where} for upload as a workflow artifact:")
    lines.append("")
    lines += [f"- {code(name)}" for name in files]
    return "\n".join(lines)
