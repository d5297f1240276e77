"""`mlci monitor check`: drift of the rows a running server logged, against the training reference."""

from __future__ import annotations

import http.client
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import Ridge

from mlci_lib.cli import main
from mlci_lib.models import save_model
from mlci_lib.runner import CiRunner
from mlci_lib.serving import ModelServer
from mlci_lib.serving.prediction_log import LogSettings


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, runner=CiRunner({}, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    n = 2000
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "charges": rng.normal(70, 20, n).round(2),
            "plan": rng.choice(["basic", "plus", "max"], n),
        }
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, train: pd.DataFrame) -> Path:
    folder = tmp_path_factory.mktemp("monitor-check")
    train.to_csv(folder / "train.csv", index=False)
    numeric = train[["tenure", "charges"]]
    y = np.where(numeric.tenure < 12, "churn", np.where(numeric.charges > 90, "risk", "stay"))
    clf = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(numeric, y)
    save_model(clf, folder / "churn", sample_input=numeric.head(), name="churn")
    save_model(
        Ridge().fit(numeric, numeric.charges), folder / "bill", sample_input=numeric.head(), name="bill"
    )
    return folder


def serve_and_log(model: Path, rows: pd.DataFrame, folder: Path) -> None:
    with ModelServer(model, prediction_log=LogSettings(directory=folder, max_rows=400)) as server:
        server.wait_ready(60)
        host, port = server.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        records: list[dict[str, Any]] = rows[["tenure", "charges"]].to_dict("records")
        for start in range(0, len(records), 20):
            connection.request("POST", "/predict", json.dumps({"rows": records[start : start + 20]}).encode())
            response = connection.getresponse()
            response.read()
            assert response.status == 200
        connection.close()


def check(models: Path, logs: Path, *extra: str, model: str = "churn") -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli(
        ["--json", "monitor", "check", "--logs", str(logs), "--reference", str(models / "train.csv"),
         "--model", str(models / model), *extra]
    )  # fmt: skip
    return code, (json.loads(out) if out.strip() else {}), err


@pytest.mark.slow
def test_traffic_like_the_reference_passes(models: Path, train: pd.DataFrame, tmp_path: Path) -> None:
    serve_and_log(models / "churn", train.sample(1000, random_state=0), tmp_path / "logs")
    code, verdict, err = check(models, tmp_path / "logs", "--window", "1h")
    assert code == 0, err
    assert verdict["schema"] == "mlci.monitor-verdict"
    assert verdict["rows"] == 1000
    assert verdict["drift"]["drifted_features"] == []
    assert verdict["drift"]["prediction"]["drifted"] is False
    # Without --evaluation there is no calibration check, so no estimate: the verdict says so.
    assert any(
        item.startswith("estimated performance (needs --evaluation") for item in verdict["not_checked"]
    )


@pytest.mark.slow
def test_drifted_inputs_and_predictions_fail(models: Path, train: pd.DataFrame, tmp_path: Path) -> None:
    drifted = train.sample(1000, random_state=1).assign(tenure=lambda f: f.tenure % 12)  # all new customers
    serve_and_log(models / "churn", drifted, tmp_path / "logs")
    code, verdict, err = check(models, tmp_path / "logs")
    assert code == 1, err
    assert verdict["drift"]["drifted_features"] == ["tenure"]
    assert verdict["drift"]["prediction"]["drifted"] is True
    assert verdict["passed"] is False


@pytest.mark.slow
def test_an_empty_window_is_a_failed_verdict_saying_so(
    models: Path, train: pd.DataFrame, tmp_path: Path
) -> None:
    serve_and_log(models / "churn", train.head(40), tmp_path / "logs")
    code, verdict, _ = check(models, tmp_path / "logs", "--until", "2000-01-01T00:00:00Z", "--window", "24h")
    assert code == 1
    assert verdict["rows"] == 0
    assert "no logged row in the window" in verdict["reasons"][0]


@pytest.mark.slow
def test_logs_of_another_model_are_refused(models: Path, train: pd.DataFrame, tmp_path: Path) -> None:
    serve_and_log(models / "bill", train.head(40), tmp_path / "logs")
    code, _, err = check(models, tmp_path / "logs")
    assert code == 2
    assert "holds rows of another model" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("logs", "extra", "message"),
    [
        ("empty", [], "no closed prediction log file"),
        ("missing", [], "does not exist"),
        ("empty", ["--window", "soon"], "--window"),
        ("empty", ["--until", "yesterday"], "--until"),
    ],
    ids=["no-files", "missing", "window", "until"],
)
@pytest.mark.slow
def test_bad_input_is_a_one_line_error(
    models: Path, tmp_path: Path, logs: str, extra: list[str], message: str
) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = check(models, tmp_path / logs, *extra)
    assert code == 2, err
    assert message in err and "Traceback" not in err
