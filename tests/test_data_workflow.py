"""The data-check and drift-check actions, run for real through act."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers.act import run_workflow

pytestmark = pytest.mark.workflow

FIXTURES = Path(__file__).parent / "fixtures" / "data"
SETUP_PYTHON = """
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0
        with:
          python-version: '3.11'
"""

DATA_WORKFLOW = (
    """
on: push
jobs:
  data:
    runs-on: ubuntu-latest
    steps:
"""
    + SETUP_PYTHON
    + """
      - id: good
        uses: mlci-dev/mlci/actions/data-check@v1
        with:
          data: data/customers.csv
          suite: data/customers.suite.yaml
          result-file: out/good.json
      - id: bad
        continue-on-error: true
        uses: mlci-dev/mlci/actions/data-check@v1
        with:
          data: data/customers_bad.csv
          suite: data/customers.suite.yaml
      - id: malformed
        continue-on-error: true
        uses: mlci-dev/mlci/actions/data-check@v1
        with:
          data: data/customers.csv
          suite: data/broken.json
      - id: after
        run: echo "good=$(head -c 200 out/good.json | tr -d '\\n ')" >> "$GITHUB_OUTPUT"
"""
)


def test_data_check_action_passes_fails_and_rejects(act_binary: str, tmp_path: Path) -> None:
    files = {
        "data/customers.csv": FIXTURES / "customers.csv",
        "data/customers_bad.csv": FIXTURES / "customers_bad.csv",
        "data/customers.suite.yaml": FIXTURES / "customers.suite.yaml",
        "data/broken.json": '{"expectations": [{"type": "expect_the_unexpected", "kwargs": {}}]}',
    }
    run = run_workflow(act_binary, tmp_path, DATA_WORKFLOW, files=files)
    assert run.outcome("good") == "success", run.log[-4000:]
    assert run.outputs("good") == {
        "passed": "true",
        "evaluated": "19",
        "failed": "0",
        "result-file": "out/good.json",
    }
    assert '"schema":"mlci.data-check"' in run.outputs("after")["good"]

    assert run.outcome("bad") == "failure"
    assert run.outputs("bad")["passed"] == "false" and run.outputs("bad")["failed"] == "4"
    assert "### mlci data check: ❌ 4 of 19 expectations failed" in run.summary
    assert "`'enterprise'`" in run.summary
    errors = run.error_lines
    assert any("expect_column_values_to_be_in_set on column 'plan' failed" in e for e in errors), errors

    assert run.outcome("malformed") == "failure"
    assert any("unknown type 'expect_the_unexpected'" in e for e in errors), errors
    assert "exit status 2" in run.log


DRIFT_WORKFLOW = (
    """
on: push
jobs:
  drift:
    runs-on: ubuntu-latest
    steps:
"""
    + SETUP_PYTHON
    + """
      - id: same
        uses: mlci-dev/mlci/actions/drift-check@v1
        with:
          reference: data/reference.parquet
          current: data/same.csv
          verdict-file: out/same.json
          feature: |
            age=ks:0.001
            plan=chi2
      - id: drifted
        continue-on-error: true
        uses: mlci-dev/mlci/actions/drift-check@v1
        with:
          reference: data/reference.parquet
          current: data/drifted.parquet
          max-drift-share: '0.25'
      - id: malformed
        continue-on-error: true
        uses: mlci-dev/mlci/actions/drift-check@v1
        with:
          reference: data/reference.parquet
          current: data/other-columns.csv
"""
)


def _frame(seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 2000
    return pd.DataFrame(
        {
            "age": rng.normal(40 + 10 * shift, 10, n).round(),
            "income": rng.lognormal(10 + shift, 0.5, n),
            "plan": rng.choice(["free", "pro", "team"], n, p=[0.5 - 0.3 * shift, 0.3, 0.2 + 0.3 * shift]),
            "visits": rng.poisson(3, n),
        }
    )


def test_drift_check_action_passes_fails_and_rejects(act_binary: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _frame(1, 0.0).to_parquet(data / "reference.parquet")
    _frame(2, 0.0).to_csv(data / "same.csv", index=False)
    _frame(3, 1.0).to_parquet(data / "drifted.parquet")
    _frame(4, 0.0).rename(columns={"age": "age_years"}).to_csv(data / "other-columns.csv", index=False)
    files = {f"data/{p.name}": p for p in data.iterdir()}
    run = run_workflow(act_binary, tmp_path / "run", DRIFT_WORKFLOW, files=files)

    assert run.outcome("same") == "success", run.log[-4000:]
    assert run.outputs("same") == {
        "passed": "true",
        "drift-share": "0.0000",
        "drifted-features": "",
        "verdict-file": "out/same.json",
    }
    assert run.outcome("drifted") == "failure"
    outputs = run.outputs("drifted")
    assert outputs["passed"] == "false"
    assert set(outputs["drifted-features"].split(",")) == {"age", "income", "plan"}
    assert "3 of 4 features drifted" in run.summary
    assert any("3 of 4 features drifted" in e and "more than the allowed" in e for e in run.error_lines)

    assert run.outcome("malformed") == "failure"
    assert any("have different columns" in e for e in run.error_lines), run.error_lines
    assert "exit status 2" in run.log
