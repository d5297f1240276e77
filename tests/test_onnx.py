"""ONNX models: loading with onnxruntime, conversion checked against the native model, serving.

Real models throughout: scikit-learn, LightGBM and XGBoost estimators fitted here, converted with
skl2onnx / onnxmltools; a PyTorch MLP exported with torch.onnx.export; the real onnxruntime.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlci_lib.errors import InputError, ModelLoadError
from mlci_lib.models import LoadedModel, ModelSignature, load_model, save_model
from mlci_lib.models.onnx_convert import OnnxMismatchError, convert_model
from mlci_lib.models.onnx_format import annotate_onnx, load_onnx
from tests.helpers.components import free_port, require


def _frame(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.normal(5, 2, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    labels = np.where(frame["age"] + rng.normal(0, 5, n) > 40, "yes", "no")
    return frame, labels


def _in_memory(estimator: Any, frame: pd.DataFrame, framework: str = "sklearn") -> LoadedModel:
    """A fitted estimator as a LoadedModel, for estimators whose file loading another module owns."""
    return LoadedModel(
        estimator,
        Path("in-memory"),
        "test",
        "sha256:test",
        ModelSignature.infer(frame),
        {},
        framework=framework,
    )


def _post(url: str, payload: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        url + "/predict", json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_hist_gradient_boosting_converts_and_loads_by_content(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame, labels = _frame()
    numeric = frame[["age", "income"]]
    folder = save_model(
        HistGradientBoostingClassifier(max_iter=30).fit(numeric, labels), tmp_path / "m", sample_input=numeric
    )
    native = load_model(folder)
    # No .onnx suffix: the file is recognised by its content.
    conversion = convert_model(native, numeric, tmp_path / "converted.bin")
    assert conversion.passed and conversion.labels_equal
    assert conversion.rows_checked == len(numeric)
    assert conversion.max_abs_difference <= conversion.tolerance
    assert conversion.to_dict()["schema"] == "mlci.onnx-conversion"
    loaded = load_model(tmp_path / "converted.bin")
    assert (loaded.framework, loaded.format, loaded.requirements) == ("onnx", "onnx", ("onnxruntime",))
    assert loaded.classes == ["no", "yes"]
    assert loaded.signature is not None and loaded.signature.names == ["age", "income"]
    labels_onnx, proba = loaded.predict(numeric)
    labels_native, proba_native = native.predict(numeric)
    assert list(labels_onnx) == list(labels_native)
    assert proba is not None and proba_native is not None
    assert np.abs(proba - proba_native).max() <= conversion.tolerance


@pytest.mark.parametrize(
    "kind",
    [
        "lightgbm-classifier",
        "lightgbm-regressor",
        "xgboost-classifier",
        "pipeline",
        "forest-pipeline",
        "boosting-pipeline",
        "xgboost-pipeline",
    ],
)
@pytest.mark.slow
def test_frameworks_and_pipelines_convert_within_tolerance(tmp_path: Path, kind: str) -> None:
    frame, labels = _frame()
    numeric = frame[["age", "income"]]
    if kind == "lightgbm-classifier":
        import lightgbm

        model = _in_memory(
            lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(numeric, labels), numeric, "lightgbm"
        )
        data = numeric
    elif kind == "lightgbm-regressor":
        import lightgbm

        fitted = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(numeric, numeric["age"] * 3)
        model, data = _in_memory(fitted, numeric, "lightgbm"), numeric
    elif kind == "xgboost-classifier":
        import xgboost

        fitted = xgboost.XGBClassifier(n_estimators=20).fit(numeric, (labels == "yes").astype(int))
        model, data = _in_memory(fitted, numeric, "xgboost"), numeric
    elif kind == "boosting-pipeline":
        # HistGradientBoosting after an imputer and a scaler: double preprocessing, one Cast to
        # float32 before the trees (the tree converter adaptation).
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline, make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        data = frame.copy()
        data.loc[[2, 9], "age"] = np.nan
        pre = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
            ]
        )
        fitted = Pipeline([("pre", pre), ("model", HistGradientBoostingClassifier(max_iter=30))]).fit(
            data, labels
        )
        model = _in_memory(fitted, data)
    elif kind == "xgboost-pipeline":
        import xgboost
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        fitted = make_pipeline(StandardScaler(), xgboost.XGBRegressor(n_estimators=20)).fit(
            numeric, numeric["age"]
        )
        model, data = _in_memory(fitted, numeric, "xgboost"), numeric
    elif kind == "forest-pipeline":
        # The standard tabular pipeline, NaN in a numeric column: converts in double precision
        # (the imputer adaptation), and ties between equal votes resolve as scikit-learn does.
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline, make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        data = frame.copy()
        data.loc[[3, 11, 40], "income"] = np.nan
        pre = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["age", "income"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
            ]
        )
        fitted = Pipeline([("pre", pre), ("model", RandomForestClassifier(20, random_state=0))]).fit(
            data, labels
        )
        model = _in_memory(fitted, data)
    else:
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        pre = ColumnTransformer(
            [
                ("num", StandardScaler(), ["age", "income"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
            ]
        )
        fitted = Pipeline([("pre", pre), ("model", LogisticRegression())]).fit(frame, labels)
        model, data = _in_memory(fitted, frame), frame
    conversion = convert_model(model, data, tmp_path / "model.onnx")
    assert conversion.passed, conversion.message
    converted = load_model(tmp_path / "model.onnx")
    native_values, _ = model.predict(data)
    onnx_values, _ = converted.predict(data)
    if model.is_classifier:
        assert [v.item() if hasattr(v, "item") else v for v in onnx_values] == [
            v.item() if hasattr(v, "item") else v for v in native_values
        ]
    else:
        assert np.allclose(onnx_values, native_values, rtol=conversion.tolerance, atol=conversion.tolerance)


def test_a_conversion_that_differs_is_refused_with_the_measured_difference(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestRegressor

    frame, _ = _frame()
    numeric = frame[["age", "income"]]
    noise = np.random.default_rng(0).normal(size=len(numeric)) * 1e5
    target = numeric["age"] * 1e6 + numeric["income"] * 3.3 + noise
    # ONNX's tree ensembles hold thresholds and leaf values in float32: on targets of this size
    # they cannot equal the float64 forest (a linear model converts exactly in double, so it
    # would not show the check at work).
    model = _in_memory(RandomForestRegressor(n_estimators=5, random_state=0).fit(numeric, target), numeric)
    with pytest.raises(OnnxMismatchError) as caught:
        # Tolerance 0: the check must refuse, not round.
        convert_model(model, numeric, tmp_path / "m.onnx", tolerance=0.0)
    conversion = caught.value.conversion
    assert not conversion.passed and conversion.max_abs_difference > 0
    assert "differs from the native model" in caught.value.one_line()


def test_unsupported_estimators_are_named(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer

    frame, labels = _frame()
    numeric = frame[["age", "income"]]
    spline = _in_memory(
        make_pipeline(SplineTransformer(), LogisticRegression()).fit(numeric, labels), numeric
    )
    with pytest.raises(ModelLoadError, match="SplineTransformer has no ONNX converter"):
        convert_model(spline, numeric, tmp_path / "a.onnx")
    categorical = pd.DataFrame({"a": numeric["age"], "c": np.arange(len(numeric)) % 3})
    hgb = HistGradientBoostingClassifier(max_iter=5, categorical_features=[1]).fit(categorical, labels)
    with pytest.raises(ModelLoadError, match="native categorical features"):
        convert_model(_in_memory(hgb, categorical), categorical, tmp_path / "b.onnx")


def _export_mlp(path: Path, inputs: int = 3, outputs: int = 2) -> Any:
    try:
        import torch
    except ImportError:
        require(False, "torch", "pip install torch (the CPU build)")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(inputs, 8), torch.nn.ReLU(), torch.nn.Linear(8, outputs))
    net.eval()
    torch.onnx.export(
        net,
        (torch.zeros(2, inputs),),
        str(path),
        input_names=["features"],
        output_names=["scores"],
        dynamic_axes={"features": {0: "batch"}, "scores": {0: "batch"}},
        dynamo=False,
    )
    return net


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_pytorch_export_loads_predicts_and_serves(tmp_path: Path) -> None:
    from mlci_lib.serving.server import ModelServer

    file = tmp_path / "mlp.onnx"
    net = _export_mlp(file)
    frame = pd.DataFrame({"a": [0.1, -1.0, 2.0, 0.5], "b": [1.0, 0.0, -0.5, 3.0], "c": [0.0, 2.0, 1.0, -1.0]})
    # Without metadata, two scores per row could be logits or probabilities: refused, with the fix.
    with pytest.raises(ModelLoadError, match="annotate_onnx"):
        load_onnx(file)
    annotate_onnx(
        file,
        signature=ModelSignature.infer(frame),
        classes=["cat", "dog"],
        task="classification",
        scores="logits",
    )
    loaded = load_model(file)
    labels, proba = loaded.predict(frame)
    import torch

    with torch.no_grad():
        expected = torch.softmax(net(torch.tensor(frame.to_numpy(), dtype=torch.float32)), dim=1).numpy()
    assert proba is not None and np.abs(proba - expected).max() < 1e-6
    assert list(labels) == [["cat", "dog"][i] for i in expected.argmax(axis=1)]
    with ModelServer(file) as server:
        server.wait_ready(timeout=30)
        status, body = _post(server.url, {"rows": frame.to_dict(orient="records")})
        assert status == 200, body
        assert body["predictions"] == list(labels)
        assert np.abs(np.array(body["probabilities"]) - expected).max() < 1e-6
        # A request without one of the graph's columns: one line naming the column.
        status, body = _post(server.url, {"rows": [{"a": 1.0, "b": 2.0}]})
        assert status == 400 and "'c'" in body["error"]


def test_graph_inputs_that_do_not_match_the_signature_are_refused_at_load(tmp_path: Path) -> None:
    file = tmp_path / "mlp.onnx"
    _export_mlp(file, inputs=3, outputs=1)
    wrong = ModelSignature.infer(pd.DataFrame({"a": [1.0], "b": [2.0]}))
    with pytest.raises(
        ModelLoadError, match=r"takes 3 values per row but the signature has 2 columns \(a, b\)"
    ):
        load_onnx(file, signature=wrong)
    annotate_onnx(file, task="regression")
    model = load_onnx(file)  # no signature: the frame's columns are the tensor
    with pytest.raises(InputError, match="takes 3 columns per row, got 2"):
        model.predict(pd.DataFrame({"a": [1.0], "b": [2.0]}))


def test_damaged_and_unrunnable_files_are_refused_in_one_line(tmp_path: Path) -> None:
    import onnx

    file = tmp_path / "mlp.onnx"
    _export_mlp(file)
    data = file.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated or not a valid ONNX file") as caught:
        load_model(truncated)
    assert str(truncated) in caught.value.one_line() and "\n" not in caught.value.one_line()
    future = onnx.load(str(file))
    future.opset_import[0].version = 99
    too_new = tmp_path / "future.onnx"
    onnx.save(future, str(too_new))
    with pytest.raises(ModelLoadError, match=r"opset or IR version that onnxruntime .* cannot run") as caught:
        load_model(too_new)
    assert "opset_version" in caught.value.one_line()


def test_cli_reports_a_truncated_onnx_file_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlci_lib.cli import main

    file = tmp_path / "model.onnx"
    file.write_bytes(b"\x08\x07\x12\x04abc")  # starts like a ModelProto, ends in the middle of a field
    code = main(["serve", str(file), "--port", str(free_port())])
    err = capsys.readouterr().err
    assert code == 2
    assert "truncated or not a valid ONNX file" in err and str(file) in err


@pytest.mark.slow
def test_serve_runtime_onnx_converts_and_answers_like_the_native_model(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    from mlci_lib.serving.server import ModelServer

    frame, _ = _frame()
    numeric = frame[["age", "income"]]
    folder = save_model(
        HistGradientBoostingRegressor(max_iter=30).fit(numeric, numeric["age"] * 2),
        tmp_path / "m",
        sample_input=numeric,
    )
    sample = tmp_path / "sample.csv"
    numeric.head(50).to_csv(sample, index=False)
    native = load_model(folder)
    with ModelServer(folder, runtime="onnx", warmup_data=sample) as server:
        service = server.wait_ready(timeout=60)
        assert service.model.framework == "onnx"
        assert service.info["model"]["runtime"] == "onnx"
        assert server.conversion is not None and server.conversion.passed
        rows = numeric.head(20)
        status, body = _post(
            server.url, {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
        )
        assert status == 200, body
        expected, _ = native.predict(rows)
        tolerance = server.conversion.tolerance
        assert np.allclose(body["predictions"], expected, rtol=tolerance, atol=tolerance)


@pytest.mark.slow
def test_image_build_refuses_a_model_without_converter_before_building(tmp_path: Path) -> None:
    from sklearn.kernel_ridge import KernelRidge

    from mlci_lib.gitcontext import GitContext
    from mlci_lib.image.build import build_image

    frame, _ = _frame()
    numeric = frame[["age", "income"]]
    folder = save_model(KernelRidge().fit(numeric, numeric["age"]), tmp_path / "m", sample_input=numeric)
    git = GitContext(
        commit="0" * 40,
        ref=None,
        branch=None,
        default_branch=None,
        repository=None,
        server_url=None,
        run_url=None,
    )
    with pytest.raises(ModelLoadError, match="KernelRidge has no ONNX converter"):
        build_image(folder, repository="localhost:5000/kr", tags=["t"], runtime="onnx", git=git)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "MODEL", "--runtime", "tensorrt"], "option --runtime must be one of native, onnx"),
        (
            ["image", "build", "MODEL", "--repository", "r", "--runtime", "x"],
            "option --runtime must be native or onnx",
        ),
    ],
    ids=["serve", "image-build"],
)
def test_unknown_runtimes_are_usage_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlci_lib.cli import main

    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07")
    code = main([str(model) if a == "MODEL" else a for a in argv])
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("runtime", "valid"), [("onnx", True), ("native", True), ("tensorrt", False)])
def test_image_build_runtime_in_the_pipeline_file(tmp_path: Path, runtime: str, valid: bool) -> None:
    import yaml

    from mlci_lib.errors import ConfigError
    from mlci_lib.pipeline.config import load_config

    config = tmp_path / "mlci.yaml"
    stages = {"image-build": {"repository": "localhost:5000/churn", "runtime": runtime}}
    config.write_text(
        yaml.safe_dump({"version": 1, "model": {"name": "churn", "path": "model"}, "stages": stages})
    )
    if valid:
        assert load_config(config).stage("image-build")["runtime"] == runtime
    else:
        with pytest.raises(ConfigError, match="runtime"):
            load_config(config)


def test_a_foreign_skl2onnx_file_with_zipmap_gives_its_classes_and_probabilities(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    frame, labels = _frame()
    numeric = frame[["age", "income"]].astype(np.float32)
    fitted = LogisticRegression().fit(numeric, labels)
    file = tmp_path / "foreign.onnx"
    file.write_bytes(
        to_onnx(fitted, numeric.to_numpy()[:1], target_opset={"": 15, "ai.onnx.ml": 3}).SerializeToString()
    )
    loaded = load_model(file)  # no mlci metadata: classes from the graph, probabilities from ZipMap
    assert loaded.classes == ["no", "yes"] and loaded.signature is None
    got, proba = loaded.predict(numeric)
    assert list(got) == list(fitted.predict(numeric))
    assert proba is not None and np.abs(proba - fitted.predict_proba(numeric)).max() < 1e-5


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_an_export_without_a_signature_still_serves_rows_in_tensor_order(tmp_path: Path) -> None:
    from mlci_lib.serving.server import ModelServer

    file = tmp_path / "mlp.onnx"
    _export_mlp(file, inputs=3, outputs=1)
    annotate_onnx(file, task="regression")
    with ModelServer(file) as server:
        server.wait_ready(timeout=30)  # warm-up rows of zeros, one per tensor position
        status, body = _post(server.url, {"rows": [{"x": 1.0, "y": 2.0, "z": 3.0}]})
        assert status == 200, body
        assert len(body["predictions"]) == 1


@pytest.mark.parametrize("kind", ["lightgbm-classifier", "lightgbm-regressor", "xgboost-classifier"])
@pytest.mark.slow
def test_models_saved_in_their_framework_format_convert(tmp_path: Path, kind: str) -> None:
    """What save_model writes (LightGBM's text, XGBoost's JSON) loads as the framework's Booster
    behind mlci's adapter; the ONNX runtime converts that too, string labels included."""
    import lightgbm
    import xgboost

    frame, labels = _frame()
    numeric = frame[["age", "income"]]
    if kind == "lightgbm-classifier":
        fitted: Any = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(numeric, labels)
    elif kind == "lightgbm-regressor":
        fitted = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(numeric, numeric["age"] * 3)
    else:
        fitted = xgboost.XGBClassifier(n_estimators=20, max_depth=3).fit(numeric, labels == "yes")
    loaded = load_model(save_model(fitted, tmp_path / "model", sample_input=numeric.head()))
    assert type(loaded.estimator).__name__ in ("LightGBMModel", "XGBoostModel")
    conversion = convert_model(loaded, numeric, tmp_path / "model.onnx")
    assert conversion.passed and conversion.rows_checked == len(numeric)
    served = load_onnx(conversion.path)
    expected = loaded.estimator.predict(numeric)
    got = served.estimator.predict(numeric)
    if kind.endswith("regressor"):
        np.testing.assert_allclose(got, expected, rtol=conversion.tolerance, atol=conversion.tolerance)
    else:
        assert got.tolist() == expected.tolist()
