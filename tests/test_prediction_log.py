"""Prediction logs and /metrics of the serving runtime, over real HTTP on loopback.

What a logged row holds, request ids, rotation into complete files only, sampling, a full queue
and a full disk (both counted, neither fails a request), standard output for log shippers, the
command's options, and every metric name the hand-written exposition had.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression

from mlci_lib.cli import main
from mlci_lib.models import load_model, save_model
from mlci_lib.runner import CiRunner
from mlci_lib.serving import ModelServer
from mlci_lib.serving.prediction_log import LogSettings, log_files, read_prediction_logs
from tests.helpers.components import free_port, wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, 300),
            "charges": rng.normal(70, 20, 300).round(2),
            "plan": rng.choice(["basic", "plus"], 300),
        }
    )


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory, data: pd.DataFrame) -> Path:
    numeric = data[["tenure", "charges"]]
    y = np.where(numeric.tenure < 12, "churn", np.where(numeric.charges > 90, "risk", "stay"))
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(numeric, y)
    return save_model(
        model, tmp_path_factory.mktemp("clf") / "model", sample_input=numeric.head(), name="churn"
    )


@pytest.fixture(scope="module")
def regressor_dir(tmp_path_factory: pytest.TempPathFactory, data: pd.DataFrame) -> Path:
    numeric = data[["tenure", "charges"]]
    model = LinearRegression().fit(numeric, numeric.charges * 2 + numeric.tenure)
    return save_model(
        model, tmp_path_factory.mktemp("reg") / "model", sample_input=numeric.head(), name="bill"
    )


def post(url: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], dict]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", "/predict", json.dumps(body).encode(), headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        connection.close()


def metrics(url: str) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    values = {}
    for family in text_string_to_metric_families(text):  # the official parser: valid exposition
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


@pytest.fixture
def logged(classifier_dir: Path, tmp_path: Path) -> Iterator[tuple[ModelServer, Path]]:
    folder = tmp_path / "logs"
    with ModelServer(classifier_dir, prediction_log=LogSettings(directory=folder, max_rows=7)) as server:
        server.wait_ready(60)
        yield server, folder


# -- rows, ids, rotation ----------------------------------------------------------------------


@pytest.mark.slow
def test_each_logged_row_holds_id_time_model_inputs_prediction_and_probabilities(
    logged: tuple[ModelServer, Path], classifier_dir: Path, data: pd.DataFrame
) -> None:
    server, folder = logged
    rows = data[["tenure", "charges"]].iloc[:3]
    status, headers, answer = post(
        server.url, {"rows": rows.to_dict("records")}, {"X-Request-Id": "order-42"}
    )
    assert status == 200
    assert headers["X-Request-Id"] == "order-42"
    # the general path (a text column the signature drops is refused, so: dataframe_split)
    split = {
        "dataframe_split": {
            "columns": ["charges", "tenure"],
            "data": rows[["charges", "tenure"]].values.tolist(),
        }
    }
    assert post(server.url, split, {"X-Request-Id": "order-43"})[0] == 200
    server.stop()
    logs = read_prediction_logs(log_files([folder]))
    mine = logs[logs.request_id == "order-42"].sort_values("row")
    assert list(mine.row) == [0, 1, 2]
    assert set(mine["model.digest"]) == {load_model(classifier_dir).digest}
    assert set(mine["model.name"]) == {"churn"}
    assert list(mine["inputs.tenure"]) == list(rows.tenure)
    assert all(type(v) is int for v in mine["inputs.tenure"].tolist())  # an integer column stays one
    assert list(mine["inputs.charges"]) == list(rows.charges)
    assert list(mine.prediction) == answer["predictions"]
    for i, probabilities in enumerate(answer["probabilities"]):
        for label, p in zip(answer["classes"], probabilities, strict=True):
            assert mine[f"probabilities.{label}"].iloc[i] == pytest.approx(p)
    stamps = pd.to_datetime(mine.timestamp, utc=True)
    assert (abs(stamps - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=5)).all()
    assert len(logs[logs.request_id == "order-43"]) == 3


@pytest.mark.parametrize(
    "sent",
    [None, "", "has space", "x" * 129, "tab\there", "ünïcode"],
    ids=["none", "empty", "space", "long", "tab", "unicode"],
)
@pytest.mark.slow
def test_a_missing_or_strange_request_id_is_replaced_by_a_new_one(
    logged: tuple[ModelServer, Path], sent: str | None
) -> None:
    server, _ = logged
    headers = {} if sent is None else {"X-Request-Id": sent.encode("utf-8").decode("latin-1")}
    status, answer_headers, _ = post(server.url, {"rows": [{"tenure": 1, "charges": 2.0}]}, headers)
    assert status == 200
    assert re.fullmatch(r"[0-9a-f]{32}", answer_headers["X-Request-Id"])


def test_refused_requests_carry_their_request_id_too(logged: tuple[ModelServer, Path]) -> None:
    server, _ = logged
    status, headers, _ = post(server.url, {"rows": [{"tenure": "many"}]}, {"X-Request-Id": "bad-1"})
    assert status == 400
    assert headers["X-Request-Id"] == "bad-1"


def test_files_rotate_by_rows_and_only_complete_files_are_visible(logged: tuple[ModelServer, Path]) -> None:
    server, folder = logged
    for i in range(10):
        post(server.url, {"rows": [{"tenure": i, "charges": 1.0}, {"tenure": i, "charges": 2.0}]})
    wait_until(lambda: len(log_files([folder])) >= 2, 10, "two rotated log files")
    # while serving: every visible file is complete JSON Lines; the open one is hidden
    for file in log_files([folder]):
        lines = file.read_text().splitlines()
        assert len(lines) == 7  # --log-max-rows, exactly, however the writer batches
        assert all(json.loads(line)["model"]["name"] == "churn" for line in lines)
    server.stop()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "a temporary file was left behind"
    assert len(read_prediction_logs(log_files([folder]))) == 20


def test_files_rotate_by_size(classifier_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    with ModelServer(classifier_dir, prediction_log=LogSettings(directory=folder, max_bytes=1000)) as server:
        server.wait_ready(60)
        assert post(server.url, {"rows": [{"tenure": i, "charges": 1.5} for i in range(30)]})[0] == 200
    files = log_files([folder])
    assert len(files) >= 3
    for file in files:
        lines = file.read_text().splitlines(keepends=True)
        assert sum(map(len, lines[:-1])) < 1000 <= sum(map(len, lines)) or file == files[-1]
    assert len(read_prediction_logs(files)) == 30


@pytest.mark.slow
def test_files_rotate_by_age_without_more_traffic(classifier_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    settings = LogSettings(directory=folder, max_seconds=0.5)
    with ModelServer(classifier_dir, prediction_log=settings) as server:
        server.wait_ready(60)
        post(server.url, {"rows": [{"tenure": 3, "charges": 1.0}]})
        wait_until(lambda: len(log_files([folder])) == 1, 10, "a log file closed by age")
        assert metrics(server.url)["mlci_prediction_log_written_rows_total"] == 1


def test_parquet_logs_hold_the_same_rows(classifier_dir: Path, tmp_path: Path, data: pd.DataFrame) -> None:
    folder = tmp_path / "logs"
    rows = data[["tenure", "charges"]].iloc[:4].to_dict("records")
    with ModelServer(
        classifier_dir, prediction_log=LogSettings(directory=folder, format="parquet")
    ) as server:
        server.wait_ready(60)
        _, _, answer = post(server.url, {"rows": rows}, {"X-Request-Id": "pq"})
    files = log_files([folder])
    assert [f.suffix for f in files] == [".parquet"]
    logs = read_prediction_logs(files)
    assert list(logs.prediction) == answer["predictions"]
    assert list(logs["inputs.charges"]) == [r["charges"] for r in rows]


def test_a_regressor_logs_predictions_without_probabilities(regressor_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    with ModelServer(regressor_dir, prediction_log=LogSettings(directory=folder)) as server:
        server.wait_ready(60)
        _, _, answer = post(server.url, {"rows": [{"tenure": 3, "charges": 10.0}]})
    logs = read_prediction_logs(log_files([folder]))
    assert list(logs.prediction) == pytest.approx(answer["predictions"])
    assert not [c for c in logs.columns if c.startswith("probabilities")]


@pytest.mark.parametrize(("rate", "low", "high"), [(0.0, 0, 0), (0.5, 120, 280), (1.0, 400, 400)])
@pytest.mark.slow
def test_the_sample_rate_logs_that_share_of_rows(
    classifier_dir: Path, tmp_path: Path, rate: float, low: int, high: int
) -> None:
    folder = tmp_path / "logs"
    rows = [{"tenure": i % 70, "charges": float(i)} for i in range(100)]
    with ModelServer(
        classifier_dir, prediction_log=LogSettings(directory=folder, sample_rate=rate)
    ) as server:
        server.wait_ready(60)
        for _ in range(4):
            assert post(server.url, {"rows": rows})[0] == 200
    logged = len(read_prediction_logs(log_files([folder]))) if log_files([folder]) else 0
    assert low <= logged <= high  # binomial(400, 0.5): 120..280 is beyond 8 standard deviations


# -- dropped rows: counted, never a failed request ------------------------------------------------


def test_a_full_queue_drops_and_counts_rows_and_the_request_still_succeeds(
    classifier_dir: Path, tmp_path: Path
) -> None:
    settings = LogSettings(directory=tmp_path / "logs", queue_rows=3)
    with ModelServer(classifier_dir, prediction_log=settings) as server:
        server.wait_ready(60)
        status, _, answer = post(server.url, {"rows": [{"tenure": i, "charges": 1.0} for i in range(5)]})
        assert status == 200 and len(answer["predictions"]) == 5
        values = metrics(server.url)
    assert values['mlci_prediction_log_dropped_rows_total{reason="queue_full"}'] == 5
    assert values['mlci_prediction_log_dropped_rows_total{reason="write_error"}'] == 0


def _serve(argv: list[str], **kwargs: object) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlci_lib", "serve", *argv, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
        **kwargs,  # type: ignore[arg-type]
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        host, p = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(p), timeout=2)
        connection.request("GET", "/health")
        return connection.getresponse().status == 200

    wait_until(ready, 60, "mlci serve")
    return process, url


def _limit_file_size() -> None:
    # The kernel refuses writes past 2 KiB in every file (EFBIG): a disk that fills up.
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


@pytest.mark.slow
def test_a_full_disk_stops_logging_counted_and_never_serving(classifier_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    process, url = _serve([str(classifier_dir), "--log-dir", str(folder)], preexec_fn=_limit_file_size)
    try:
        for i in range(60):
            status, _, _ = post(url, {"rows": [{"tenure": i % 70, "charges": 1.5 * k} for k in range(5)]})
            assert status == 200, "serving failed while the log folder was full"
            time.sleep(0.01)
        wait_until(
            lambda: metrics(url)['mlci_prediction_log_dropped_rows_total{reason="write_error"}'] > 0,
            10,
            "counted write errors",
        )
        assert post(url, {"rows": [{"tenure": 1, "charges": 1.0}]})[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err.decode()
    assert "prediction log: cannot write" in err.decode()
    assert "Traceback" not in err.decode()


@pytest.mark.slow
def test_log_stdout_writes_json_lines_for_a_log_shipper(classifier_dir: Path) -> None:
    process, url = _serve([str(classifier_dir), "--log-stdout"])
    try:
        for i in range(3):
            assert (
                post(url, {"rows": [{"tenure": i, "charges": 1.0}]}, {"X-Request-Id": f"ship-{i}"})[0] == 200
            )
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert [line["request_id"] for line in lines] == ["ship-0", "ship-1", "ship-2"]
    assert all(line["model"]["name"] == "churn" and "probabilities" in line for line in lines)


# -- the command's options ----------------------------------------------------------------------


def run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    code = main(argv, runner=CiRunner({}, stdout=io.StringIO(), stderr=err))
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--log-stdout", "--log-dir", "x"], "--log-dir and --log-stdout"),
        (["--log-dir", "x", "--log-sample-rate", "2"], "--log-sample-rate"),
        (["--log-dir", "x", "--log-format", "xml"], "--log-format"),
        (["--log-stdout", "--log-format", "parquet"], "JSON lines"),
        (["--log-dir", "x", "--log-max-rows", "0"], "--log-max-rows"),
        (["--log-dir", "FILE"], "not writable"),
    ],
    ids=["both", "rate", "format", "stdout-parquet", "rows", "unwritable"],
)
def test_bad_log_options_are_one_line_errors(
    classifier_dir: Path, tmp_path: Path, options: list[str], message: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    options = [
        str(blocker / "logs") if o == "FILE" else (str(tmp_path / o) if o == "x" else o) for o in options
    ]
    code, err = run_cli(["serve", str(classifier_dir), "--port", str(free_port()), *options])
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# -- /metrics through prometheus_client --------------------------------------------------------

#: Every sample name the hand-written exposition had (before prometheus_client).
OLD_NAMES = {
    "mlci_requests_total",
    "mlci_request_duration_seconds_bucket",
    "mlci_request_duration_seconds_sum",
    "mlci_request_duration_seconds_count",
    "mlci_predicted_rows_total",
    "mlci_predictions_total",
    "mlci_input_feature_count",
    "mlci_input_feature_sum",
    "mlci_input_feature_sum_squares",
    "mlci_input_feature_min",
    "mlci_input_feature_max",
}
REGRESSION_NAMES = {"mlci_prediction_value_sum", "mlci_prediction_value_count"}


def _names(values: dict[str, float]) -> set[str]:
    return {key.partition("{")[0] for key in values}


def test_every_old_metric_name_is_still_exposed(classifier_dir: Path, regressor_dir: Path) -> None:
    for model, names in (
        (classifier_dir, OLD_NAMES),
        (regressor_dir, (OLD_NAMES - {"mlci_predictions_total"}) | REGRESSION_NAMES),
    ):
        with ModelServer(model) as server:
            server.wait_ready(60)
            assert (
                post(server.url, {"rows": [{"tenure": 5, "charges": 3.5}, {"tenure": 50, "charges": 99.0}]})[
                    0
                ]
                == 200
            )
            values = metrics(server.url)
        assert names <= _names(values), names - _names(values)
        assert values["mlci_predicted_rows_total"] == 2
        assert values['mlci_input_feature_min{feature="charges"}'] == 3.5
        assert values['mlci_input_feature_max{feature="tenure"}'] == 50
        assert values['mlci_input_feature_sum_squares{feature="tenure"}'] == 25 + 2500
        assert values['mlci_prediction_log_dropped_rows_total{reason="queue_full"}'] == 0


def test_every_class_is_exposed_before_it_is_predicted(classifier_dir: Path) -> None:
    with ModelServer(classifier_dir) as server:
        server.wait_ready(60)
        values = metrics(server.url)
    assert {k for k in values if k.startswith("mlci_predictions_total")} == {
        f'mlci_predictions_total{{class="{c}"}}' for c in ("churn", "risk", "stay")
    }


@pytest.mark.slow
def test_counts_folded_per_batch_equal_the_rows_sent(classifier_dir: Path) -> None:
    # more requests than one fold holds, from several connections at once
    import concurrent.futures

    from mlci_lib.serving.metrics import FOLD_EVERY

    with ModelServer(classifier_dir) as server:
        server.wait_ready(60)
        sent = FOLD_EVERY + 37

        def one(i: int) -> str:
            return str(
                post(server.url, {"rows": [{"tenure": i % 72, "charges": float(i)}]})[2]["predictions"][0]
            )

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            labels = list(pool.map(one, range(sent)))
        values = metrics(server.url)
    assert values["mlci_predicted_rows_total"] == sent
    assert values['mlci_input_feature_sum{feature="charges"}'] == sum(float(i) for i in range(sent))
    for label in set(labels):
        assert values[f'mlci_predictions_total{{class="{label}"}}'] == labels.count(label)


def test_two_services_in_one_process_keep_their_own_counts(classifier_dir: Path) -> None:
    with ModelServer(classifier_dir) as one, ModelServer(classifier_dir) as two:
        one.wait_ready(60)
        two.wait_ready(60)
        post(one.url, {"rows": [{"tenure": 1, "charges": 1.0}]})
        assert metrics(one.url)["mlci_predicted_rows_total"] == 1
        assert metrics(two.url)["mlci_predicted_rows_total"] == 0
