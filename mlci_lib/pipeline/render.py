"""The pipeline verdict for people: one Markdown renderer for ``mlci run``'s job summary and the report.

``mlci run`` renders the verdict it just wrote; ``mlci report`` reads the verdict file back into a
:class:`~mlci_lib.pipeline.verdict.PipelineVerdict` and renders its stages with the same
:func:`stages_markdown`. The plain text for a terminal is :meth:`PipelineVerdict.text`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlci_lib.report import mermaid
from mlci_lib.report.escape import code, text
from mlci_lib.report.markdown import links

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mlci_lib.pipeline.verdict import PipelineVerdict, StageRecord

_STAGE_ICONS = {"passed": "✅", "failed": "❌", "error": "💥", "skipped": "➖"}
#: The job summary's title.
TITLE = "mlci pipeline"


def stages_markdown(stages: Sequence[StageRecord]) -> str:
    """The stages as a flowchart coloured by status, then a table with each stage's time and message."""
    if not stages:
        return ""
    lines = [mermaid.stage_flowchart([(s.name, s.status) for s in stages])]
    lines += ["", "| stage | status | time | message |", "| --- | --- | ---: | --- |"]
    for s in stages:
        lines.append(
            f"| {text(s.name)} | {_STAGE_ICONS.get(s.status, '')} {s.status} | {s.duration_s:.1f} s "
            f"| {text(s.message, 600)} |"
        )
    return "\n".join(lines)


def pipeline_markdown(v: PipelineVerdict, *, title: str = TITLE) -> str:
    """The verdict as Markdown: the outcome, what it links (commit, data, model, image, deployment),
    the stages."""
    if v.passed:
        head = f"### {text(title)}: ✅ passed"
    elif v.failed_stage:
        head = f"### {text(title)}: ❌ failed at {code(v.failed_stage)}"
    else:
        head = f"### {text(title)}: {text(v.status)}"
    lines = [head, "", links(v.git, v.data_fingerprint, v.model, v.image, v.deployment)]
    stages = stages_markdown(v.stages)
    if stages:
        lines += ["", stages]
    return "\n".join(lines) + "\n"
