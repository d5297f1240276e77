"""XGBoost, LightGBM and CatBoost models, real ones, through loading, saving, serving and push.

Each model is trained here with the framework itself; predictions after ``save_model`` and
``load_model`` (and through ``mlci serve``) must equal the framework's own. Crafted files are
real framework files with one index changed, the way an attacker or a damaged disk would.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlci_lib.cli import main
from mlci_lib.errors import InputError, ModelLoadError, UnsafeModelError
from mlci_lib.models import MLCI_MODEL_FILE, load_model, save_model
from mlci_lib.serving import ModelServer
from tests.helpers.components import free_port

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
cb = pytest.importorskip("catboost")

ROOT = Path(__file__).resolve().parent.parent
LABELS = np.array(["bronze", "gold", "silver"])


def features(n: int = 160, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.uniform(18, 80, n),
            "income": rng.uniform(1, 9, n),
            "visits": rng.poisson(3, n).astype(float),
        }
    )


def tier(frame: pd.DataFrame) -> np.ndarray:
    """String labels with three classes."""
    return LABELS[np.digitize(frame["income"] + 0.02 * frame["age"], [4.0, 6.5])]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return features()


def _fit(kind: str, frame: pd.DataFrame) -> tuple[Any, dict[str, Any], Callable[[pd.DataFrame], Any]]:
    """(fitted model, save_model keywords, the framework's own predict with real labels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        binary = (frame["age"] > 45).astype(int)
        if kind == "xgb-binary":
            model = xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(frame, binary)
            return model, {}, model.predict
        if kind == "xgb-multiclass-strings":
            # XGBoost trains on encoded labels only; save_model records the real ones.
            from sklearn.preprocessing import LabelEncoder

            encoder = LabelEncoder().fit(tier(frame))
            model = xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(frame, encoder.transform(tier(frame)))
            return model, {"classes": encoder.classes_}, lambda x: encoder.inverse_transform(model.predict(x))
        if kind == "xgb-regressor":
            model = xgb.XGBRegressor(n_estimators=8, max_depth=3).fit(frame, frame["income"] * 3)
            return model, {}, model.predict
        if kind == "lgbm-classifier-strings":
            model = lgb.LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1).fit(frame, tier(frame))
            return model, {}, model.predict
        if kind == "lgbm-binary":
            model = lgb.LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1).fit(frame, binary)
            return model, {}, model.predict
        if kind == "lgbm-regressor":
            model = lgb.LGBMRegressor(n_estimators=8, num_leaves=7, verbose=-1).fit(frame, frame["income"])
            return model, {}, model.predict
        if kind == "catboost-classifier":
            model = cb.CatBoostClassifier(
                iterations=8, depth=3, verbose=0, thread_count=1, allow_writing_files=False
            ).fit(frame, tier(frame))
            return model, {}, lambda x: np.asarray(model.predict(x)).ravel()
    raise AssertionError(kind)


KINDS = [
    "xgb-binary",
    "xgb-multiclass-strings",
    "xgb-regressor",
    "lgbm-classifier-strings",
    "lgbm-binary",
    "lgbm-regressor",
    "catboost-classifier",
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, data: pd.DataFrame) -> dict[str, tuple[Path, Any, Any]]:
    out = {}
    for kind in KINDS:
        model, keywords, own_predict = _fit(kind, data)
        folder = save_model(
            model, tmp_path_factory.mktemp(kind) / "model", sample_input=data.head(), **keywords
        )
        out[kind] = (folder, model, own_predict)
    return out


# -- save, load, predict ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_saved_model_predicts_what_the_framework_predicts(
    saved: dict[str, tuple[Path, Any, Any]], data: pd.DataFrame, kind: str
) -> None:
    folder, model, own_predict = saved[kind]
    framework = kind.split("-")[0].replace("xgb", "xgboost").replace("lgbm", "lightgbm")
    loaded = load_model(folder)
    assert (loaded.framework, loaded.requirements, loaded.format) == (framework, (framework,), "mlci")
    meta = json.loads((folder / MLCI_MODEL_FILE).read_text())
    assert meta["framework"] == framework and meta["framework_version"]
    assert meta["feature_names"] == list(data.columns)
    predictions, probabilities = loaded.predict(data)
    expected = own_predict(data)
    if "regressor" in kind:
        assert not loaded.is_classifier and probabilities is None
        np.testing.assert_allclose(predictions, expected, rtol=1e-6)
        return
    assert loaded.is_classifier
    assert list(predictions) == list(expected)
    np.testing.assert_allclose(probabilities, model.predict_proba(data), rtol=1e-6)
    if "strings" in kind or "catboost" in kind:
        assert loaded.classes == list(LABELS) and meta["classes"] == list(LABELS)


def test_loaded_native_model_has_the_interface_mlci_uses(saved: dict[str, tuple[Path, Any, Any]]) -> None:
    estimator = load_model(saved["lgbm-classifier-strings"][0]).estimator
    assert estimator.n_features_in_ == 3
    assert list(estimator.feature_names_in_) == ["age", "income", "visits"]
    assert list(estimator.classes_) == list(LABELS)
    assert hasattr(estimator, "predict_proba") and estimator.get_params()["framework"] == "lightgbm"
    regressor = load_model(saved["xgb-regressor"][0]).estimator
    assert not hasattr(regressor, "predict_proba") and not hasattr(regressor, "classes_")


def test_classes_must_fit_the_model(tmp_path: Path, data: pd.DataFrame) -> None:
    model = xgb.XGBClassifier(n_estimators=2).fit(data, (data["age"] > 45).astype(int))
    with pytest.raises(InputError, match="gives 3 labels, but the model predicts 2"):
        save_model(model, tmp_path / "m", classes=["a", "b", "c"])


@pytest.mark.parametrize("suffix", ["json", "ubj"])
def test_bare_xgboost_booster_file(tmp_path: Path, data: pd.DataFrame, suffix: str) -> None:
    dtrain = xgb.DMatrix(data, label=tier(data) == "gold")
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, dtrain, num_boost_round=5)
    # A misleading extension: the content decides.
    path = tmp_path / f"booster.{suffix}"
    booster.save_model(str(path))
    renamed = path.rename(tmp_path / "model.bin")
    loaded = load_model(renamed)
    assert loaded.format == "xgboost" and loaded.classes == [0, 1]
    _, probabilities = loaded.predict(data)
    np.testing.assert_allclose(probabilities[:, 1], booster.predict(xgb.DMatrix(data)), rtol=1e-6)


def test_bare_lightgbm_and_catboost_files(tmp_path: Path, data: pd.DataFrame) -> None:
    booster = lgb.train(
        {"objective": "regression", "num_leaves": 7, "verbose": -1}, lgb.Dataset(data, data["income"]), 6
    )
    booster.save_model(str(tmp_path / "m.txt"))
    loaded = load_model(tmp_path / "m.txt")
    assert loaded.framework == "lightgbm" and not loaded.is_classifier
    np.testing.assert_allclose(loaded.predict(data)[0], booster.predict(data))
    model = cb.CatBoostRegressor(iterations=5, verbose=0, thread_count=1, allow_writing_files=False).fit(
        data, data["age"]
    )
    model.save_model(str(tmp_path / "m.cbm"))
    loaded = load_model(tmp_path / "m.cbm")
    assert loaded.framework == "catboost" and loaded.requirements == ("catboost",)
    np.testing.assert_allclose(loaded.predict(data)[0], model.predict(data))


@pytest.mark.parametrize("wrapper", ["XGBClassifier", "LGBMClassifier", "CatBoostClassifier"])
def test_pipeline_with_a_framework_wrapper_goes_through_skops(
    tmp_path: Path, data: pd.DataFrame, wrapper: str
) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    estimator = {
        "XGBClassifier": lambda: xgb.XGBClassifier(n_estimators=4),
        "LGBMClassifier": lambda: lgb.LGBMClassifier(n_estimators=4, verbose=-1),
        "CatBoostClassifier": lambda: cb.CatBoostClassifier(
            iterations=4, verbose=0, thread_count=1, allow_writing_files=False
        ),
    }[wrapper]()
    label = (data["age"] > 45).astype(int)
    pipeline = make_pipeline(StandardScaler(), estimator).fit(data, label)
    folder = save_model(pipeline, tmp_path / "m", sample_input=data.head())
    meta = json.loads((folder / MLCI_MODEL_FILE).read_text())
    framework = {"XGBClassifier": "xgboost", "LGBMClassifier": "lightgbm"}.get(wrapper, "catboost")
    assert meta["format"] == "skops" and meta["framework"] == framework and meta["frameworks"][framework]
    loaded = load_model(folder)
    assert (loaded.framework, loaded.requirements) == (framework, (framework,))
    predictions, probabilities = loaded.predict(data)
    assert list(predictions) == list(pipeline.predict(data))
    np.testing.assert_allclose(probabilities, pipeline.predict_proba(data))


# -- MLflow model folders, as MLflow writes them ----------------------------------------------------

PIP = ["scikit-learn"]  # given, so MLflow does not spend seconds inferring requirements


@pytest.mark.slow
def test_mlflow_xgboost_lightgbm_catboost_folders(tmp_path: Path, data: pd.DataFrame) -> None:
    import mlflow.catboost
    import mlflow.lightgbm
    import mlflow.xgboost

    binary = (data["age"] > 45).astype(int)
    x = xgb.XGBClassifier(n_estimators=4).fit(data, binary)
    for fmt in ("ubj", "json"):
        mlflow.xgboost.save_model(x, tmp_path / f"x-{fmt}", model_format=fmt, pip_requirements=PIP)
        loaded = load_model(tmp_path / f"x-{fmt}")
        assert loaded.format == "mlflow-xgboost" and loaded.framework == "xgboost"
        assert list(loaded.predict(data)[0]) == list(x.predict(data))
    lgbm = lgb.LGBMClassifier(n_estimators=4, verbose=-1).fit(data, tier(data))
    mlflow.lightgbm.save_model(lgbm.booster_, tmp_path / "l-booster", pip_requirements=PIP)
    loaded = load_model(tmp_path / "l-booster")
    assert loaded.format == "mlflow-lightgbm"
    # The Booster file knows classes 0..2 only: the label is its index.
    assert list(loaded.predict(data)[0]) == list(np.argmax(lgbm.predict_proba(data), axis=1))
    mlflow.lightgbm.save_model(lgbm, tmp_path / "l-skops", serialization_format="skops", pip_requirements=PIP)
    loaded = load_model(tmp_path / "l-skops")
    assert (loaded.format, loaded.framework) == ("mlflow-skops", "lightgbm")
    assert list(loaded.predict(data)[0]) == list(lgbm.predict(data))
    mlflow.lightgbm.save_model(
        lgbm, tmp_path / "l-pickle", serialization_format="pickle", pip_requirements=PIP
    )
    with pytest.raises(UnsafeModelError, match="pickle format and was not loaded"):
        load_model(tmp_path / "l-pickle")
    assert load_model(tmp_path / "l-pickle", allow_pickle=True).requirements == ("lightgbm",)
    c = cb.CatBoostClassifier(iterations=4, verbose=0, thread_count=1, allow_writing_files=False).fit(
        data, tier(data)
    )
    mlflow.catboost.save_model(c, tmp_path / "c", pip_requirements=PIP)
    loaded = load_model(tmp_path / "c")
    assert loaded.format == "mlflow-catboost" and loaded.classes == list(LABELS)
    assert list(loaded.predict(data)[0]) == list(np.asarray(c.predict(data)).ravel())


def test_mlflow_sklearn_folder_with_an_xgboost_pipeline(tmp_path: Path, data: pd.DataFrame) -> None:
    import mlflow.sklearn
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), xgb.XGBRegressor(n_estimators=4)).fit(data, data["income"])
    mlflow.sklearn.save_model(
        pipeline, tmp_path / "s", serialization_format="skops", pip_requirements=PIP,
        skops_trusted_types=["xgboost.core.Booster", "xgboost.sklearn.XGBRegressor"],
    )  # fmt: skip
    loaded = load_model(tmp_path / "s")
    assert (loaded.format, loaded.framework, loaded.requirements) == ("mlflow-skops", "xgboost", ("xgboost",))
    np.testing.assert_allclose(loaded.predict(data)[0], pipeline.predict(data), rtol=1e-6)


# -- serving -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xgb-multiclass-strings", "lgbm-regressor", "catboost-classifier"])
def test_served_predictions_equal_in_process(
    saved: dict[str, tuple[Path, Any, Any]], data: pd.DataFrame, kind: str
) -> None:
    import http.client

    folder = saved[kind][0]
    expected, probabilities = load_model(folder).predict(data)
    with ModelServer(folder) as server:
        server.wait_ready(60)
        host, port = server.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        rows = json.loads(data.to_json(orient="records"))
        connection.request("POST", "/predict", json.dumps(rows), {"Content-Type": "application/json"})
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
    assert response.status == 200, body
    if probabilities is None:
        np.testing.assert_allclose(body["predictions"], expected, rtol=1e-6)
    else:
        assert body["predictions"] == list(expected) and body["classes"] == list(LABELS)
        np.testing.assert_allclose(body["probabilities"], probabilities, rtol=1e-6)


# -- bad input: crafted, truncated, unreadable, unknown -------------------------------------------


@pytest.fixture(scope="module")
def xgb_json(tmp_path_factory: pytest.TempPathFactory, data: pd.DataFrame) -> dict[str, Any]:
    # An interaction, so that even the first tree has splits below the root.
    label = ((data["age"] > 45) ^ (data["income"] > 5)).astype(int)
    model = xgb.XGBClassifier(n_estimators=3, max_depth=3).fit(data, label)
    path = tmp_path_factory.mktemp("xgb") / "model.json"
    model.save_model(str(path))
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _tree(model: dict[str, Any], number: int = 0) -> dict[str, Any]:
    tree: dict[str, Any] = model["learner"]["gradient_booster"]["model"]["trees"][number]
    return tree


def _first_split(tree: dict[str, Any]) -> int:
    return next(i for i, c in enumerate(tree["left_children"]) if c != -1 and i > 0)


XGB_CRAFTED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "feature beyond the inputs": (
        lambda t: t["split_indices"].__setitem__(0, 100_000),
        "node 0 splits on feature 100000, but the model has 3 input features",
    ),
    "child beyond the tree": (lambda t: t["left_children"].__setitem__(0, 5000), "left child 5000, outside"),
    "child pointing at the root": (
        lambda t: t["right_children"].__setitem__(_first_split(t), 0),
        "right child 0, outside",
    ),
    "two splits sharing a child": (
        lambda t: t["left_children"].__setitem__(_first_split(t), t["right_children"][0]),
        "is the child of more than one split",
    ),
    "negative child": (lambda t: t["left_children"].__setitem__(0, -7), "left child -7, outside"),
}


@pytest.mark.parametrize("case", list(XGB_CRAFTED))
def test_crafted_xgboost_file_is_refused_before_prediction(
    tmp_path: Path, xgb_json: dict[str, Any], case: str
) -> None:
    mutate, message = XGB_CRAFTED[case]
    crafted = copy.deepcopy(xgb_json)
    mutate(_tree(crafted))
    path = tmp_path / "model.json"
    path.write_text(json.dumps(crafted))
    with pytest.raises(UnsafeModelError, match=re.escape(message)) as raised:
        load_model(path)
    assert "scikit-learn" not in raised.value.one_line() and str(path) in raised.value.one_line()


def test_crafted_xgboost_ubjson_is_refused_too(tmp_path: Path, xgb_json: dict[str, Any]) -> None:
    crafted = copy.deepcopy(xgb_json)
    _tree(crafted, 1)["split_indices"][0] = 77_777
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(crafted).encode()))  # XGBoost takes it as it is
    booster.save_model(str(tmp_path / "model.ubj"))
    with pytest.raises(UnsafeModelError, match="tree 1: node 0 splits on feature 77777"):
        load_model(tmp_path / "model.ubj")


@pytest.fixture(scope="module")
def lgb_text(data: pd.DataFrame) -> str:
    label = ((data["age"] > 45) ^ (data["income"] > 5)).astype(int)
    model = lgb.LGBMClassifier(n_estimators=3, num_leaves=5, min_child_samples=5, verbose=-1).fit(data, label)
    text: str = model.booster_.model_to_string()
    return text


def _replace_in_first_tree(text: str, key: str, change: Callable[[list[str]], None]) -> str:
    head, tree0, rest = text.partition("\nTree=0\n")
    block, sep, tail = rest.partition("\n\n")
    lines = block.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(f"{key}="):
            values = line.split("=", 1)[1].split()
            change(values)
            lines[i] = f"{key}=" + " ".join(values)
    return head + tree0 + "\n".join(lines) + sep + tail


LGB_CRAFTED: dict[str, tuple[Callable[[str], str], str]] = {
    "feature beyond the inputs": (
        lambda s: _replace_in_first_tree(s, "split_feature", lambda v: v.__setitem__(0, "900000")),
        "splits on feature 900000, but the model has 3 input features",
    ),
    "split child beyond the tree": (
        lambda s: _replace_in_first_tree(s, "left_child", lambda v: v.__setitem__(0, "1000")),
        "left child 1000, outside the tree",
    ),
    "leaf beyond the tree": (
        lambda s: _replace_in_first_tree(s, "right_child", lambda v: v.__setitem__(0, "-1000")),
        "right child -1000, outside the tree",
    ),
    "child pointing back up": (
        lambda s: _replace_in_first_tree(s, "right_child", lambda v: v.__setitem__(len(v) - 1, "0")),
        "outside nodes",
    ),
    "array of the wrong length": (
        lambda s: _replace_in_first_tree(s, "leaf_value", lambda v: v.pop()),
        "leaf_value has",
    ),
    "not a number": (
        lambda s: _replace_in_first_tree(s, "decision_type", lambda v: v.__setitem__(0, "x")),
        "not a whole number",
    ),
    "tree_sizes that do not match": (
        lambda s: re.sub(r"(?m)^tree_sizes=(\d+)", lambda m: f"tree_sizes={int(m[1]) + 3}", s),
        "tree_sizes do not match",
    ),
    "truncated after the first tree": (lambda s: s[: s.index("\nTree=1\n")], "truncated"),
    "truncated in the header": (lambda s: s[:60], "truncated"),
    "truncated in a tree": (lambda s: s[: s.index("\nTree=0\n") + 60], "truncated"),
}


@pytest.mark.parametrize("case", list(LGB_CRAFTED))
def test_crafted_or_truncated_lightgbm_file_is_refused(tmp_path: Path, lgb_text: str, case: str) -> None:
    # LightGBM's own parser would crash on the first case at prediction, and abort the whole
    # process (not raise) on several others: mlci must refuse them all with a clean error.
    change, message = LGB_CRAFTED[case]
    path = tmp_path / "model.txt"
    path.write_text(change(lgb_text))
    with pytest.raises(ModelLoadError, match=re.escape(message)) as raised:
        load_model(path)
    assert "scikit-learn" not in raised.value.one_line() and str(path) in raised.value.one_line()


def _booster_state(node: Any) -> dict[str, Any]:
    """The state of the LightGBM Booster in a skops schema."""
    if isinstance(node, dict):
        if node.get("__module__") == "lightgbm.basic" and node.get("__class__") == "Booster":
            state: dict[str, Any] = node["content"]["content"]
            return state
        children: Any = node.values()
    else:
        children = node if isinstance(node, list) else []
    for child in children:
        try:
            return _booster_state(child)
        except LookupError:
            continue
    raise LookupError("no LightGBM Booster in the schema")


def test_crafted_boosters_inside_a_skops_pipeline_are_refused(
    tmp_path: Path, data: pd.DataFrame, xgb_json: dict[str, Any], lgb_text: str
) -> None:
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    label = (data["age"] > 45).astype(int)
    # XGBoost loads a crafted tree without complaint, so a real pipeline can carry one.
    crafted = copy.deepcopy(xgb_json)
    _tree(crafted)["split_indices"][0] = 100_000
    pipeline = make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=3)).fit(data, label)
    pipeline[-1].load_model(bytearray(json.dumps(crafted).encode()))
    sio.dump(pipeline, tmp_path / "x.skops")
    with pytest.raises(
        UnsafeModelError, match="XGBClassifier was refused: tree 0: node 0 splits on feature 100000"
    ):
        load_model(tmp_path / "x.skops")
    # LightGBM cannot even write a booster with such a tree (it crashes), so the skops file of a
    # real pipeline is edited the way an attacker would: its booster's text in schema.json.
    pipeline = make_pipeline(StandardScaler(), lgb.LGBMClassifier(n_estimators=3, verbose=-1)).fit(
        data, label
    )
    sio.dump(pipeline, tmp_path / "real.skops")
    with zipfile.ZipFile(tmp_path / "real.skops") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    crafted_text = LGB_CRAFTED["feature beyond the inputs"][0](lgb_text)
    _booster_state(schema)["_handle"]["content"] = json.dumps(crafted_text)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(tmp_path / "l.skops", "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(UnsafeModelError, match=r"LightGBM booster 1 was refused: tree 0: .* feature 900000"):
        load_model(tmp_path / "l.skops")


def test_truncated_and_unreadable_files(tmp_path: Path, data: pd.DataFrame, xgb_json: dict[str, Any]) -> None:
    text = json.dumps(xgb_json)
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    with pytest.raises(ModelLoadError, match=r"could not be read by XGBoost .* truncated or damaged"):
        load_model(tmp_path / "cut.json")
    # A booster kind this XGBoost does not know, as a newer release would write.
    newer = copy.deepcopy(xgb_json)
    newer["version"] = [9, 0, 0]
    newer["learner"]["gradient_booster"]["name"] = "gbfuture"
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    with pytest.raises(ModelLoadError, match=r"the file says XGBoost 9\.0\.0; installed 3\.") as raised:
        load_model(tmp_path / "newer.json")
    assert "install the XGBoost version that wrote it" in raised.value.one_line()
    model = cb.CatBoostClassifier(iterations=3, verbose=0, thread_count=1, allow_writing_files=False).fit(
        data, tier(data)
    )
    model.save_model(str(tmp_path / "m.cbm"))
    raw = (tmp_path / "m.cbm").read_bytes()
    (tmp_path / "cut.cbm").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelLoadError, match=r"could not be read by CatBoost .*truncated or damaged"):
        load_model(tmp_path / "cut.cbm")
    (tmp_path / "model.bin").write_bytes(b"\x00\x01 not a model of any kind")
    with pytest.raises(ModelLoadError, match="is not a model file mlci knows") as unknown:
        load_model(tmp_path / "model.bin")
    assert "XGBoost JSON/UBJSON, LightGBM text or CatBoost .cbm" in unknown.value.one_line()


def test_mlci_serve_refuses_a_crafted_file_with_one_line(
    tmp_path: Path, xgb_json: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    crafted = copy.deepcopy(xgb_json)
    _tree(crafted)["split_indices"][0] = 100_000
    path = tmp_path / "model.json"
    path.write_text(json.dumps(crafted))
    assert main(["serve", str(path), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    # A progress line ("loading ...; listening on ...") and then the error, on one line.
    error = err.strip().splitlines()[-1]
    assert str(path) in error and "splits on feature 100000" in error and "save the model again" in error
    assert "scikit-learn" not in err and "Traceback" not in err


# -- frameworks are optional -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["xgboost", "lightgbm", "catboost", "xgboost in a pipeline"])
def test_a_missing_framework_names_the_package_to_install(
    tmp_path: Path, saved: dict[str, tuple[Path, Any, Any]], data: pd.DataFrame, framework: str
) -> None:
    if framework == "xgboost in a pipeline":
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        framework = "xgboost"
        pipeline = make_pipeline(StandardScaler(), xgb.XGBRegressor(n_estimators=2)).fit(data, data["age"])
        model = save_model(pipeline, tmp_path / "pipeline")
    else:
        kind = {"xgboost": "xgb-binary", "lightgbm": "lgbm-binary", "catboost": "catboost-classifier"}[
            framework
        ]
        model = saved[kind][0]
    # A sitecustomize that makes the framework unimportable, as on a machine without it.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(f"import sys\nsys.modules[{framework!r}] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    # push loads the model before it contacts any server: nothing listens at this address.
    command = [sys.executable, "-m", "mlci_lib", "model", "push", str(model), "--name", "m",
               "--no-require-verdict", "--tracking-uri", "http://127.0.0.1:9"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"pip install 'mlci[{framework}]' (or pip install {framework})" in lines[0]
    assert str(model) in lines[0] and "scikit-learn" not in lines[0]


# -- registry push against a real MLflow server ------------------------------------------------------


@pytest.fixture
def registry_git() -> Any:
    from tests.test_registry import git

    return git("f00d" * 10)


@pytest.mark.mlflow
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["xgb-multiclass-strings", "lgbm-classifier-strings"])
def test_push_and_baseline_of_a_framework_model(
    mlflow_server: str,
    saved: dict[str, tuple[Path, Any, Any]],
    data: pd.DataFrame,
    tmp_path: Path,
    registry_git: Any,
    kind: str,
) -> None:
    from mlflow import MlflowClient

    from mlci_lib.registry import baseline_predictions, push_model

    folder = saved[kind][0]
    name = f"framework-{kind}"
    first = push_model(folder, name, require_verdict=False, tracking_uri=mlflow_server, git=registry_git)
    again = push_model(folder, name, require_verdict=False, tracking_uri=mlflow_server, git=registry_git)
    assert first.created and not again.created and again.version == first.version
    framework = "xgboost" if kind.startswith("xgb") else "lightgbm"
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    version = client.get_model_version(name, first.version)
    model_id = str(version.source).removeprefix("models:/")
    files = {f.path.rsplit("/", 1)[-1] for f in client.list_logged_model_artifacts(model_id)}
    native = {"xgboost": "model.json", "lightgbm": "model.lgb"}[framework]
    assert native in files and not any(f.endswith((".pkl", ".skops")) for f in files)
    data_file = tmp_path / "eval.csv"
    data.assign(label=tier(data)).to_csv(data_file, index=False)
    baseline = baseline_predictions(
        f"{name}/{first.version}",
        data_file,
        tmp_path / "b.csv",
        label_column="label",
        tracking_uri=mlflow_server,
    )
    got = pd.read_csv(tmp_path / "b.csv")
    expected, _ = load_model(folder).predict(data)
    assert baseline.rows == len(data) and list(got["prediction"]) == list(expected)


@pytest.mark.mlflow
@pytest.mark.slow
def test_push_of_a_crafted_model_registers_nothing(
    mlflow_server: str, tmp_path: Path, xgb_json: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    crafted = copy.deepcopy(xgb_json)
    _tree(crafted)["left_children"][0] = 5000
    path = tmp_path / "model.json"
    path.write_text(json.dumps(crafted))
    argv = ["model", "push", str(path), "--name", "crafted-xgb", "--no-require-verdict",
            "--tracking-uri", mlflow_server]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "left child 5000" in err[0]
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    assert client.search_registered_models("name = 'crafted-xgb'") == []


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_categorical_features_arrive_as_text_and_predict_as_categories(
    tmp_path: Path, framework: str
) -> None:
    from mlci_lib.serving.server import ModelService

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"amount": rng.random(300), "city": pd.Categorical(rng.choice(list("pqrstuvw"), 300))}
    )
    label = ((frame["amount"] > 0.5) ^ frame["city"].isin(list("pqr"))).astype(int)
    if framework == "xgboost":
        model: Any = xgb.XGBClassifier(n_estimators=10, enable_categorical=True, max_cat_to_onehot=1)
    else:
        model = lgb.LGBMClassifier(n_estimators=10, min_data_per_group=5, cat_smooth=1, verbose=-1)
    model.fit(frame, label)
    loaded = load_model(save_model(model, tmp_path / "m", sample_input=frame.head()))
    # A request gives the category as text, in an order and subset of its own.
    rows = frame.iloc[::-7].astype({"city": str})
    status, body = ModelService(loaded).predict_body(rows.to_json(orient="records").encode())
    assert status == 200, body
    assert body["predictions"] == list(model.predict(frame.iloc[::-7]))
    np.testing.assert_allclose(body["probabilities"], model.predict_proba(frame.iloc[::-7]), rtol=1e-6)
