"""actions/image-build run for real through act: build, smoke, push; a broken model stops before the push."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlci_lib.models import save_model
from tests.helpers.act import run_workflow

pytestmark = [pytest.mark.workflow, pytest.mark.docker, pytest.mark.slow]

WORKFLOW = """
on: push
jobs:
  image:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0
        with:
          python-version: '3.11'
      - id: release
        uses: mlci-dev/mlci/actions/image-build@v1
        with:
          model: model
          sample-data: data/sample.csv
          repository: {registry}/mlci-act/churn
          tag: act
          base-image: {base}
          python-version: '3.11'
          push: 'true'
          requests: '10'
          username: bot
          password: act-s3cret
      - id: broken
        continue-on-error: true
        uses: mlci-dev/mlci/actions/image-build@v1
        with:
          model: broken
          sample-data: data/sample.csv
          repository: {registry}/mlci-act/broken
          tag: act
          base-image: {base}
          python-version: '3.11'
          push: 'true'
          health-timeout: '90'
"""


def _tags(registry: str, name: str) -> tuple[int, list[str]]:
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/{name}/tags/list", timeout=10) as response:
            return response.status, json.loads(response.read())["tags"]
    except urllib.error.HTTPError as exc:
        return exc.code, []


def test_image_build_action_pushes_a_smoke_tested_image_and_stops_a_broken_one(
    act_binary: str, image_registry: str, python_base_image: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"tenure": rng.integers(0, 72, 200), "charges": rng.normal(70, 20, 200).round(2)})
    good = save_model(
        LogisticRegression().fit(data, data.tenure < 20), tmp_path / "src" / "model", sample_input=data
    )
    broken = save_model(LogisticRegression(), tmp_path / "src" / "broken", sample_input=data)
    sample = tmp_path / "src" / "sample.csv"
    data.head(20).to_csv(sample, index=False)
    files: dict[str, Path | str] = {"data/sample.csv": sample}
    for folder, name in ((good, "model"), (broken, "broken")):
        for item in folder.iterdir():
            files[f"{name}/{item.name}"] = item
    workflow = WORKFLOW.replace("{registry}", image_registry).replace("{base}", python_base_image)
    run = run_workflow(act_binary, tmp_path / "act", workflow, files=files)

    assert run.outcome("release") == "success", run.log[-6000:]
    outputs = run.outputs("release")
    assert outputs["passed"] == "true"
    assert outputs["digest"].startswith("sha256:")
    assert outputs["reference"] == f"{image_registry}/mlci-act/churn@{outputs['digest']}"
    assert float(outputs["p95-ms"]) > 0
    assert _tags(image_registry, "mlci-act/churn") == (200, ["act"])
    assert "act-s3cret" not in run.log
    assert "Serving image pushed" in run.summary

    assert run.outcome("broken") == "failure"
    assert run.outputs("broken").get("passed") == "false"
    assert any("smoke test" in line and "nothing was pushed" in line for line in run.error_lines), (
        run.error_lines
    )
    assert _tags(image_registry, "mlci-act/broken")[0] == 404
