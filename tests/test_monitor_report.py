"""The monitor verdict in Markdown: the job summary of `mlci monitor check` and `mlci report` of its file.

One renderer makes both, every value from data escaped: input names, the model's name, file
paths and category levels hold HTML, Markdown and mentions here.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB

from mlci_lib.cli import main
from mlci_lib.models import save_model
from mlci_lib.runner import CiRunner
from tests.helpers.monitoring import labels_frame, serve_and_log
from tests.test_report_escape import HOSTILE, assert_inert

pytestmark = pytest.mark.slow

NAME = "<img src=x onerror=alert(1)> @admin"
COLUMN = "a|b <h1>big</h1>"


def run(argv: list[str], tmp_path: Path) -> tuple[int, str, str]:
    summary = tmp_path / "summary.md"
    summary.unlink(missing_ok=True)
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, runner=CiRunner(env, stdout=out, stderr=err))
    return code, summary.read_text() if summary.is_file() else "", out.getvalue() + err.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitor-report @admin")
    rng = np.random.default_rng(4)

    def simulate(n: int, shift: float = 0.0) -> tuple[pd.DataFrame, Any]:
        a = rng.normal(shift, 1, n)
        frame = pd.DataFrame({COLUMN: a.round(4), "copy": (a + rng.normal(0, 0.1, n)).round(4)})
        return frame, (rng.random(n) < 1 / (1 + np.exp(-2 * a))).astype(int)

    train, y = simulate(3000)
    evaluation, y_eval = simulate(2000)
    train.assign(label=y).to_csv(root / "train.csv", index=False)
    evaluation.assign(label=y_eval).to_csv(root / "eval.csv", index=False)
    save_model(LogisticRegression().fit(train, y), root / "lr", sample_input=train.head(), name=NAME)
    save_model(GaussianNB().fit(train, y), root / "nb", sample_input=train.head(), name="nb")
    rows, labels = simulate(1500, shift=1.5)
    for model in ("lr", "nb"):
        ids = serve_and_log(root / model, rows, root / f"logs-{model}")
        labels_frame(ids, labels).to_csv(root / f"labels {HOSTILE[6]} {model}.csv", index=False)
    (root / "suite.yml").write_text(f"name: s\ncolumns:\n  '{COLUMN}': {{min: -1, max: 1}}\n")
    return root


def check_argv(folder: Path, model: str, verdict: Path) -> list[str]:
    return [
        "monitor",
        "check",
        "--logs",
        str(folder / f"logs-{model}"),
        "--reference",
        str(folder / "train.csv"),
        "--model",
        str(folder / model),
        "--evaluation",
        str(folder / "eval.csv"),
        "--suite",
        str(folder / "suite.yml"),
        "--labels",
        str(folder / f"labels {HOSTILE[6]} {model}.csv"),
        "--rule",
        "accuracy min=0.99",
        "--rule",
        "estimated_accuracy min=0.5",
        "--verdict-file",
        str(verdict),
    ]


def test_summary_and_report_are_one_escaped_rendering(folder: Path, tmp_path: Path) -> None:
    verdict = tmp_path / "monitor.json"
    code, summary, output = run(check_argv(folder, "lr", verdict), tmp_path)
    assert code == 1, output
    assert_inert(summary)
    expected_parts = (
        "### Monitor: ❌ failed",
        "accuracy min",
        "estimated\\_accuracy min",
        "Estimated performance (CBPE): valid",
        "<summary>Drift</summary>",
        "<summary>Data quality</summary>",
        "1,500 of 1,500 logged rows joined",
    )
    for expected in expected_parts:
        assert expected in summary, expected
    report = tmp_path / "report.md"
    code, _, output = run(
        ["report", str(verdict), "--report-file", str(report), "--comment", "false"], tmp_path
    )
    assert code == 0, output  # a report renders verdicts; it does not gate
    text = report.read_text()
    assert_inert(text)
    assert "failed at **monitor**" in text
    assert summary.strip() in text  # the very same section


def test_an_invalid_estimate_is_flagged_in_the_rendering(folder: Path, tmp_path: Path) -> None:
    verdict = tmp_path / "monitor.json"
    code, summary, output = run(check_argv(folder, "nb", verdict), tmp_path)
    assert code == 1, output
    assert "⚠️ **Estimated performance is not valid**: not calibrated" in summary
    assert "| estimated\\_accuracy min | – | – | ≥ 0.5000 | ❌ undefined |" in summary


def test_an_edited_verdict_is_refused_by_the_report(folder: Path, tmp_path: Path) -> None:
    verdict = tmp_path / "monitor.json"
    run(check_argv(folder, "lr", verdict), tmp_path)
    data = json.loads(verdict.read_text())
    data["passed"] = True
    data["status"] = "pass"
    verdict.write_text(json.dumps(data))
    code, _, output = run(["report", str(verdict), "--comment", "false"], tmp_path)
    assert code == 2
    assert "says passed: true" in output and "Traceback" not in output
    data["versions"][0]["rules"][0]["outcome"] = "maybe"
    verdict.write_text(json.dumps(data))
    code, _, output = run(["report", str(verdict), "--comment", "false"], tmp_path)
    assert code == 2 and "outcome must be one of" in output
