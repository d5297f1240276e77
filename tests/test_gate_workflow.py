"""actions/metric-gate as a workflow step through act: pass, fail, and inconclusive under each policy.

One workflow run holds every case as its own step (the ones that must fail with
``continue-on-error``), so the test pays for act once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlci_lib.gate import run_gate
from tests.helpers.act import run_workflow

pytestmark = pytest.mark.workflow


def _gate_step(step_id: str, candidate: str, rule: str, policy: str, fails: bool) -> str:
    return f"""
      - id: {step_id}
        uses: mlci-dev/mlci/actions/metric-gate@v1
        continue-on-error: {"true" if fails else "false"}
        with:
          candidate: {candidate}
          baseline: eval/baseline.csv
          rule: '{rule}'
          on-inconclusive: {policy}
          resamples: '500'
          verdict-file: out/{step_id}.json"""


WORKFLOW = (
    """
on: push
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0
        with:
          python-version: '3.11'"""
    + _gate_step("passing", "eval/better.csv", "accuracy max-drop=0.01", "fail", fails=False)
    + _gate_step("failing", "eval/worse.csv", "accuracy max-drop=0.01", "warn", fails=True)
    + _gate_step("unsure-fail", "eval/same.csv", "accuracy max-drop=0", "fail", fails=True)
    + _gate_step("unsure-warn", "eval/same.csv", "accuracy max-drop=0", "warn", fails=False)
    + _gate_step("unsure-pass", "eval/same.csv", "accuracy max-drop=0", "pass", fails=False)
    + "\n"
)


def _files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(42)
    n = 1000
    y = rng.integers(0, 2, n)
    base_right = rng.random(n) < 0.80

    def frame(right: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"id": np.arange(n), "label": y, "prediction": np.where(right, y, 1 - y)})

    better = base_right | (rng.random(n) < 0.5)  # fixes half of the baseline's errors
    worse = base_right & (rng.random(n) < 0.85)  # breaks 15% of its right answers
    same = base_right.copy()  # swaps 30 right answers for 30 wrong ones: no real change
    flip_on = rng.choice(np.flatnonzero(base_right), 30, replace=False)
    flip_off = rng.choice(np.flatnonzero(~base_right), 30, replace=False)
    same[flip_on], same[flip_off] = False, True
    out = {}
    for name, right in (("baseline", base_right), ("better", better), ("worse", worse), ("same", same)):
        path = tmp_path / f"{name}.csv"
        frame(right).to_csv(path, index=False)
        out[f"eval/{name}.csv"] = path
    return out


def test_metric_gate_action_pass_fail_and_inconclusive(act_binary: str, tmp_path: Path) -> None:
    files = _files(tmp_path)
    # The "same" candidate must be inconclusive in-process too, or the workflow test proves nothing.
    probe = run_gate(
        str(files["eval/same.csv"]), str(files["eval/baseline.csv"]), rule=["accuracy max-drop=0"]
    )
    assert probe.rules[0].outcome == "inconclusive"

    run = run_workflow(act_binary, tmp_path / "act", WORKFLOW, files=files)

    assert run.outcome("passing") == "success"
    assert run.outputs("passing")["passed"] == "true"
    assert run.outputs("passing")["verdict-file"] == "out/passing.json"
    assert "| accuracy max-drop |" in run.outputs("passing")["summary"]

    assert run.outcome("failing") == "failure"
    assert any("accuracy max-drop failed::accuracy max-drop: change -" in e for e in run.error_lines), run.log

    assert run.outcome("unsure-fail") == "failure"
    assert any("::error title=mlci gate%3A accuracy max-drop inconclusive::" in e for e in run.error_lines)
    assert run.outcome("unsure-warn") == "success"
    assert run.outputs("unsure-warn")["passed"] == "true"
    assert "::warning title=mlci gate%3A accuracy max-drop inconclusive::" in run.log
    assert run.outcome("unsure-pass") == "success"
    assert run.outputs("unsure-pass")["passed"] == "true"

    # The job summary holds every gate's table, the failing one with its failing rule.
    assert "### mlci gate: ✅ passed" in run.summary, run.summary
    assert "❌ failed" in run.summary and "⚠️ passed with warnings" in run.summary
    assert "❌ fail |" in run.summary and "⚠️ inconclusive |" in run.summary
