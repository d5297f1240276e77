"""The monitor starter workflow end to end through act, on a copy of the example project.

It runs twice, as two scheduled days with the same drifted data: both runs fail at the drift
step, the report step opens the drift issue on the first run and edits the same issue on the
second. Only GitHub's REST API is a local stand-in; the report step is pointed at it.

The example's ``recent.csv`` drifts in three of eight columns, under the default gate (half of
the features), so the test shifts two more columns to be sure the gate fails.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlci_lib.demo import example_source
from tests.helpers.act import run_workflow
from tests.helpers.components import REPO_ROOT
from tests.helpers.github_api import GitHubStandIn

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

MONITOR = REPO_ROOT / "mlci_lib" / "templates" / "github" / "monitor.yml"
TOKEN = "ghs_e2e_monitor_5678"
REPO = "octo/app"


def project_files(tmp_path: Path) -> dict[str, str | bytes | Path]:
    source = example_source()
    skip = {"model", ".mlci", "predictions.csv", "__pycache__", "mlci-report.md"}
    files: dict[str, str | bytes | Path] = {
        str(path.relative_to(source)): path
        for path in sorted(source.rglob("*"))
        if path.is_file() and not skip.intersection(path.relative_to(source).parts)
    }
    recent = pd.read_csv(source / "data" / "recent.csv")
    recent["age"] = recent["age"] + 15
    recent["debt_ratio"] = (recent["debt_ratio"] * 1.8).clip(upper=1.0).round(4)
    drifted = tmp_path / "recent.csv"
    recent.to_csv(drifted, index=False)
    files["data/recent.csv"] = drifted
    return files


def monitor_workflow(api: str) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as true; put the name back before the harness serializes it.
    workflow = {("on" if k is True else k): v for k, v in yaml.safe_load(MONITOR.read_text()).items()}
    reports = [
        step
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if "actions/report@" in str(step.get("uses"))
    ]
    assert len(reports) == 1, "the monitor template should report once"
    reports[0]["with"].update({"api-url": api, "repository": REPO})
    return workflow


def test_monitor_opens_one_drift_issue_and_updates_it(act_binary: str, tmp_path: Path) -> None:
    files = project_files(tmp_path)
    timings = []
    with GitHubStandIn() as github:
        github.token = TOKEN
        workflow = monitor_workflow(github.url)
        for day in (1, 2):
            started = time.monotonic()
            run = run_workflow(
                act_binary,
                tmp_path / f"day-{day}",
                workflow,
                files=files,
                secrets={"GITHUB_TOKEN": TOKEN},
                event="workflow_dispatch",
            )
            timings.append(time.monotonic() - started)
            assert run.returncode != 0, run.log[-6000:]
            assert run.outcome("drift", "drift") == "failure", run.log[-6000:]
            assert run.outputs("drift", "drift")["passed"] == "false"
            assert run.outcome("report", "drift") == "success", run.log[-6000:]
            outputs = run.outputs("report", "drift")
            assert outputs["passed"] == "false"
            assert outputs["issue-action"] == ("created" if day == 1 else "updated"), run.log[-6000:]
            assert outputs["issue-number"] == "1"
            assert outputs["issue-url"] == f"https://github.com/{REPO}/issues/1"
            assert outputs["comment-action"] == "skipped"
            assert "## ❌ mlci monitor: failed at **drift**" in run.summary, run.summary
            assert "| feature | method | statistic |" in run.summary
        issues = github.issues(REPO)
        posts = [r for r in github.requests if r.method == "POST" and r.path != "/graphql"]
    assert len(issues) == 1 and len(posts) == 1, issues
    (issue,) = issues
    assert issue["state"] == "open" and issue["title"] == "mlci: data drift detected"
    assert issue["labels"] == [{"name": "drift"}]
    body = issue["body"]
    assert body.startswith("<!-- mlci-issue:drift -->\n## ❌ mlci monitor: failed at **drift**"), body[:300]
    assert "| feature | method | statistic | threshold | severity | drifted |" in body
    for feature in ("age", "income", "debt_ratio", "region"):
        assert f"| `{feature}` | psi |" in body, feature
    # Row ids are not features: the template's ignore list keeps them out of the drift gate.
    assert "| `id` |" not in body
    assert all(r.authorization == f"Bearer {TOKEN}" for r in github.requests)
    print(f"monitor runs took {timings[0]:.1f} s and {timings[1]:.1f} s")
