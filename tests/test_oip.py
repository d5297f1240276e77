"""The Open Inference Protocol (v2) and the OpenAPI document, against the real runtime on loopback.

The client is the real one, ``tritonclient.http`` (geventhttpclient underneath), with its defaults:
binary tensor data in both directions unless a test turns it off. Every answer is compared with
``POST /predict`` on the same rows of the same server.
"""

from __future__ import annotations

import ast
import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mlci_lib.models import save_model
from mlci_lib.serving import ModelServer
from mlci_lib.serving.routes import ROUTES, openapi_document, route_template
from tests.helpers.components import require

try:
    import tritonclient.http as tritonhttp
    from tritonclient.utils import InferenceServerException
except ImportError:  # pragma: no cover - a dev dependency; the fixture below says so
    tritonhttp = None
    InferenceServerException = Exception


@pytest.fixture(autouse=True)
def _client_installed() -> None:
    require(tritonhttp is not None, "tritonclient", "pip install 'tritonclient[http]'")


REPO_ROOT = Path(__file__).resolve().parents[1]


def _rows(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "charges": rng.normal(70, 20, n).round(2),
            "calls": rng.poisson(2, n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "paperless": rng.random(n) < 0.5,
        }
    )


NUMERIC = ["tenure", "charges", "calls"]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _rows()


@pytest.fixture(scope="module")
def mixed_dir(tmp_path_factory: pytest.TempPathFactory, data: pd.DataFrame) -> Path:
    """A classifier with string labels over numeric, text and boolean columns."""
    labels = np.where(data.tenure < 12, "churn", np.where(data.plan == "pro", "upsell", "stay"))
    encode = ColumnTransformer(
        [("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"])], remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=500)).fit(data, labels)
    folder = tmp_path_factory.mktemp("mixed") / "model"
    return save_model(model, folder, sample_input=data.head(20), name="churn")


@pytest.fixture(scope="module")
def numeric_dir(tmp_path_factory: pytest.TempPathFactory, data: pd.DataFrame) -> Path:
    frame = data[NUMERIC]
    labels = np.where(frame.tenure < 12, "churn", np.where(frame.calls > 3, "risk", "stay"))
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(frame, labels)
    return save_model(model, tmp_path_factory.mktemp("num") / "model", sample_input=frame.head(), name="risk")


@pytest.fixture(scope="module")
def regressor_dir(tmp_path_factory: pytest.TempPathFactory, data: pd.DataFrame) -> Path:
    frame = data[NUMERIC]
    model = LinearRegression().fit(frame, frame.charges * 2 + frame.calls)
    return save_model(model, tmp_path_factory.mktemp("reg") / "model", sample_input=frame.head(), name="bill")


@pytest.fixture(scope="module")
def mixed(mixed_dir: Path) -> Iterator[ModelServer]:
    with ModelServer(mixed_dir, info={"version": "7"}, max_body_bytes=200_000, max_columns=50) as running:
        running.wait_ready(60)
        yield running


@pytest.fixture(scope="module")
def numeric(numeric_dir: Path) -> Iterator[ModelServer]:
    with ModelServer(numeric_dir) as running:
        running.wait_ready(60)
        yield running


@pytest.fixture(scope="module")
def regressor(regressor_dir: Path) -> Iterator[ModelServer]:
    with ModelServer(regressor_dir) as running:
        running.wait_ready(60)
        yield running


def client(server: ModelServer) -> Any:
    return tritonhttp.InferenceServerClient(server.url.removeprefix("http://"), network_timeout=20)


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
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def post_json(server: ModelServer, path: str, payload: Any) -> tuple[int, Any]:
    status, _, body = request(server, "POST", path, json.dumps(payload).encode())
    return status, json.loads(body)


def records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as JSON records, every float exact (``DataFrame.to_json`` rounds to 10 digits)."""
    exact = json.dumps(rows.to_dict(orient="records"), default=lambda v: v.item())
    return json.loads(exact)  # type: ignore[no-any-return]


def predict(server: ModelServer, rows: pd.DataFrame) -> dict[str, Any]:
    status, answer = post_json(server, "/predict", {"rows": records(rows)})
    assert status == 200, answer
    return answer  # type: ignore[no-any-return]


_DATATYPE = {"i": "INT64", "f": "FP64", "b": "BOOL", "O": "BYTES"}


def column_inputs(rows: pd.DataFrame, binary: bool = True) -> list[Any]:
    inputs = []
    for name in rows.columns:
        values = rows[name].to_numpy()
        if values.dtype.kind not in "ifb":
            values = values.astype(object)  # text: a numpy object array, as tritonclient wants
        tensor = tritonhttp.InferInput(name, [len(rows)], _DATATYPE[values.dtype.kind])
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def _text(array: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else v for v in array.tolist()]


# -- health and metadata -----------------------------------------------------------------------


def test_health_readiness_and_metadata_through_the_client(mixed: ModelServer) -> None:
    triton = client(mixed)
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("churn") and triton.is_model_ready("churn", "7")
    assert not triton.is_model_ready("other") and not triton.is_model_ready("churn", "8")
    server = triton.get_server_metadata()
    assert server["name"] == "mlci" and "binary_tensor_data" in server["extensions"]
    for version in ("", "7"):
        meta = triton.get_model_metadata("churn", version)
        assert meta["name"] == "churn" and meta["versions"] == ["7"] and meta["platform"] == "sklearn"
        assert meta["inputs"] == [
            {"name": "tenure", "datatype": "INT64", "shape": [-1]},
            {"name": "charges", "datatype": "FP64", "shape": [-1]},
            {"name": "calls", "datatype": "INT64", "shape": [-1]},
            {"name": "plan", "datatype": "BYTES", "shape": [-1]},
            {"name": "paperless", "datatype": "BOOL", "shape": [-1]},
        ]
        assert meta["outputs"] == [
            {"name": "predict", "datatype": "BYTES", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
            {"name": "classes", "datatype": "BYTES", "shape": [3]},
        ]
    with pytest.raises(InferenceServerException) as unknown:
        triton.get_model_metadata("other")
    assert unknown.value.status() == "404" and "unknown model 'other'" in unknown.value.message()
    with pytest.raises(InferenceServerException) as version:
        triton.get_model_metadata("churn", "8")
    assert version.value.status() == "404" and "unknown version '8'" in version.value.message()


def test_readiness_before_the_model_has_loaded() -> None:
    from mlci_lib.serving.http_server import Request
    from mlci_lib.serving.oip import Route, answer

    ready = answer(None, Route("ready", "m"), Request("GET", "/v2/models/m/ready", {}, b""), "loading")
    infer = answer(None, Route("infer", "m"), Request("POST", "/v2/models/m/infer", {}, b"{}"), "loading")
    assert (ready.status, json.loads(ready.body)["ready"]) == (400, False)
    assert (infer.status, json.loads(infer.body)) == (503, {"error": "loading"})


# -- inference equals /predict -----------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_per_column_tensors_give_the_predictions_of_predict(
    mixed: ModelServer, data: pd.DataFrame, binary: bool
) -> None:
    rows = data.iloc[:60]
    expected = predict(mixed, rows)
    outputs = None
    if not binary:
        outputs = [
            tritonhttp.InferRequestedOutput(n, binary_data=False) for n in ("predict", "predict_proba")
        ]
    result = client(mixed).infer("churn", column_inputs(rows, binary), request_id="req-1", outputs=outputs)
    response = result.get_response()
    assert (
        response["id"] == "req-1" and response["model_name"] == "churn" and response["model_version"] == "7"
    )
    assert _text(result.as_numpy("predict")) == expected["predictions"]
    np.testing.assert_array_equal(result.as_numpy("predict_proba"), np.array(expected["probabilities"]))
    if binary:
        assert _text(result.as_numpy("classes")) == expected["classes"] == ["churn", "stay", "upsell"]
    else:
        assert [o["name"] for o in response["outputs"]] == ["predict", "predict_proba"]


@pytest.mark.slow
def test_a_two_dimensional_fp64_tensor_follows_the_signature_order(
    numeric: ModelServer, regressor: ModelServer, data: pd.DataFrame
) -> None:
    rows = data[NUMERIC].iloc[:50]
    for server, name in ((numeric, "risk"), (regressor, "bill")):
        expected = predict(server, rows)
        for binary in (True, False):
            tensor = tritonhttp.InferInput("input", list(rows.shape), "FP64")
            tensor.set_data_from_numpy(rows.to_numpy(dtype="float64"), binary_data=binary)
            result = client(server).infer(name, [tensor])
            got = result.as_numpy("predict")
            if name == "bill":
                assert got.dtype == np.float64 and got.tolist() == expected["predictions"]
                assert result.as_numpy("predict_proba") is None
            else:
                assert _text(got) == expected["predictions"]
                np.testing.assert_array_equal(result.as_numpy("predict_proba"), expected["probabilities"])
    # The regressor's columns one by one, as INT64 and FP64 tensors: the same numbers.
    result = client(regressor).infer("bill", column_inputs(rows))
    assert result.as_numpy("predict").tolist() == predict(regressor, rows)["predictions"]


def test_nested_json_data_and_parameters_are_read_as_the_protocol_says(
    numeric: ModelServer, data: pd.DataFrame
) -> None:
    rows = data[NUMERIC].iloc[:4]
    body = {
        "id": "nested",
        "parameters": {"priority": 1, "custom": "ignored"},
        "inputs": [
            {
                "name": "matrix",
                "shape": [4, 3],
                "datatype": "FP64",
                "parameters": {"content_type": "np"},
                "data": rows.to_numpy(dtype="float64").tolist(),
            }
        ],
        "outputs": [{"name": "predict"}],
    }
    status, answer = post_json(numeric, "/v2/models/risk/infer", body)
    assert status == 200, answer
    assert answer["id"] == "nested"
    assert answer["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [4], "data": predict(numeric, rows)["predictions"]}
    ]


@pytest.mark.slow
def test_an_onnx_runtime_answers_infer_like_its_predict(tmp_path: Path, data: pd.DataFrame) -> None:
    frame = data[["charges", "calls"]].astype("float64")
    folder = save_model(
        HistGradientBoostingRegressor(max_iter=30).fit(frame, frame.charges * 2),
        tmp_path / "m",
        sample_input=frame,
    )
    sample = tmp_path / "sample.csv"
    frame.head(50).to_csv(sample, index=False)
    with ModelServer(folder, runtime="onnx", warmup_data=sample) as server:
        service = server.wait_ready(60)
        assert service.model.framework == "onnx"
        triton = client(server)
        meta = triton.get_model_metadata("m")
        assert meta["platform"] == "onnxruntime_onnx"
        rows = frame.iloc[:30]
        tensor = tritonhttp.InferInput("input", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows.to_numpy())
        got = triton.infer("m", [tensor]).as_numpy("predict")
        assert got.tolist() == predict(server, rows)["predictions"]


# -- refusals ---------------------------------------------------------------------------------


def _infer_error(server: ModelServer, name: str, inputs: list[Any]) -> tuple[str, str]:
    with pytest.raises(InferenceServerException) as refused:
        client(server).infer(name, inputs)
    return str(refused.value.status()), refused.value.message()


def test_bad_tensors_give_the_servers_one_line_message(mixed: ModelServer, data: pd.DataFrame) -> None:
    rows = data.iloc[:3]
    good = column_inputs(rows)

    text_for_number = tritonhttp.InferInput("tenure", [3], "BYTES")
    text_for_number.set_data_from_numpy(np.array(["1", "2", "3"], dtype=object))
    assert _infer_error(mixed, "churn", [text_for_number, *good[1:]]) == (
        "400",
        "input 'tenure' is BYTES, the model takes INT64 for it (see GET /v2/models/churn)",
    )
    short = column_inputs(rows.iloc[:2])[0].set_shape([3])
    status, message = _infer_error(mixed, "churn", [short, *good[1:]])
    assert status == "400" and message.startswith(
        "input 'tenure': 16 bytes of binary data, its shape needs 3"
    )
    unknown = tritonhttp.InferInput("age", [3], "FP64").set_data_from_numpy(np.zeros(3))
    assert _infer_error(mixed, "churn", [*good, unknown]) == (
        "400",
        "unknown input 'age': the model's inputs are tenure, charges, calls, plan, paperless",
    )
    status, message = _infer_error(mixed, "churn", good[:4])
    assert status == "400" and message.startswith("missing input 'paperless': the model's inputs are tenure")
    assert _infer_error(mixed, "other", good)[0] == "404"
    fewer = column_inputs(rows.iloc[:2])[1]
    status, message = _infer_error(mixed, "churn", [good[0], fewer, *good[2:]])
    assert (status, message) == ("400", "input 'charges' has 2 rows, the inputs before it 3")
    two_d = tritonhttp.InferInput("x", [3, 5], "FP64").set_data_from_numpy(np.zeros((3, 5)))
    assert _infer_error(mixed, "churn", [two_d])[1].startswith(
        "input 'x': this model's columns differ in kind"
    )


def test_values_are_checked_by_the_same_signature_coercion_as_predict(
    mixed: ModelServer, data: pd.DataFrame
) -> None:
    rows = data.iloc[:2]
    fraction = tritonhttp.InferInput("tenure", [2], "FP64").set_data_from_numpy(np.array([3.0, 1.5]))
    status, message = _infer_error(mixed, "churn", [fraction, *column_inputs(rows)[1:]])
    expected = post_json(mixed, "/predict", {"rows": records(rows.assign(tenure=[3.0, 1.5]))})
    assert (int(status), message) == (expected[0], expected[1]["error"])
    assert "must hold whole numbers, row 2 is 1.5" in message


_BINARY_HEAD = (
    b'{"inputs": [{"name": "tenure", "shape": [1], "datatype": "INT64", '
    b'"parameters": {"binary_data_size": 8}}]}'
)


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"[1]", {}, 400, "an inference request is a JSON object"),
        (b'{"inputs": []}', {}, 400, '"inputs": a non-empty list'),
        (
            b'{"inputs": [{"name": "tenure", "shape": [2], "datatype": "FP128", "data": [1, 2]}]}',
            {},
            400,
            "FP128",
        ),
        (
            b'{"inputs": [{"name": "tenure", "shape": [2], "datatype": "INT64", "data": [1]}]}',
            {},
            400,
            "needs 2",
        ),
        (
            b'{"inputs": [{"name": "tenure", "shape": [2], "datatype": "INT8", "data": [1, 300]}]}',
            {},
            400,
            "INT8",
        ),
        (
            b'{"inputs": [{"name": "plan", "shape": [1], "datatype": "BYTES", "data": [7]}]}',
            {},
            400,
            "value 1",
        ),
        (
            b'{"inputs": [{"name": "m", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3]]}]}',
            {},
            400,
            "nested data must be 2 lists of 2 values",
        ),
        (
            _BINARY_HEAD + b"\0" * 4,
            {"Inference-Header-Content-Length": str(len(_BINARY_HEAD))},
            400,
            "binary_data_size 8 does not fit the 4 bytes",
        ),
        (
            _BINARY_HEAD + b"\0" * 12,
            {"Inference-Header-Content-Length": str(len(_BINARY_HEAD))},
            400,
            "4 bytes after the tensors' binary data",
        ),
        (b'{"inputs": 1}', {"Inference-Header-Content-Length": "99"}, 400, "within the body's 13 bytes"),
        (b'{"inputs": 1}', {"Content-Encoding": "gzip"}, 400, "compressed request bodies"),
        (b"{" + b'"id": 5, "inputs": []}', {}, 400, "id must be a string"),
    ],
    ids=[
        "not-object",
        "no-inputs",
        "datatype",
        "length",
        "range",
        "text-cell",
        "ragged",
        "binary-size",
        "binary-extra",
        "header-length",
        "gzip",
        "id",
    ],
)
def test_malformed_requests_are_400_with_one_line(
    mixed: ModelServer, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    code, answer_headers, raw = request(mixed, "POST", "/v2/models/churn/infer", body, headers or None)
    assert code == status and answer_headers["content-type"] == "application/json"
    error = json.loads(raw)["error"]
    assert message in error and "\n" not in error


def test_the_transport_and_width_limits_hold_for_infer(mixed: ModelServer) -> None:
    wide = {"inputs": [{"name": f"c{i}", "shape": [1], "datatype": "FP64", "data": [0]} for i in range(51)]}
    status, answer = post_json(mixed, "/v2/models/churn/infer", wide)
    assert status == 400 and "51 inputs, more than the limit of 50 columns" in answer["error"]
    matrix = {"inputs": [{"name": "m", "shape": [1, 51], "datatype": "FP64", "data": [0] * 51}]}
    status, answer = post_json(mixed, "/v2/models/churn/infer", matrix)
    assert status == 400 and "51 columns, more than the limit of 50" in answer["error"]
    big = (
        b'{"inputs": [{"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["'
        + b"x" * 300_000
        + b'"]}]}'
    )
    status, _, raw = request(mixed, "POST", "/v2/models/churn/infer", big)
    assert status == 413 and "limit is 200000" in json.loads(raw)["error"]
    status, _, raw = request(mixed, "GET", "/v2/models/churn/infer")
    assert status == 405 and "use POST" in json.loads(raw)["error"]


def test_metrics_count_protocol_requests_by_route_not_by_name(mixed: ModelServer) -> None:
    request(mixed, "POST", "/v2/models/some-unknown-name/infer", b"{}")
    _, _, raw = request(mixed, "GET", "/metrics")
    text = raw.decode()
    # prometheus_client orders labels as it likes: look for both, in either order.
    assert any(
        'endpoint="/v2/models/{model_name}/infer"' in line and 'code="404"' in line
        for line in text.splitlines()
        if line.startswith("mlci_requests_total")
    ), text
    assert "some-unknown-name" not in text


# -- the OpenAPI document ----------------------------------------------------------------------


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}", "components": document["components"]}


@pytest.mark.slow
def test_the_openapi_document_is_valid_and_describes_real_bodies(
    mixed: ModelServer, data: pd.DataFrame
) -> None:
    import jsonschema
    from openapi_spec_validator import validate

    status, headers, raw = request(mixed, "GET", "/openapi.json")
    assert status == 200 and headers["content-type"] == "application/json"
    document = json.loads(raw)
    assert document == openapi_document() and document["openapi"] == "3.1.0"
    validate(document)
    rows = data.iloc[:3]
    check = jsonschema.Draft202012Validator

    # What the real client sends (JSON form) and what the server answers match the document.
    body, _ = tritonhttp.InferenceServerClient.generate_request_body(
        column_inputs(rows, binary=False), request_id="x"
    )
    check(_schema(document, "InferenceRequest")).validate(json.loads(body))
    # It asks for binary outputs: the JSON part is what the header says, the tensors follow it.
    status, headers, raw = request(mixed, "POST", "/v2/models/churn/infer", body)
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    answer = json.loads(raw[: int(headers["inference-header-content-length"])])
    check(_schema(document, "InferenceResponse")).validate(answer)
    assert all("data" not in output for output in answer["outputs"])
    payload = {"rows": records(rows)}
    check(_schema(document, "PredictRequest")).validate(payload)
    check(_schema(document, "PredictResponse")).validate(post_json(mixed, "/predict", payload)[1])
    for path, name in [
        ("/health", "Health"),
        ("/version", "Version"),
        ("/v2", "ServerMetadata"),
        ("/v2/models/churn", "ModelMetadata"),
        ("/v2/models/churn/ready", "ModelReady"),
        ("/v2/health/live", "Live"),
        ("/v2/health/ready", "Ready"),
        ("/v2/models/nope", "Error"),
    ]:
        check(_schema(document, name)).validate(json.loads(request(mixed, "GET", path)[2]))


def _concrete(path: str) -> str:
    return path.replace("{model_name}", "churn").replace("{model_version}", "7")


def test_every_documented_route_is_answered_and_every_answered_route_is_documented(
    mixed: ModelServer,
) -> None:
    document = openapi_document()
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert documented == {(e.method, e.path) for e in ROUTES}
    infer = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [0]}]}).encode()
    for method, path in sorted(documented):
        body = infer if method == "POST" else None
        status, _, _ = request(mixed, method, _concrete(path), body)
        assert str(status) in document["paths"][path][method.lower()]["responses"], (method, path, status)
        assert status not in (404, 405), (method, path, status)
        for other in {"GET", "POST"} - {m for m, p in documented if p == path}:
            refused, _, raw = request(mixed, other, _concrete(path), b"{}" if other == "POST" else None)
            assert refused in (404, 405) and "not served" in json.loads(raw)["error"], (other, path)
    # The other way round: every path the server's code names is a documented route.
    source = (REPO_ROOT / "mlci_lib" / "serving" / "server.py").read_text()
    named = {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"/[a-z0-9/._]*", node.value)
    }
    assert named and all(route_template(path) is not None for path in named), named - {
        p for p in named if route_template(p)
    }
    for path in ("/", "/v2/models", "/v2/models/churn/explain", "/v2/models/churn/versions/7/x", "/openapi"):
        assert route_template(path) is None
        assert request(mixed, "GET", path)[0] == 404, path


def test_models_without_a_signature_take_their_fitted_columns_or_one_matrix(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    named = save_model(LinearRegression().fit(frame, frame.a - frame.b), tmp_path / "named", name="named")
    bare = save_model(LinearRegression().fit(frame.to_numpy(), frame.a), tmp_path / "bare", name="bare")
    rows = frame.iloc[:5]
    with ModelServer(named) as first, ModelServer(bare) as second:
        first.wait_ready(60)
        second.wait_ready(60)
        meta = client(first).get_model_metadata("named")
        assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [("a", "FP64"), ("b", "FP64")]
        got = client(first).infer("named", column_inputs(rows)).as_numpy("predict")
        assert got.tolist() == predict(first, rows)["predictions"]
        meta = client(second).get_model_metadata("bare")
        assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 2]}]
        tensor = tritonhttp.InferInput("input", [5, 2], "FP64").set_data_from_numpy(rows.to_numpy())
        got = client(second).infer("bare", [tensor]).as_numpy("predict")
        np.testing.assert_allclose(
            got, LinearRegression().fit(frame.to_numpy(), frame.a).predict(rows.to_numpy())
        )
        wrong = tritonhttp.InferInput("input", [5, 1], "FP64").set_data_from_numpy(rows.to_numpy()[:, :1])
        assert _infer_error(second, "bare", [wrong]) == (
            "400",
            "input 'input' has 1 columns, the model takes 2 (0, 1)",
        )


@pytest.mark.parametrize(
    "kind", ["xgb-binary", "xgb-multiclass-strings", "lgbm-regressor", "catboost-classifier"]
)
def test_boosting_frameworks_answer_infer_like_predict(tmp_path: Path, kind: str) -> None:
    pytest.importorskip("xgboost")
    pytest.importorskip("lightgbm")
    pytest.importorskip("catboost")
    from tests.test_framework_models import _fit, features

    frame = features()
    model, keywords, _ = _fit(kind, frame)
    folder = save_model(model, tmp_path / "model", sample_input=frame.head(), name="boost", **keywords)
    rows = frame.iloc[:25]
    with ModelServer(folder) as server:
        server.wait_ready(60)
        expected = predict(server, rows)
        meta = client(server).get_model_metadata("boost")
        tensor = tritonhttp.InferInput("input", list(rows.shape), "FP64").set_data_from_numpy(rows.to_numpy())
        result = client(server).infer("boost", [tensor])
    labels = result.as_numpy("predict")
    assert (
        meta["platform"] == {"xgb": "xgboost", "lgbm": "lightgbm", "catboost": "catboost"}[kind.split("-")[0]]
    )
    datatype = meta["outputs"][0]["datatype"]
    assert datatype == {"xgb-binary": "INT64", "lgbm-regressor": "FP64"}.get(kind, "BYTES")
    assert (_text(labels) if datatype == "BYTES" else labels.tolist()) == expected["predictions"]
    if "probabilities" in expected:
        np.testing.assert_array_equal(result.as_numpy("predict_proba"), expected["probabilities"])


@pytest.mark.slow
def test_a_category_column_takes_text_and_unseen_values_answer_as_in_predict(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=120),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], 120)),
        }
    )
    labels = np.where((frame["colour"] == "red") | (frame["size"] > 1), "yes", "no")
    model = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype").fit(frame, labels)
    folder = save_model(model, tmp_path / "model", sample_input=frame, name="cat")
    rows = pd.DataFrame({"size": [0.1, 2.0, -1.0], "colour": ["red", "blue", "purple"]})
    with ModelServer(folder) as server:
        server.wait_ready(60)
        meta = client(server).get_model_metadata("cat")
        assert meta["inputs"][1] == {"name": "colour", "datatype": "BYTES", "shape": [-1]}
        expected = predict(server, rows)
        result = client(server).infer("cat", column_inputs(rows))
    assert _text(result.as_numpy("predict")) == expected["predictions"]
    np.testing.assert_array_equal(result.as_numpy("predict_proba"), expected["probabilities"])


@pytest.mark.slow
def test_the_server_stops_at_once_with_a_keep_alive_client_connected() -> None:
    """Python 3.11's wait_for can lose the cancellation stop() sends; stop() must not wait 10 s."""
    import time

    from mlci_lib.serving.http_server import HTTPServer, Limits, Request, Response

    def app(request: Request) -> Response:
        return Response.json(200, {"live": True})

    slow = []
    for _ in range(30):
        server = HTTPServer(("127.0.0.1", 0), app, Limits(max_body_bytes=1000, request_timeout=30.0))
        server.start()
        host, port = server.server_address
        triton = tritonhttp.InferenceServerClient(f"{host}:{port}")
        for _ in range(20):
            assert triton.is_server_live()
        started = time.monotonic()
        server.stop()
        slow.append(time.monotonic() - started)
        triton.close()
    assert max(slow) < 2.0, sorted(slow)[-3:]
