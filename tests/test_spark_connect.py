"""``--engine spark --spark-master sc://...``: real mlci commands through a Spark Connect server.

The server is pyspark's own (``sbin/start-connect-server.sh``), started by the test session on
127.0.0.1. Each command runs as a separate ``mlci`` process, as a CI job would run it: a Spark
Connect session has no SparkContext, JVM gateway or broadcast, so these are the paths a client of
a remote cluster takes. The verdicts are compared with the local engines' on the same files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.helpers.components import REPO_ROOT, SparkConnectServer

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "data"


def mlci(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci_lib", *argv],
        capture_output=True, text=True, cwd=cwd, timeout=600, check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore::FutureWarning"},
    )  # fmt: skip


def _drift_tables(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(11)

    def frame(n: int, shift: float) -> pd.DataFrame:
        x = rng.normal(shift, 1, n)
        x[rng.random(n) < 0.05] = np.nan
        return pd.DataFrame(
            {
                "x": x,
                "rating": rng.integers(1, 6, n),
                "plan": rng.choice(["free", "pro", "team"], n, p=[0.5, 0.3, 0.2]),
                "churned": rng.random(n) < 0.3,
            }
        )

    ref, cur = frame(4_000, 0.0), frame(3_000, 0.7)
    cur.loc[:30, "plan"] = "enterprise"  # a level the reference never had
    ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur"
    ref.to_parquet(ref_path)
    cur_path.mkdir()  # a folder of two files, as Spark jobs write them
    cur.iloc[:1_500].to_parquet(cur_path / "part-0.parquet")
    cur.iloc[1_500:].to_parquet(cur_path / "part-1.parquet")
    return ref_path, cur_path


@pytest.mark.spark
def test_drift_data_check_and_predict_through_spark_connect(
    spark_connect: SparkConnectServer, spark: Any, tmp_path: Path
) -> None:
    from mlci_lib.data.check import check_data
    from mlci_lib.drift.gate import detect_drift
    from mlci_lib.predict import predict_batch
    from mlci_lib.spark.drift import detect_drift_spark
    from mlci_lib.tables import read_table

    remote = ["--engine", "spark", "--spark-master", spark_connect.url]

    # drift: the verdict of the local Spark engine, number for number, and the pandas engine's.
    ref, cur = _drift_tables(tmp_path)
    verdict_file = tmp_path / "drift.json"
    done = mlci(
        [
            "drift",
            "--reference",
            str(ref),
            "--current",
            str(cur),
            *remote,
            "--verdict-file",
            str(verdict_file),
        ],
        tmp_path,
    )
    on_pandas = detect_drift(ref, cur)
    assert done.returncode == (0 if on_pandas.passed else 1), done.stderr[-2000:]
    remote_verdict = json.loads(verdict_file.read_text())
    local_verdict = detect_drift_spark(spark, ref, cur).to_dict()
    assert remote_verdict["features"] == local_verdict["features"]
    assert remote_verdict["drifted_features"] == list(on_pandas.drifted_features) == ["x"]
    assert remote_verdict["passed"] == on_pandas.passed
    by_name = {f.name: f for f in on_pandas.features}
    for feature in remote_verdict["features"]:
        want = by_name[feature["name"]]
        assert feature["reference_missing_share"] == want.reference_missing_share
        if feature["kind"] == "categorical":  # exact on Spark: every level counted
            assert feature["psi"] == want.psi and feature["chi2_p_value"] == want.chi2_p_value
            assert feature["unseen_levels"] == list(want.unseen_levels)

    # data check: GX on the Connect session's DataFrame, the same failures as the pandas engine.
    bad = tmp_path / "bad.parquet"
    read_table(FIXTURES / "customers_bad.csv", what="data").to_parquet(bad)
    suite = FIXTURES / "customers.suite.yaml"
    result_file = tmp_path / "check.json"
    argv = ["data", "check", str(bad), "--suite", str(suite), "--result-file", str(result_file)]
    # A run-time setting the client may set is taken; a static one the server keeps is refused,
    # not dropped in silence as Connect's client would.
    done = mlci([*argv, *remote, "--spark-conf", "spark.executor.memory=3g"], tmp_path)
    assert done.returncode == 2 and "--spark-conf spark.executor.memory=3g did not take" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = mlci([*argv, *remote, "--spark-conf", "spark.sql.shuffle.partitions=3"], tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    remote_check = json.loads(result_file.read_text())
    local_check = check_data(bad, suite)
    assert "on Spark" in remote_check["engine"]
    assert (remote_check["rows"], remote_check["failed"]) == (local_check.rows, local_check.failed) == (60, 4)
    assert [e["success"] for e in remote_check["expectations"]] == [
        e.success for e in local_check.expectations
    ]

    # predict: no broadcast on Connect (the model travels in the function); the same scores.
    from sklearn.linear_model import LogisticRegression

    from mlci_lib.models import save_model

    rng = np.random.default_rng(5)
    rows = pd.DataFrame({"id": np.arange(3_000), "a": rng.normal(size=3_000), "b": rng.normal(size=3_000)})
    features = rows[["a", "b"]]
    model = save_model(
        LogisticRegression().fit(features, (features["a"] + features["b"] > 0).astype(int)),
        tmp_path / "model",
        sample_input=features.head(10),
    )
    data = tmp_path / "score.parquet"
    rows.to_parquet(data)
    argv = ["predict", str(model), "--data", str(data), "--output", str(tmp_path / "scores")]
    done = mlci([*argv, "--chunk-rows", "500", *remote], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    predict_batch(model, data, tmp_path / "scores.parquet", chunk_rows=500)
    on_connect = pd.read_parquet(tmp_path / "scores").sort_values("id", ignore_index=True)
    pd.testing.assert_frame_equal(
        on_connect, pd.read_parquet(tmp_path / "scores.parquet"), check_exact=False, rtol=1e-12
    )
    assert json.loads((tmp_path / "scores" / "_mlci.json").read_text())["rows"] == 3_000


def test_a_spark_connect_url_nobody_answers_is_one_line_exit_2(tmp_path: Path) -> None:
    # Spark Connect's client retries an unreachable server for more than ten minutes; mlci asks first.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        ref = tmp_path / "ref.parquet"
        pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(ref)
        done = mlci(
            ["drift", "--reference", str(ref), "--current", str(ref), "--engine", "spark",
             "--spark-master", f"sc://127.0.0.1:{port}"],
            tmp_path,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"no Spark Connect server answers at 127.0.0.1:{port}" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
