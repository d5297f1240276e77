"""Mermaid charts that GitHub renders in comments and job summaries, with no image host.

Every label comes from a verdict, which may hold anything: labels are reduced to characters
Mermaid cannot read as syntax, and numbers must be finite.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:=()+/-]")

#: Fill and stroke per stage status (GitHub's own success/danger/neutral colours).
STATUS_STYLES = {
    "passed": "fill:#dafbe1,stroke:#1a7f37,color:#1a7f37",
    "failed": "fill:#ffebe9,stroke:#cf222e,color:#cf222e",
    "error": "fill:#ffebe9,stroke:#cf222e,color:#cf222e,stroke-dasharray:4 2",
    "skipped": "fill:#f6f8fa,stroke:#8c959f,color:#57606a",
}
_STATUS_ICONS = {"passed": "✅", "failed": "❌", "error": "💥", "skipped": "➖"}


def label(text: str, limit: int = 40) -> str:
    """A string safe inside a quoted Mermaid label."""
    clean = _UNSAFE.sub("_", " ".join(str(text).split()))
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def fenced(body: str) -> str:
    return f"```mermaid\n{body.rstrip()}\n```"


def stage_flowchart(stages: Sequence[tuple[str, str]]) -> str:
    """A left-to-right flowchart of ``(name, status)`` stages, coloured by status."""
    lines = ["flowchart LR"]
    nodes = []
    for i, (name, status) in enumerate(stages):
        icon = _STATUS_ICONS.get(status, "")
        nodes.append(f's{i}["{icon} {label(name)}<br/>{label(status)}"]')
    if nodes:
        lines.append("  " + " --> ".join(nodes))
    used = {status for _, status in stages if status in STATUS_STYLES}
    for status in sorted(used):
        members = ",".join(f"s{i}" for i, (_, st) in enumerate(stages) if st == status)
        lines.append(f"  classDef {status} {STATUS_STYLES[status]}")
        lines.append(f"  class {members} {status}")
    return fenced("\n".join(lines))


def _axis_range(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if low >= 0 and high <= 1:
        return 0.0, 1.0
    low = min(low, 0.0)
    span = (high - low) or abs(high) or 1.0
    return low, high + 0.1 * span


def _num(value: float) -> str:
    return f"{value:.6g}"


def bar_chart(
    title: str,
    categories: Sequence[str],
    bars: Sequence[float],
    *,
    y_label: str = "value",
    line: Sequence[float] | None = None,
) -> str | None:
    """An ``xychart-beta`` bar chart (and an optional line, e.g. a threshold); None if empty."""
    values = [float(v) for v in bars]
    if not values or len(values) != len(categories) or not all(math.isfinite(v) for v in values):
        return None
    if line is not None and (len(line) != len(values) or not all(math.isfinite(v) for v in line)):
        line = None
    low, high = _axis_range(values + list(line or []))
    names = ", ".join(f'"{label(c, 24)}"' for c in categories)
    lines = [
        "xychart-beta",
        f'  title "{label(title, 60)}"',
        f"  x-axis [{names}]",
        f'  y-axis "{label(y_label, 30)}" {_num(low)} --> {_num(high)}',
        f"  bar [{', '.join(_num(v) for v in values)}]",
    ]
    if line is not None:
        lines.append(f"  line [{', '.join(_num(float(v)) for v in line)}]")
    return fenced("\n".join(lines))
