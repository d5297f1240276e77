"""Data values render as text in every Markdown mlci writes: the report, the comment, the summaries.

Column names, category and slice values, file paths and stage messages hold HTML, Markdown and
mentions. They go through the real commands (gate with slices, data check, drift, a pipeline
verdict, report), and each Markdown they write (job summary, report file) is checked: no raw
tag, no marker, no unbalanced ``<details>``, no live ``@mention``, no heading or link from data,
no table cell split by a pipe. The escaper itself is checked value by value too.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlci_lib.cli import main
from mlci_lib.report.escape import ZERO_WIDTH_SPACE, code, text
from mlci_lib.runner import CiRunner

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<h1>big</h1>",
    "</details><details open>",
    "@admin please look",
    "# heading from data",
    "[click](javascript:alert(1))",
    "<!-- mlci-report:default -->",
    "a|b",
    "`tick`",
    "- list item",
    "1. numbered",
    "&lt;not an entity&gt;",
]


_CODE_SPAN = re.compile(r"(?<!\\)`[^`\n]*`")


def assert_inert(markdown: str) -> None:
    """Nothing in ``markdown`` that came from HOSTILE renders as anything but text.

    A code span shows its content literally (tags and mentions included), so code spans are set
    aside first; they may hold no backtick of their own, nor a pipe that splits a table cell.
    """
    for span in _CODE_SPAN.findall(markdown):
        assert not re.search(r"(?<!\\)\|", span), span
    markdown = _CODE_SPAN.sub("`code`", markdown)
    for tag in ("<img", "<h1", "<!--", "</h1"):
        assert tag not in markdown, tag
    opened = re.findall(r"<details[^>]*>", markdown)
    assert all(o in ("<details>", "<details open>") for o in opened), opened
    assert len(opened) == markdown.count("</details>")
    heads = [line for line in markdown.splitlines() if line.startswith("<details")]
    assert all(re.fullmatch(r"<details( open)?><summary>[^<]*</summary>", line) for line in heads), heads
    assert not re.search(r"@admin", markdown)
    assert not re.search(r"(?<!\\)\]\(javascript:", markdown)
    assert not re.search(r"^\s*#+ heading from data", markdown, re.MULTILINE)
    assert not re.search(r"(?<!\\)a\|b", markdown)
    assert "`tick`" not in markdown.replace("`code`", "")
    assert not re.search(r"^\s*(- list item|1\. numbered)", markdown, re.MULTILINE)
    assert "&lt;not an entity&gt;" not in markdown  # the & is escaped: it shows as typed
    header_cells = None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            header_cells = None
            continue
        cells = len(re.findall(r"(?<!\\)\|", line))
        header_cells = header_cells or cells
        assert cells == header_cells, line


@pytest.mark.parametrize("value", HOSTILE)
def test_the_escaper_leaves_nothing_live(value: str) -> None:
    for rendered in (text(value), code(value), f"| {text(value)} | {code(value)} |"):
        assert_inert(rendered)
    assert text("@admin").startswith("@" + ZERO_WIDTH_SPACE)


def _run(argv: list[str], tmp_path: Path) -> tuple[int, str]:
    summary = tmp_path / "summary.md"
    summary.unlink(missing_ok=True)
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    out, err = io.StringIO(), io.StringIO()
    code_ = main(argv, runner=CiRunner(env, stdout=out, stderr=err))
    assert summary.is_file(), out.getvalue() + err.getvalue()
    return code_, summary.read_text()


def test_gate_summary_and_report_with_hostile_slices_and_rules(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 480
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame({"id": range(n), "label": y, "prediction": y, "score": y * 0.8 + 0.1})
    frame["region"] = [HOSTILE[i % len(HOSTILE)] for i in range(n)]
    bad = frame["region"] == HOSTILE[0]
    frame.loc[bad, "prediction"] = 1 - frame.loc[bad, "label"]
    candidate = tmp_path / "<img src=x> @admin.parquet"
    frame.to_parquet(candidate)
    rules = tmp_path / "gate.yaml"
    rules.write_text(
        "metrics:\n  accuracy: {min: 0.6}\n"
        "slices:\n  columns: [region]\n  metrics:\n    accuracy: {min: 0.5}\n"
    )
    verdict = tmp_path / "v.json"
    argv = ["gate", "--candidate", str(candidate), "--rules", str(rules), "--slice-min-size", "5",
            "--verdict-file", str(verdict)]  # fmt: skip
    code_, summary = _run(argv, tmp_path)
    assert code_ == 1
    assert "Slices" in summary
    assert_inert(summary)
    report = tmp_path / "report.md"
    _run(["report", str(verdict), "--report-file", str(report), "--comment", "false"], tmp_path)
    assert_inert(report.read_text())


def test_data_check_summary_with_hostile_columns_values_and_paths(tmp_path: Path) -> None:
    frame = pd.DataFrame({name: [f"{name} {i}" for i in range(12)] for name in HOSTILE[:6]})
    frame["plan"] = [HOSTILE[i % len(HOSTILE)] for i in range(12)]
    data = tmp_path / "data @admin <h1>.parquet"
    frame.to_parquet(data)
    columns: dict[str, object] = {name: {"allowed": ["nothing"]} for name in HOSTILE[:6]}
    columns["plan"] = {"allowed": ["free"]}
    columns["<img src=x> missing"] = {"nullable": False}
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "suite", "columns": columns}))
    result = tmp_path / "result.json"
    code_, summary = _run(
        ["data", "check", str(data), "--suite", str(suite), "--result-file", str(result)], tmp_path
    )
    assert code_ == 1
    assert_inert(summary)
    report = tmp_path / "report.md"
    _run(["report", str(result), "--report-file", str(report), "--comment", "false"], tmp_path)
    assert_inert(report.read_text())


def test_drift_summary_with_hostile_names_and_levels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({HOSTILE[0]: rng.normal(size=300), HOSTILE[3]: rng.choice(["a", "b"], 300)})
    current = pd.DataFrame({HOSTILE[0]: rng.normal(3, 1, size=300), HOSTILE[3]: rng.choice(HOSTILE, 300)})
    ref, cur = tmp_path / "ref @admin.parquet", tmp_path / "cur.parquet"
    reference.to_parquet(ref)
    current.to_parquet(cur)
    verdict = tmp_path / "drift.json"
    code_, summary = _run(
        ["drift", "--reference", str(ref), "--current", str(cur), "--verdict-file", str(verdict)], tmp_path
    )
    assert code_ == 1
    assert_inert(summary)
    report = tmp_path / "report.md"
    _run(["report", str(verdict), "--report-file", str(report), "--comment", "false"], tmp_path)
    assert_inert(report.read_text())


def test_pipeline_summary_and_report_with_hostile_stage_messages(tmp_path: Path) -> None:
    from mlci_lib.pipeline.render import pipeline_markdown
    from mlci_lib.pipeline.verdict import PipelineVerdict, StageRecord

    stages = tuple(
        StageRecord(name=f"stage {i} {value}", status="failed", message=value, duration_s=1.0)
        for i, value in enumerate(HOSTILE)
    )
    verdict = PipelineVerdict(
        passed=False, status="failed", failed_stage=stages[0].name,
        git={"commit": "b" * 40, "ref": HOSTILE[3]}, data_fingerprint=None, stages=stages,
        model={"name": HOSTILE[0], "version": "1"},
    )  # fmt: skip
    assert_inert(pipeline_markdown(verdict))
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(verdict.to_dict()))
    report = tmp_path / "report.md"
    _run(["report", str(path), "--report-file", str(report), "--comment", "false"], tmp_path)
    assert_inert(report.read_text())


def test_an_error_in_the_job_summary_shows_the_path_as_text(tmp_path: Path) -> None:
    missing = tmp_path / "<img src=x onerror=alert(1)> @admin # heading from data.csv"
    code_, summary = _run(["data", "check", str(missing), "--suite", str(missing)], tmp_path)
    assert code_ == 2 and "[!CAUTION]" in summary
    assert_inert(summary)


def test_a_profile_summary_shows_the_path_as_code(tmp_path: Path) -> None:
    data = tmp_path / "t.csv"
    data.write_text("a,b\n1,x\n2,y\n")
    output = tmp_path / "`</details>` @admin.yaml"
    code_, summary = _run(["data", "profile", str(data), "-o", str(output)], tmp_path)
    assert code_ == 0
    assert_inert(summary)
