"""actions/model-push as a workflow step through act, against a real MLflow server.

One run holds: a push refused for a failed verdict (must fail, for that reason), a push with
promotion to champion, and the same push again (same version, not created). The registry token
is a secret and must never appear in the log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.act import run_workflow
from tests.test_registry import make_model, write_verdict

pytestmark = [pytest.mark.workflow, pytest.mark.mlflow]

TOKEN = "mlflow-token-5e1f2a9b7c"

WORKFLOW = """
on: push
jobs:
  push:
    runs-on: ubuntu-latest
    env:
      MLFLOW_TRACKING_URI: {uri}
      MLFLOW_TRACKING_TOKEN: ${{{{ secrets.MLFLOW_TRACKING_TOKEN }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0
        with:
          python-version: '3.11'
      - id: refused
        continue-on-error: true
        uses: mlci-dev/mlci/actions/model-push@v1
        with:
          model: model
          name: wf-model
          verdict: verdicts/failed.json
      - id: first
        uses: mlci-dev/mlci/actions/model-push@v1
        with:
          model: model
          name: wf-model
          verdict: verdicts/passed.json
          data: data/train.csv
          pip-requirement: |
            scikit-learn
            skops
          promote-to: champion
      - id: again
        uses: mlci-dev/mlci/actions/model-push@v1
        with:
          model: model
          name: wf-model
          verdict: verdicts/passed.json
          data: data/train.csv
          pip-requirement: |
            scikit-learn
            skops
"""


def test_model_push_action_refuses_pushes_promotes_and_is_idempotent(
    act_binary: str, mlflow_server: str, tmp_path: Path
) -> None:
    model = make_model(tmp_path / "model", seed=5)
    train = tmp_path / "train.csv"
    train.write_text("a,b,c\n1,2,3\n")
    # Verdicts of this model on this data: the push compares both with what it is given.
    files: dict[str, str | bytes | Path] = {
        "model/model.skops": model / "model.skops",
        "model/mlci-model.json": model / "mlci-model.json",
        "verdicts/passed.json": write_verdict(tmp_path / "passed.json", model, data=[train]),
        "verdicts/failed.json": write_verdict(tmp_path / "failed.json", model, passed=False),
        "data/train.csv": train,
    }
    run = run_workflow(
        act_binary,
        tmp_path / "act",
        WORKFLOW.format(uri=mlflow_server),
        files=files,
        secrets={"MLFLOW_TRACKING_TOKEN": TOKEN},
    )

    assert run.outcome("refused") == "failure"
    assert any("mlci model push refused" in e and "did not pass" in e for e in run.error_lines), run.log[
        -3000:
    ]

    assert run.outcome("first") == "success", run.log[-4000:]
    first = run.outputs("first")
    assert first["pushed"] == "true" and first["created"] == "true" and first["alias"] == "champion"
    assert first["model-uri"] == f"models:/wf-model/{first['version']}"
    assert run.outcome("again") == "success"
    again = run.outputs("again")
    assert (again["version"], again["created"], again["run-id"]) == (
        first["version"],
        "false",
        first["run-id"],
    )
    assert "### mlci model push: ✅ registered" in run.summary

    assert TOKEN not in run.log

    from mlflow import MlflowClient

    registry = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    mv = registry.get_model_version_by_alias("wf-model", "champion")
    assert str(mv.version) == first["version"]
    assert mv.tags["mlci.data.fingerprint"].startswith("sha256:")
    assert len(mv.tags["mlci.git.commit"]) == 40
    assert json.loads(json.dumps(mv.tags))["mlci.verdict.passed"] == "true"
