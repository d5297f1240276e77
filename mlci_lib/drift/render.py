"""The drift verdict for people: one Markdown renderer for the job summary and the report.

``mlci drift`` renders the verdict it just computed; ``mlci report`` reads the verdict file back
into a :class:`~mlci_lib.drift.gate.DriftVerdict` and renders it here too. Features are listed
most severe first, with a chart of the severities.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mlci_lib.report import mermaid
from mlci_lib.report.escape import code, text
from mlci_lib.report.markdown import MAX_TABLE_ROWS, more, num

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mlci_lib.drift.gate import DriftVerdict, FeatureDrift

#: The job summary's title; the report calls the section "Drift".
TITLE = "mlci drift"


def severity(f: FeatureDrift) -> float:
    """How far past the threshold (above 1) a feature is; an infinite one is written as null."""
    if math.isfinite(f.severity):
        return f.severity
    return math.inf if f.drifted else 0.0


def drift_markdown(v: DriftVerdict, *, title: str = TITLE) -> str:
    """The verdict as Markdown: every feature (the prediction too), most severe first, and a chart."""
    icon = "✅" if v.passed else "❌"
    lines = [
        f"### {text(title)}: {icon} {len(v.drifted_features)} of {len(v.features)} features drifted "
        f"({v.drift_share:.0%}, gate {v.max_drift_share:.0%})",
        "",
    ]
    if v.reasons:
        lines += [f"- {text(reason)}" for reason in v.reasons] + [""]
    lines += [
        f"Reference {code(v.reference)} ({v.reference_rows:,} rows), "
        f"current {code(v.current)} ({v.current_rows:,} rows).",
        "",
    ]
    rows: list[tuple[FeatureDrift, bool]] = [(f, False) for f in v.features]
    if v.prediction is not None:
        rows.append((v.prediction, True))
    # Most severe first: drifted before not, then by how far past the threshold.
    rows.sort(key=lambda item: (not item[0].drifted, -severity(item[0]), item[0].name))
    lines += [
        "| feature | method | statistic | threshold | severity | drifted | kind | PSI | JS "
        "| missing ref → cur |",
        "| --- | --- | ---: | ---: | ---: | :---: | --- | ---: | ---: | ---: |",
    ]
    for f, is_prediction in rows[:MAX_TABLE_ROWS]:
        name = (
            code(f.name) + (" (prediction)" if is_prediction else "") + (" (critical)" if f.critical else "")
        )
        if f.unseen_levels:
            name += " · unseen: " + ", ".join(code(u, 30) for u in f.unseen_levels[:5])
        sev = severity(f)
        lines.append(
            f"| {name} | {text(f.method)} | {num(f.value)} | {num(f.threshold)} "
            f"| {'∞' if math.isinf(sev) else f'{sev:.2f}×'} | {'❌' if f.drifted else '✅'} | {text(f.kind)} "
            f"| {num(f.psi)} | {num(f.js_distance)} "
            f"| {_share(f.reference_missing_share)} → {_share(f.current_missing_share)} |"
        )
    lines += more(min(len(rows), MAX_TABLE_ROWS), len(rows), "features")
    chart = drift_chart([f for f, _ in rows])
    if chart:
        lines += ["", chart]
    return "\n".join(lines) + "\n"


def _share(value: float) -> str:
    return f"{value:.1%}" if math.isfinite(value) else "–"


def drift_chart(features: Sequence[FeatureDrift]) -> str | None:
    """Severity of the most drifted features (1.0 is the threshold), as a Mermaid bar chart."""
    top = [f for f in features if math.isfinite(severity(f))][:10]
    if not top:
        return None
    values = [min(severity(f), 100.0) for f in top]
    return mermaid.bar_chart(
        "Drift severity (threshold = 1)",
        [f.name for f in top],
        values,
        y_label="severity",
        line=[1.0] * len(values),
    )
