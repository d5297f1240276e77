"""``render_report``: one Markdown report from a pipeline verdict or individual verdict files."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mlci_lib.errors import UsageError
from mlci_lib.report import markdown as md
from mlci_lib.report.fit import COMMENT_BUDGET, fit_markdown
from mlci_lib.report.verdicts import Verdict, load_verdict, stage_verdicts, validate_verdict
from mlci_lib.results import Result

DEFAULT_TITLE = "mlci"


@dataclasses.dataclass(frozen=True)
class Report(Result):
    """The rendered report: its sections, the overall verdict and the plot files written."""

    SCHEMA: ClassVar[str] = "mlci.report"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    title: str
    #: Stages or verdicts that failed, in order (the pipeline's failed stage first).
    failed: tuple[str, ...]
    sources: tuple[str, ...]
    plots: tuple[str, ...]
    plots_dir: str | None
    sections: tuple[md.Section, ...]

    @property
    def markdown(self) -> str:
        return "\n\n".join(s.markdown for s in self.sections if s.markdown) + "\n"

    def fitted(self, limit: int = COMMENT_BUDGET) -> str:
        """The report shortened to ``limit`` characters when it is longer (charts first)."""
        return fit_markdown(self.markdown, limit)

    def section(self, name: str) -> str | None:
        return next((s.markdown for s in self.sections if s.name == name), None)


def _as_verdict(item: Any, index: int) -> Verdict:
    if isinstance(item, Verdict):
        return item
    if isinstance(item, Result):
        return validate_verdict(item.to_dict(), source=f"{type(item).__name__} object")
    if isinstance(item, Mapping):
        return validate_verdict(dict(item), source=f"verdict #{index + 1} (mapping)")
    if isinstance(item, (str, os.PathLike)):
        if str(item).strip() == "":
            raise UsageError("a verdict file name is empty", hint="give the path of a verdict JSON file")
        return load_verdict(item)
    raise UsageError(
        f"render_report takes verdict file paths, mappings or results, not {type(item).__name__}"
    )


_TITLES = {"gate": "Metric gate", "data-check": "Data check", "drift": "Drift", "monitor": "Monitor"}


def _section(verdict: Verdict, title: str) -> str:
    """A verdict's section, by the same renderer its command's job summary uses.

    The verdict was validated against its schema; ``from_dict`` turns it into its result class.
    """
    from mlci_lib.result_schemas import from_dict

    what = f"verdict file {verdict.source}"
    if verdict.kind == "gate":
        from mlci_lib.gate.render import verdict_markdown
        from mlci_lib.gate.results import GateVerdict

        return verdict_markdown(from_dict(GateVerdict, verdict.data, what=what), title=title).rstrip()
    if verdict.kind == "data-check":
        from mlci_lib.data.check import DataCheckResult
        from mlci_lib.data.render import check_markdown

        return check_markdown(from_dict(DataCheckResult, verdict.data, what=what), title=title).rstrip()
    if verdict.kind == "drift":
        from mlci_lib.drift.gate import DriftVerdict
        from mlci_lib.drift.render import drift_markdown

        return drift_markdown(from_dict(DriftVerdict, verdict.data, what=what), title=title).rstrip()
    if verdict.kind == "monitor":
        from mlci_lib.report.monitor import monitor_section

        return monitor_section(verdict.data, title=title)
    raise AssertionError(f"no section for a {verdict.kind} verdict")  # validate_verdict knows the kinds


def _stages(pipeline: Verdict) -> str:
    from mlci_lib.pipeline.render import stages_markdown
    from mlci_lib.pipeline.verdict import PipelineVerdict
    from mlci_lib.result_schemas import from_dict

    verdict = from_dict(PipelineVerdict, pipeline.data, what=f"verdict file {pipeline.source}")
    stages = stages_markdown(verdict.stages)
    return f"### Stages\n\n{stages}" if stages else ""


def render_report(
    *verdicts: Any,
    plots_dir: str | os.PathLike[str] | None = None,
    predictions: str | os.PathLike[str] | None = None,
    title: str = DEFAULT_TITLE,
    git: Mapping[str, Any] | None = None,
    columns: Mapping[str, Any] | None = None,
    base_dir: str | os.PathLike[str] = ".",
) -> Report:
    """Render verdicts (paths, mappings or result objects) into one report.

    A pipeline verdict brings its stages, links and embedded stage verdicts; individual gate,
    data-check and drift verdicts add their own sections. ``git`` (commit, ref, branch,
    repository, run_url) fills the links when no pipeline verdict carries them. With
    ``predictions`` (a per-row predictions file), PNG plots are written to ``plots_dir``
    (default ``mlci-plots``); ``columns`` maps the plot options (label_column, prediction_column,
    score_column, proba_prefix, pos_label, task) when they differ from the defaults.
    """
    if not verdicts:
        raise UsageError("a report needs at least one verdict", hint="pass the verdict JSON files to report")
    loaded = [_as_verdict(item, i) for i, item in enumerate(verdicts)]
    pipelines = [v for v in loaded if v.kind == "pipeline"]
    if len(pipelines) > 1:
        raise UsageError(
            f"a report takes one pipeline verdict, got {len(pipelines)}: "
            + ", ".join(v.source for v in pipelines),
            hint="render one report per pipeline run",
        )
    pipeline = pipelines[0] if pipelines else None
    parts: list[tuple[str, Verdict]] = []
    if pipeline is not None:
        parts += stage_verdicts(pipeline, base=base_dir)
    parts += [(v.kind, v) for v in loaded if v.kind != "pipeline"]

    failed: list[str] = []
    if pipeline is not None:
        failed_stage = pipeline.data.get("failed_stage")
        if failed_stage:
            failed.append(str(failed_stage))
        failed += [
            str(s["name"])
            for s in pipeline.data.get("stages") or []
            if s["status"] in ("failed", "error") and str(s["name"]) not in failed
        ]
    for name, verdict in parts:
        if not verdict.passed and name not in failed:
            failed.append(name)
    passed = all(v.passed for v in loaded) and all(v.passed for _, v in parts)

    plot_files: tuple[str, ...] = ()
    plots_folder: str | None = None
    if predictions is not None and str(predictions).strip():
        from mlci_lib.report.plots import write_plots
        from mlci_lib.report.verdicts import check_predictions

        check_predictions(predictions, [v for _, v in parts])
        plots_folder = str(plots_dir) if plots_dir else "mlci-plots"
        plot_files = tuple(str(p) for p in write_plots(predictions, plots_folder, **dict(columns or {})))

    pdata = pipeline.data if pipeline is not None else {}
    git_info = pdata.get("git") or (dict(git) if git else None)
    sections = [
        md.Section(
            "head",
            md.headline(passed, failed, title)
            + "\n\n"
            + md.links(
                git_info,
                pdata.get("data_fingerprint"),
                pdata.get("model"),
                pdata.get("image"),
                pdata.get("deployment"),
            ),
        )
    ]
    if pipeline is not None:
        from mlci_lib.report.champion import missing_champion, no_champion_markdown

        no_champion = missing_champion(pdata)
        if no_champion is not None:
            sections.append(md.Section("no-champion", no_champion_markdown(no_champion)))
        sections.append(md.Section("stages", _stages(pipeline)))
    counts: dict[str, int] = {}
    for _, verdict in parts:
        counts[verdict.kind] = counts.get(verdict.kind, 0) + 1
    seen: dict[str, int] = {}
    for name, verdict in parts:
        seen[verdict.kind] = seen.get(verdict.kind, 0) + 1
        label = _TITLES[verdict.kind]
        if counts[verdict.kind] > 1:
            label += f" ({name if name != verdict.kind else Path(verdict.source).name})"
        key = verdict.kind if counts[verdict.kind] == 1 else f"{verdict.kind}-{seen[verdict.kind]}"
        sections.append(md.Section(key, _section(verdict, label)))
    if plot_files:
        sections.append(
            md.Section("plots", md.plots_section([Path(p).name for p in plot_files], plots_folder))
        )
    proven = md.provenance(
        git_info,
        pdata.get("data_fingerprint"),
        pdata.get("model"),
        pdata.get("image"),
        pdata.get("deployment"),
    )
    if proven:
        sections.append(md.Section("provenance", proven))
    return Report(
        passed=passed,
        title=title,
        failed=tuple(failed),
        sources=tuple(dict.fromkeys(v.source for v in loaded)),
        plots=plot_files,
        plots_dir=plots_folder,
        sections=tuple(s for s in sections if s.markdown),
    )


def write_report(report: Report, path: str | os.PathLike[str]) -> Path:
    """Write the full Markdown report atomically."""
    from mlci_lib.files import write_text_atomic

    return write_text_atomic(path, report.markdown)


__all__: Sequence[str] = ("Report", "render_report", "write_report")
