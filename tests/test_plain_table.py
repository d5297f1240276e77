"""The ONNX runtime's table without pandas: the same coercion, answers and messages as the pandas
path, and a serving runtime that needs none of what its image prunes (pandas, scikit-learn, SciPy,
numpy.random, onnxruntime's tools...), proven by serving a real ONNX model with those blocked."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlci_lib.errors import InputError, MlciError
from mlci_lib.image.prune import EVERY_IMAGE_ABSENT_MODULES, ONNX_ABSENT_MODULES
from mlci_lib.models import ColumnSpec, LoadedModel, ModelSignature
from mlci_lib.models.onnx_convert import convert_model
from mlci_lib.models.onnx_format import load_onnx
from mlci_lib.models.plain_table import PlainTable, coerce_plain
from mlci_lib.serving.payload import rows_to_frame
from mlci_lib.serving.server import ModelService, synthetic_rows

ROOT = Path(__file__).resolve().parents[1]


def _table(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 50.0, n)
    amount[rng.random(n) < 0.1] = np.nan
    frame = pd.DataFrame(
        {
            "amount": amount,
            "tenure": rng.integers(0, 72, n),
            "plan": rng.choice(["free", "pro", "team"], n).astype(object),
        }
    )
    return frame, (frame.tenure > 30).astype(int)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A ColumnTransformer pipeline (imputer, scaler, one-hot) converted to ONNX, as mlci does it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame, target = _table()
    prepare = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["amount", "tenure"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    pipeline = make_pipeline(prepare, LogisticRegression(max_iter=500)).fit(frame, target)
    folder = tmp_path_factory.mktemp("plain")
    loaded = LoadedModel(pipeline, folder, "in-memory", "sha256:x", ModelSignature.infer(frame), {})
    return Path(convert_model(loaded, frame.head(50), folder / "model.onnx").path), frame


PAYLOADS: list[Any] = [
    {"rows": [{"amount": 10.5, "tenure": 3, "plan": "pro"}, {"amount": 99.0, "tenure": 50, "plan": "team"}]},
    [{"amount": None, "tenure": 40, "plan": None}],
    {"columns": {"amount": [1.0, None], "tenure": [2, 60], "plan": ["free", "unseen"]}},
    {"dataframe_split": {"columns": ["plan", "tenure", "amount"], "data": [["pro", 7, "12.5"]]}},
    {"rows": [{"amount": "x", "tenure": 3, "plan": "pro"}]},
    {"rows": [{"amount": True, "tenure": 3, "plan": "pro"}]},
    {"rows": [{"amount": 1.0, "tenure": 2.5, "plan": "pro"}]},
    {"rows": [{"amount": 1.0, "tenure": 3, "plan": 7}]},
    {"rows": [{"amount": 1.0, "plan": "pro"}]},
    {"rows": [{"amount": 1.0, "tenure": 10**30, "plan": "pro"}]},
    {"rows": [{"amount": 1.0, "tenure": None, "plan": "pro"}]},
]


def _pandas_answer(service: ModelService, payload: Any) -> tuple[int, dict[str, Any]]:
    """What the DataFrame path answers: the same steps as predict_payload, with pandas."""
    try:
        return 200, service.predict_frame(rows_to_frame(payload), observe=False)
    except MlciError as exc:
        return 400, {"error": exc.one_line()}
    except (ValueError, TypeError) as exc:
        return 422, {"error": f"the model could not predict on these rows: {type(exc).__name__}: {exc}"}


@pytest.mark.parametrize("index", range(len(PAYLOADS)))
def test_the_plain_path_answers_as_the_pandas_path(onnx_file: tuple[Path, pd.DataFrame], index: int) -> None:
    model = load_onnx(onnx_file[0])
    service = ModelService(model)
    assert service.plain
    payload = PAYLOADS[index]
    status, body = service.predict_payload(payload)
    expected_status, expected = _pandas_answer(service, payload)
    assert status == expected_status, (body, expected)
    if status != 200:
        assert body == expected
        return
    assert body["predictions"] == expected["predictions"]
    assert body["classes"] == expected["classes"]
    np.testing.assert_allclose(body["probabilities"], expected["probabilities"], rtol=1e-12)


def test_warm_up_rows_are_a_plain_table_for_onnx_models(onnx_file: tuple[Path, pd.DataFrame]) -> None:
    model = load_onnx(onnx_file[0])
    rows = synthetic_rows(model)
    assert isinstance(rows, PlainTable) and rows.columns == ["amount", "tenure", "plan"]
    ModelService(model).warm_up(rows)


KIND_CASES: list[tuple[ColumnSpec, list[Any]]] = [
    (ColumnSpec("n", "integer", "int64"), [1, None, "3", 4.0, float("nan")]),
    (ColumnSpec("n", "integer", "Int64"), [1, None, 2**40]),
    (ColumnSpec("n", "integer", "int64"), [1, 2.5]),
    (ColumnSpec("n", "integer", "int32"), [1, 2**40]),
    (ColumnSpec("n", "integer", "int64"), [False, 1]),
    (ColumnSpec("x", "float", "float64"), [1, 2.5, None, " 7 "]),
    (ColumnSpec("x", "float", "float64"), [1.0, "nan"]),
    (ColumnSpec("x", "float", "float32"), [1.0, "abc"]),
    (ColumnSpec("b", "boolean", "bool"), [True, False, "true", "FALSE", 1, 0]),
    (ColumnSpec("b", "boolean", "bool"), [True, None]),
    (ColumnSpec("b", "boolean", "bool"), [True, "maybe"]),
    (ColumnSpec("s", "string", "object", missing="none"), ["a", None, float("nan")]),
    (ColumnSpec("s", "string", "str"), ["a", 5]),
    (ColumnSpec("c", "category", "category", ("x", "y")), ["x", "z", None]),
    (ColumnSpec("c", "category", "category", ("x", "y")), ["x", 3]),
    (ColumnSpec("c", "category", "category", (1, 2)), [1, "2", None]),
]


@pytest.mark.parametrize("index", range(len(KIND_CASES)))
def test_plain_coercion_gives_what_the_pandas_coercion_gives(index: int) -> None:
    """Per kind: the same values (numbers as float64 with NaN, as a graph receives them) or the
    same message."""
    spec, values = KIND_CASES[index]
    signature = ModelSignature((spec,))
    try:
        frame = signature.coerce(pd.DataFrame({spec.name: pd.Series(values, dtype=object)}), source="request")
    except InputError as exc:
        with pytest.raises(InputError) as plain_error:
            coerce_plain(signature, PlainTable({spec.name: values}), source="request")
        assert plain_error.value.one_line() == exc.one_line()
        return
    got = coerce_plain(signature, PlainTable({spec.name: values}), source="request").column(spec.name)
    column = frame[spec.name]
    if spec.kind in ("integer", "float", "boolean") or (
        spec.categories and isinstance(spec.categories[0], int)
    ):
        numbers = column.astype(object) if isinstance(column.dtype, pd.CategoricalDtype) else column
        expected = numbers.to_numpy(dtype="float64", na_value=np.nan)
        np.testing.assert_array_equal(np.asarray(got, dtype="float64"), expected)
    else:
        assert [None if v is None or v != v else v for v in got] == [
            None if pd.isna(v) else v for v in column.astype(object)
        ]


def test_a_plain_table_reads_like_the_frames_the_server_logs() -> None:
    signature = ModelSignature((ColumnSpec("n", "integer", "int64"), ColumnSpec("s", "string", "str")))
    ready = coerce_plain(signature, PlainTable({"n": [1, None], "s": ["a", None]}))
    assert ready.to_dict("records") == [{"n": 1, "s": "a"}, {"n": None, "s": None}]
    assert ready[["n"]].to_numpy(dtype="float64").shape == (2, 1)
    assert len(ready) == 2 and ready.shape == (2, 2)
    with pytest.raises(ValueError, match="same length"):
        PlainTable({"a": [1], "b": [1, 2]})


def test_datetime_columns_are_refused_for_a_graph_in_one_line() -> None:
    signature = ModelSignature((ColumnSpec("t", "datetime", "datetime64[us]"),))
    with pytest.raises(InputError, match="column 't' holds dates and times"):
        coerce_plain(signature, PlainTable({"t": ["2024-01-01"]}))


@pytest.mark.slow
def test_onnx_serving_runs_without_what_its_image_prunes(
    onnx_file: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    """``mlci serve`` of an ONNX model with pandas, scikit-learn, SciPy, skops, onnx, pyarrow and
    every module the ONNX image's prune list removes made unimportable: it loads, warms up (from
    recorded rows and from the signature), and answers /predict, the protocol's infer, /metrics
    and /version as the model does in-process."""
    file, frame = onnx_file
    sample = frame.head(6)
    rows = json.loads(sample.to_json(orient="records"))
    model = load_onnx(file)
    expected_labels, expected_probabilities = model.predict(sample)
    blocked = [
        *("pandas", "sklearn", "scipy", "skops", "onnx", "pyarrow", "joblib"),
        *EVERY_IMAGE_ABSENT_MODULES,
        *ONNX_ABSENT_MODULES,
    ]
    script = textwrap.dedent(
        f"""
        import json, sys, urllib.request
        for name in {blocked!r}:
            sys.modules[name] = None  # an import of it raises ImportError
        from mlci_lib.serving import ModelServer

        def call(url, body=None):
            data = None if body is None else json.dumps(body).encode()
            with urllib.request.urlopen(urllib.request.Request(url, data=data)) as answer:
                raw = answer.read()
            return json.loads(raw) if raw.startswith((b"{{", b"[")) else raw.decode()

        out = {{}}
        for warm in ("recorded", "signature"):
            info = {{"warmup_rows": {rows!r}}} if warm == "recorded" else {{}}
            with ModelServer({str(file)!r}, info=info) as server:
                server.wait_ready()
                out[warm] = call(server.url + "/predict", {{"rows": {rows!r}}})
                name = call(server.url + "/version")["model"]["name"]
                out["infer"] = call(
                    server.url + f"/v2/models/{{name}}/infer",
                    {{"inputs": [
                        {{"name": "amount", "shape": [1], "datatype": "FP64", "data": [12.5]}},
                        {{"name": "tenure", "shape": [1], "datatype": "INT64", "data": [40]}},
                        {{"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]}},
                    ]}},
                )
                out["metrics"] = "mlci_predictions_total" in call(server.url + "/metrics")
                out["version"] = call(server.url + "/version")["model"]["runtime"]
        out["leaked"] = sorted(n for n in {blocked!r} if sys.modules.get(n) is not None)
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for warm in ("recorded", "signature"):
        assert out[warm]["predictions"] == expected_labels.tolist()
        np.testing.assert_allclose(out[warm]["probabilities"], expected_probabilities, rtol=1e-9)
    assert out["infer"]["outputs"], out["infer"]
    assert out["metrics"] is True and out["version"] == "onnx" and out["leaked"] == []
