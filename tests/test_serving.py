"""The serving runtime over real HTTP on loopback: predictions, validation, limits, health, metrics."""

from __future__ import annotations

import http.client
import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from mlci_lib.cli import main
from mlci_lib.errors import ModelLoadError, UnsafeModelError
from mlci_lib.models import load_model, save_model
from mlci_lib.runner import CiRunner
from mlci_lib.serving import ModelServer
from tests.helpers.components import free_port, wait_until

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]


def _features(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "charges": rng.normal(70, 20, n).round(2),
            "calls": rng.poisson(2, n),
        }
    )


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _features()


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory, data: pd.DataFrame) -> Path:
    y = np.where(data.tenure < 12, "churn", np.where(data.calls > 3, "risk", "stay"))
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(data, y)
    return save_model(model, tmp_path_factory.mktemp("clf") / "model", sample_input=data.head(), name="churn")


@pytest.fixture(scope="module")
def regressor_dir(tmp_path_factory: pytest.TempPathFactory, data: pd.DataFrame) -> Path:
    y = data.charges * 2 + data.calls
    model = LinearRegression().fit(data, y)
    return save_model(model, tmp_path_factory.mktemp("reg") / "model", sample_input=data.head(), name="bill")


@pytest.fixture(scope="module")
def server(classifier_dir: Path) -> Iterator[ModelServer]:
    with ModelServer(classifier_dir, max_body_bytes=200_000, request_timeout=1.0) as running:
        running.wait_ready(60)
        yield running


def request(
    server: ModelServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, body, headers or {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def predict(server: ModelServer, payload: object) -> tuple[int, dict]:
    status, _, body = request(server, "POST", "/predict", json.dumps(payload).encode())
    return status, json.loads(body)


# -- predictions ------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["records", "rows", "columns", "dataframe_split", "dataframe_records"])
def test_every_payload_shape_gives_the_in_process_predictions(
    server: ModelServer, classifier_dir: Path, data: pd.DataFrame, shape: str
) -> None:
    rows = data.iloc[:40]
    payload = {
        "records": rows.to_dict("records"),
        "rows": {"rows": rows.to_dict("records")},
        "columns": {"columns": rows.to_dict("list")},
        "dataframe_split": {
            "dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}
        },
        "dataframe_records": {"dataframe_records": rows.to_dict("records")},
    }[shape]
    status, answer = predict(server, json.loads(json.dumps(payload, default=int)))
    assert status == 200, answer
    expected, proba = load_model(classifier_dir).predict(rows)
    assert answer["predictions"] == expected.tolist()
    assert answer["classes"] == ["churn", "risk", "stay"]
    np.testing.assert_array_equal(np.array(answer["probabilities"]), proba)  # bit-identical over JSON


def test_regressor_predictions_and_extra_columns_are_ignored(regressor_dir: Path, data: pd.DataFrame) -> None:
    rows = data.iloc[:5].assign(unused="x")
    with ModelServer(regressor_dir) as running:
        running.wait_ready(60)
        status, answer = predict(running, {"rows": rows.to_dict("records")})
        # A missing value passes the signature, but LinearRegression refuses NaN: 422, not 500.
        refused = predict(running, {"rows": [{"tenure": None, "charges": 2, "calls": 1}]})
    assert refused[0] == 422
    assert "could not predict" in refused[1]["error"]
    assert status == 200, answer
    expected, _ = load_model(regressor_dir).predict(rows)
    assert answer["predictions"] == expected.tolist()
    assert "probabilities" not in answer


def test_concurrent_clients_each_get_their_own_answer(server: ModelServer, data: pd.DataFrame) -> None:
    expected, _ = load_model(server.model_path).predict(data)
    errors: list[str] = []

    def client(start: int) -> None:
        for i in range(start, start + 10):
            status, answer = predict(server, {"rows": [data.iloc[i].to_dict()]})
            if status != 200 or answer["predictions"] != [expected[i]]:
                errors.append(f"row {i}: {status} {answer}")

    threads = [threading.Thread(target=client, args=(k * 10,)) for k in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []


# -- bad requests -----------------------------------------------------------------------------

BAD_BODIES = [
    pytest.param(b"", 400, "empty request body", id="empty-body"),
    pytest.param(b"{not json", 400, "not valid JSON", id="not-json"),
    pytest.param(
        b'{"rows": [{"tenure": NaN, "charges": 1, "calls": 1}]}', 400, "NaN is not a JSON value", id="nan"
    ),
    pytest.param(b'"a string"', 400, "JSON object or array", id="scalar-body"),
    pytest.param(b'{"foo": 1}', 400, "unknown request shape", id="unknown-shape"),
    pytest.param(b'{"instances": [[1, 2, 3]]}', 400, "tensor inputs are not supported", id="tensor"),
    pytest.param(b'{"rows": []}', 400, "non-empty list", id="no-rows"),
    pytest.param(b'{"rows": [1, 2]}', 400, "row 1 is not a JSON object", id="row-not-object"),
    pytest.param(
        b'{"rows": [{"tenure": 1, "charges": 2}]}', 400, "missing column 'calls'", id="missing-column"
    ),
    pytest.param(
        b'{"rows": [{"tenure": 1, "charges": "; rm -rf /", "calls": 1}]}',
        400,
        "column 'charges' must be numeric",
        id="text-in-numeric-column",
    ),
    pytest.param(
        b'{"rows": [{"tenure": 1.5, "charges": 2, "calls": 1}]}',
        400,
        "must hold whole numbers",
        id="fraction-in-int",
    ),
    pytest.param(
        b'{"rows": [{"tenure": [1], "charges": 2, "calls": 1}]}', 400, "nested values", id="nested-value"
    ),
    pytest.param(b'{"columns": {"tenure": [1, 2], "charges": [1]}}', 400, "same length", id="ragged-columns"),
    pytest.param(
        b'{"dataframe_split": {"columns": ["tenure"], "data": [[1, 2]]}}',
        400,
        "list of 1 values",
        id="ragged-split",
    ),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_BODIES)
def test_bad_requests_get_a_clear_4xx(server: ModelServer, body: bytes, status: int, message: str) -> None:
    got, _, answer = request(server, "POST", "/predict", body)
    assert got == status, answer
    assert message in json.loads(answer)["error"]


def test_body_over_the_limit_is_413_and_the_server_keeps_serving(
    server: ModelServer, data: pd.DataFrame
) -> None:
    big = json.dumps({"rows": [{"tenure": 1, "charges": 2.0, "calls": 1, "pad": "x" * 1000}] * 300}).encode()
    status, headers, answer = request(server, "POST", "/predict", big)
    assert status == 413
    assert "limit is 200000" in json.loads(answer)["error"]
    assert headers.get("Connection") == "close"
    assert predict(server, {"rows": data.iloc[:1].to_dict("records")})[0] == 200


def test_missing_content_length_is_411(server: ModelServer) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 411")


def test_a_client_that_stalls_is_cut_off_by_the_request_timeout(server: ModelServer) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        started = time.monotonic()
        data = sock.recv(4096)  # the server gives up on the body after request_timeout (1 s)
        waited = time.monotonic() - started
    assert data == b""
    assert waited < 8


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("GET", "/predict", 405), ("POST", "/health", 404)],
    ids=["unknown-path", "get-predict", "post-health"],
)
def test_wrong_endpoints(server: ModelServer, method: str, path: str, status: int) -> None:
    got, _, _ = request(server, method, path, b"{}" if method == "POST" else None)
    assert got == status


# -- health, version, metrics ------------------------------------------------------------------


def test_health_and_version(server: ModelServer, classifier_dir: Path) -> None:
    status, _, body = request(server, "GET", "/health")
    assert (status, json.loads(body)) == (200, {"status": "ready"})
    status, _, body = request(server, "GET", "/version")
    info = json.loads(body)
    assert status == 200
    assert info["model"]["name"] == "churn"
    assert info["model"]["digest"] == load_model(classifier_dir).digest
    assert info["model"]["task"] == "classification"


_SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.e+Inf-]+$'
)


def _metrics(server: ModelServer) -> dict[str, float]:
    status, headers, body = request(server, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    values = {}
    for line in body.decode().splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* ", line), line
            continue
        assert _SAMPLE.match(line), f"not Prometheus text format: {line!r}"
        name, value = line.rsplit(" ", 1)
        values[_sample_key(name)] = float(value)
    return values


def _sample_key(text: str) -> str:
    """A sample's name and labels, the labels sorted: their order on the page carries no meaning."""
    name, _, labels = text.partition("{")
    if not labels:
        return name
    pairs = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels)
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(pairs)) + "}"


def test_metrics_count_requests_classes_and_features(server: ModelServer, data: pd.DataFrame) -> None:
    before = _metrics(server)
    rows = data.iloc[100:110]
    status, answer = predict(server, {"rows": rows.to_dict("records")})
    assert status == 200
    request(server, "POST", "/predict", b"{bad")
    after = _metrics(server)

    def delta(name: str) -> float:
        return after.get(_sample_key(name), 0.0) - before.get(_sample_key(name), 0.0)

    assert delta('mlci_requests_total{endpoint="/predict",code="200"}') == 1
    assert delta('mlci_requests_total{endpoint="/predict",code="400"}') == 1
    assert delta("mlci_request_duration_seconds_count") == 2
    assert delta("mlci_predicted_rows_total") == 10
    for label in set(answer["predictions"]):
        assert delta(f'mlci_predictions_total{{class="{label}"}}') == answer["predictions"].count(label)
    assert delta('mlci_input_feature_count{feature="tenure"}') == 10
    assert delta('mlci_input_feature_sum{feature="charges"}') == pytest.approx(rows.charges.sum())
    assert (
        after[_sample_key('mlci_request_duration_seconds_bucket{le="+Inf"}')]
        == after["mlci_request_duration_seconds_count"]
    )


# -- models that must not serve --------------------------------------------------------------


def test_a_pickle_model_is_refused_and_health_says_why(tmp_path: Path, data: pd.DataFrame) -> None:
    import joblib

    path = tmp_path / "model.pkl"
    joblib.dump(LogisticRegression().fit(data, data.calls > 2), path)
    running = ModelServer(path).start()
    try:
        with pytest.raises(UnsafeModelError, match="pickle"):
            running.wait_ready(30)
        status, _, body = request(running, "GET", "/health")
        assert status == 503
        assert json.loads(body)["status"] == "failed"
        assert predict(running, {"rows": data.iloc[:1].to_dict("records")})[0] == 503
    finally:
        running.stop()


def test_an_unfitted_model_fails_its_warm_up(tmp_path: Path, data: pd.DataFrame) -> None:
    folder = save_model(LogisticRegression(), tmp_path / "unfitted", sample_input=data.head())
    with ModelServer(folder) as running, pytest.raises(ModelLoadError, match="warm-up"):
        running.wait_ready(30)


# -- the command ------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    code = main(argv, runner=CiRunner({}, stdout=io.StringIO(), stderr=err))
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "missing-model"], "does not exist"),
        (["serve", "{model}", "--port", "http"], "--port must be a whole number"),
        (["serve", "{model}", "--port", "70000"], "from 1 to 65535"),
        (["serve", "{model}", "--max-body-bytes", "0"], "--max-body-bytes must be a whole number above 0"),
        (["serve", "{model}", "--info", "{missing}"], "does not exist"),
        (["serve", "{model}", "--warmup-data", "{empty}"], "is empty"),
        (["serve", "{model}", "--trust-type", "os.system;"], "not a dotted Python name"),
    ],
    ids=[
        "no-model",
        "port-text",
        "port-range",
        "zero-body-limit",
        "missing-info",
        "empty-warmup",
        "bad-trust-type",
    ],
)
def test_serve_bad_input_exits_2(tmp_path: Path, classifier_dir: Path, argv: list[str], message: str) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    filled = [a.format(model=classifier_dir, missing=tmp_path / "nope.json", empty=empty) for a in argv]
    code, err = run_cli([*filled, "--port", str(free_port())] if "--port" not in filled else filled)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_mlci_serve_runs_until_sigterm(tmp_path: Path, classifier_dir: Path, data: pd.DataFrame) -> None:
    port = free_port()
    warmup = tmp_path / "warmup.csv"
    data.head(3).to_csv(warmup, index=False)
    log = tmp_path / "serve.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlci_lib",
                "serve",
                str(classifier_dir),
                "--port",
                str(port),
                "--warmup-data",
                str(warmup),
                "--model-version",
                "7",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    try:

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                return sock.recv(100).startswith(b"HTTP/1.1 200")

        wait_until(ready, 60, "mlci serve", log)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/version")
        assert json.loads(connection.getresponse().read())["model"]["version"] == "7"
        connection.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert "stopped by SIGTERM" in log.read_text()


FAST = [{"tenure": 3, "charges": 2, "calls": 1}, {"calls": 0, "tenure": 70, "charges": 99.5, "extra": "x"}]


@pytest.mark.parametrize(
    ("payload", "fast"),
    [
        (FAST, True),
        ({"rows": FAST}, True),
        ({"columns": {"tenure": [3, 70], "charges": [2, 99.5], "calls": [1, 0]}}, True),
        (
            {
                "dataframe_split": {
                    "columns": ["calls", "charges", "tenure"],
                    "data": [[1, 2, 3], [0, 99.5, 70]],
                }
            },
            True,
        ),
        ([{"tenure": 3.0, "charges": 2, "calls": 1}], True),  # a whole float in an integer column
        ([{"tenure": 3.5, "charges": 2, "calls": 1}], False),  # not whole: the general path refuses it
        ([{"tenure": None, "charges": 2, "calls": 1}], False),
        ([{"tenure": "3", "charges": 2, "calls": 1}], False),
        ([{"tenure": True, "charges": 2, "calls": 1}], False),
        ([{"tenure": 3, "charges": 2}], False),
        ({"dataframe_split": {"columns": ["tenure", "tenure", "calls"], "data": [[1, 2, 3]]}}, False),
    ],
    ids=[
        "list",
        "rows",
        "columns",
        "split-reordered",
        "whole-float",
        "fraction",
        "null",
        "text",
        "bool",
        "missing",
        "duplicate-column",
    ],
)
def test_the_numeric_fast_path_answers_exactly_as_the_general_path(
    classifier_dir: Path, payload: object, fast: bool
) -> None:
    from mlci_lib.serving import ModelService
    from mlci_lib.serving.payload import rows_to_frame

    model = load_model(classifier_dir)
    service = ModelService(model)
    assert (service.numeric_matrix(payload) is not None) == fast
    status, answer = service.predict_body(json.dumps(payload).encode())
    try:
        general = service.predict_frame(rows_to_frame(payload), observe=False)
    except Exception as exc:  # the general path refuses it: so must the served answer
        assert status in (400, 422), (status, answer, exc)
        return
    assert (status, answer) == (200, general)
