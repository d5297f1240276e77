"""actions/report as workflow steps through act, posting to the stand-in GitHub API.

One run on a pull_request event holds every case as its own step: the first report creates the
comment, the second (a rerun with more verdicts) updates the same comment, a repository the
token cannot reach gives a warning and success, and a malformed verdict fails its step.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlci_lib.cli import main
from mlci_lib.runner import CiRunner
from tests.helpers.act import run_workflow
from tests.helpers.github_api import GitHubStandIn

pytestmark = pytest.mark.workflow

TOKEN = "ghs_workflow_token_4242"


@pytest.fixture
def github_api() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as server:
        yield server


def _report_step(step_id: str, api: str, verdict: str, extra: str = "", fails: bool = False) -> str:
    return f"""
      - id: {step_id}
        uses: mlci-dev/mlci/actions/report@v1
        continue-on-error: {"true" if fails else "false"}
        with:
          verdict: {verdict}
          api-url: {api}
          repository: octo/app{extra}"""


def _workflow(api: str) -> str:
    return (
        """
on: pull_request
permissions:
  contents: read
  pull-requests: write
jobs:
  report:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0
        with:
          python-version: '3.11'"""
        + _report_step(
            "first",
            api,
            "verdicts/gate.json",
            "\n          predictions: eval/candidate.csv\n          plots-dir: plots"
            "\n          report-file: out/first.md",
        )
        + _report_step("second", api, "|\n            verdicts/gate.json\n            verdicts/drift.json")
        + _report_step("fork", api, "verdicts/gate.json", "\n          pr-number: '404'")
        + _report_step("malformed", api, "verdicts/bad.json", fails=True)
        + """
      - id: plots
        run: python3 -c "import PIL.Image as I, sys; [I.open(f).verify() for f in sys.argv[1:]]" plots/*.png
"""
    )


def _files(tmp_path: Path) -> dict[str, Path | str]:
    rng = np.random.default_rng(11)
    n = 400
    y = rng.integers(0, 2, n)
    out: dict[str, Path | str] = {}
    for name, noise in (("candidate", 0.25), ("baseline", 0.3)):
        score = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(0, noise, n), 0, 1)
        path = tmp_path / f"{name}.csv"
        frame = pd.DataFrame({"id": np.arange(n), "label": y, "prediction": (score > 0.5).astype(int)})
        frame.assign(score=score).to_csv(path, index=False)
        out[f"eval/{name}.csv"] = path
    runner = CiRunner(environ={}, stdout=io.StringIO(), stderr=io.StringIO())
    gate = tmp_path / "gate.json"
    code = main(
        ["gate", "--candidate", str(out["eval/candidate.csv"]), "--baseline", str(out["eval/baseline.csv"]),
         "--rule", "accuracy max-drop=0.05", "--resamples", "100", "--verdict-file", str(gate)],
        runner=runner,
    )  # fmt: skip
    assert code == 0
    reference = pd.DataFrame({"x": rng.normal(0, 1, n)})
    current = pd.DataFrame({"x": rng.normal(2, 1, n)})
    reference.to_csv(tmp_path / "ref.csv", index=False)
    current.to_csv(tmp_path / "cur.csv", index=False)
    drift = tmp_path / "drift.json"
    code = main(
        ["drift", "--reference", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.csv"),
         "--verdict-file", str(drift)],
        runner=runner,
    )  # fmt: skip
    assert code == 1
    out["verdicts/gate.json"] = gate
    out["verdicts/drift.json"] = drift
    out["verdicts/bad.json"] = json.dumps(
        {"schema": "mlci.gate-verdict", "schema_version": 1, "passed": "yes"}
    )
    return out


def test_report_action_comments_once_updates_on_rerun_and_fails_soft(
    act_binary: str, tmp_path: Path, github_api: GitHubStandIn
) -> None:
    github_api.token = TOKEN
    github_api.missing.add("octo/app#404")
    payload = {
        "action": "synchronize",
        "number": 7,
        "pull_request": {"number": 7, "head": {"ref": "feature"}},
    }
    run = run_workflow(
        act_binary,
        tmp_path / "act",
        _workflow(github_api.url),
        files=_files(tmp_path),
        secrets={"GITHUB_TOKEN": TOKEN},
        event="pull_request",
        payload=payload,
    )

    first, second = run.outputs("first"), run.outputs("second")
    assert run.outcome("first") == "success", run.log[-3000:]
    assert first["comment-action"] == "created" and first["passed"] == "true"
    assert first["report-file"] == "out/first.md" and first["plots-dir"] == "plots"
    assert run.outcome("second") == "success"
    assert second["comment-action"] == "updated" and second["comment-id"] == first["comment-id"]
    assert second["passed"] == "false"

    comments = github_api.comments("octo/app", 7)
    assert len(comments) == 1, comments
    body = comments[0]["body"]
    assert str(comments[0]["id"]) == first["comment-id"] and comments[0]["html_url"] == second["comment-url"]
    assert body.startswith("<!-- mlci-report:default -->\n## ❌ mlci: failed at **drift**")
    assert "| accuracy max-drop |" in body and "### Drift: ❌" in body

    assert run.outcome("fork") == "success"
    assert run.outputs("fork")["comment-action"] == "skipped"
    assert "::warning title=mlci report%3A no PR comment::GitHub answered 404" in run.log, run.log[-3000:]

    assert run.outcome("malformed") == "failure"
    assert any("verdict file verdicts/bad.json: passed must be true/false" in e for e in run.error_lines), (
        run.log
    )
    assert run.outcome("plots") == "success"

    assert "## ✅ mlci: passed" in run.summary and "## ❌ mlci: failed at **drift**" in run.summary
    assert TOKEN not in run.log
    # Every request carried the workflow's token, and nothing was sent without it.
    assert {r.authorization for r in github_api.requests} == {f"Bearer {TOKEN}"}
