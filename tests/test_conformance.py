"""The conformance matrix: every kind of model a team trains, through every stage of the pipeline.

One row per model kind, one check per stage, all on real components (the frameworks themselves, the
MLflow tracking server, the serving runtime over HTTP):

    save -> load -> evaluate predictions -> gate -> model push -> baseline from the registry alias
         -> mlci serve answers as the model does in-process

The data has what real tables have: text with NaN, numbers with NaN, a pandas ``category`` column,
``bool``, nullable ``Int64`` and a feature derived from a datetime. The image stages (build, smoke)
run for one model per framework and for the ONNX runtime in ``tests/test_conformance_images.py``.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlci_lib.gate import run_gate
from mlci_lib.models import load_model, save_model
from mlci_lib.registry import baseline_predictions, promote_model, push_model
from mlci_lib.registry.baseline import predictions_frame
from mlci_lib.serving import ModelServer
from tests.helpers.components import require
from tests.test_registry import git

FEATURES = ["amount", "tenure", "region", "plan", "active", "visits", "signup_dow"]


def table(n: int, seed: int) -> pd.DataFrame:
    """A table as read_csv/read_parquet give it, with its three targets."""
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 50.0, n)
    amount[rng.random(n) < 0.05] = np.nan
    region = rng.choice(["north", "south", "east", "west"], n).astype(object)
    region[rng.random(n) < 0.05] = np.nan
    signup = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    visits = pd.array(rng.poisson(3, n), dtype="Int64")
    visits[rng.random(n) < 0.05] = pd.NA
    frame = pd.DataFrame(
        {
            "id": [f"r{seed}-{i}" for i in range(n)],
            "amount": amount,
            "tenure": rng.integers(0, 72, n),
            "region": region,
            "plan": pd.Categorical(
                rng.choice(["free", "pro", "team"], n), categories=["free", "pro", "team"]
            ),
            "active": rng.random(n) < 0.6,
            "visits": visits,
            "signup_dow": signup.dayofweek.astype("int64"),
        }
    )
    score = (
        np.nan_to_num(amount, nan=100.0) / 100
        + frame["tenure"] / 36
        + (region == "north") * 0.8
        + frame["active"] * 0.5
        + rng.normal(0, 0.4, n)
    )
    frame["label"] = (score > np.median(score)).astype(int)
    frame["tier"] = np.select(
        [score < np.quantile(score, 0.33), score < np.quantile(score, 0.66)], ["low", "mid"], "high"
    )
    frame["value"] = score * 10.0
    return frame


def _preprocess() -> Any:
    """What an ordinary scikit-learn model needs in front of it on such a table."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["amount", "tenure", "visits", "signup_dow"]
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                ["region", "plan", "active"],
            ),
        ]
    )


def _with_preprocessing(estimator: Any) -> Any:
    from sklearn.pipeline import make_pipeline

    return make_pipeline(_preprocess(), estimator)


def _as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Native-categorical learners take text as pandas categories and booleans as numbers."""
    out = frame[FEATURES].copy()
    out["region"] = out["region"].astype("category")
    out["active"] = out["active"].astype(int)
    out["visits"] = out["visits"].astype("float64")
    return out


@dataclasses.dataclass(frozen=True)
class Kind:
    id: str
    task: str  # "binary", "multiclass" or "regression"
    build: Callable[[], Any]
    #: The columns the model is fitted on, from the raw table.
    features: Callable[[pd.DataFrame], pd.DataFrame] = lambda frame: frame[FEATURES]
    #: The model as a file a user would hand over (e.g. an ONNX export) instead of save_model's
    #: folder: called with the fitted estimator, its training features, the whole training table.
    export: Callable[[Any, pd.DataFrame, pd.DataFrame, Path], Path] | None = None


def _hgb_native() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=30, categorical_features="from_dtype", random_state=0)


def _onnx_ready_pipeline() -> Any:
    """Imputer, scaler and one-hot encoder before a linear model: what converts to ONNX."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["amount", "tenure", "visits", "signup_dow"]
    prepare = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    return make_pipeline(prepare, LogisticRegression(max_iter=500))


def _onnx_pipeline(estimator: Any, train: pd.DataFrame, _table: pd.DataFrame, folder: Path) -> Path:
    """A scikit-learn pipeline converted to ONNX, as a user exports it."""
    from mlci_lib.models import LoadedModel, ModelSignature
    from mlci_lib.models.onnx_convert import convert_model

    loaded = LoadedModel(estimator, folder, "in-memory", "sha256:x", ModelSignature.infer(train), {})
    return Path(convert_model(loaded, train.head(50), folder / "model.onnx").path)


def _torch_mlp(_: Any, train: pd.DataFrame, table: pd.DataFrame, folder: Path) -> Path:
    """A PyTorch MLP on the numeric features, exported with a dynamic batch axis."""
    try:
        import torch
    except ImportError:
        require(False, "torch", "pip install torch==2.13.0 (the CPU build; in the dev extra)")
    from mlci_lib.models import ModelSignature
    from mlci_lib.models.onnx_format import annotate_onnx

    numeric = train[["tenure", "signup_dow"]].astype("float32")
    target = torch.tensor(table["label"].to_numpy(), dtype=torch.long)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    inputs = torch.tensor(numeric.to_numpy())
    for _step in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(inputs), target)
        loss.backward()
        optimizer.step()
    net.eval()
    file = folder / "mlp.onnx"
    torch.onnx.export(
        net,
        (inputs[:2],),
        str(file),
        input_names=["features"],
        output_names=["logits"],
        dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
        dynamo=False,
    )
    annotate_onnx(
        file,
        signature=ModelSignature.infer(train[["tenure", "signup_dow"]].astype("float64")),
        classes=[0, 1],
        task="classification",
        scores="logits",
    )
    return file


def _kinds() -> list[Kind]:
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    def xgb(kind: str) -> Callable[[], Any]:
        def make() -> Any:
            import xgboost

            cls = xgboost.XGBClassifier if kind == "clf" else xgboost.XGBRegressor
            return cls(
                n_estimators=30, max_depth=3, enable_categorical=True, tree_method="hist", random_state=0
            )

        return make

    def lgbm(kind: str) -> Callable[[], Any]:
        def make() -> Any:
            import lightgbm

            cls = lightgbm.LGBMClassifier if kind == "clf" else lightgbm.LGBMRegressor
            return cls(n_estimators=30, num_leaves=8, random_state=0, verbose=-1)

        return make

    def catboost() -> Any:
        from catboost import CatBoostClassifier

        return CatBoostClassifier(
            iterations=30,
            depth=4,
            random_seed=0,
            verbose=False,
            allow_writing_files=False,
            cat_features=["plan"],
        )

    return [
        Kind("logistic-regression", "binary", lambda: _with_preprocessing(LogisticRegression(max_iter=500))),
        Kind(
            "onehot-random-forest",
            "binary",
            lambda: _with_preprocessing(RandomForestClassifier(50, random_state=0)),
        ),
        Kind("hist-gradient-boosting-native-categoricals", "multiclass", _hgb_native, _as_categories),
        Kind(
            "gradient-boosting-regressor",
            "regression",
            lambda: _with_preprocessing(GradientBoostingRegressor(random_state=0)),
        ),
        Kind("ridge", "regression", lambda: _with_preprocessing(Ridge())),
        Kind(
            "svc-probability",
            "multiclass",
            lambda: _with_preprocessing(SVC(probability=True, random_state=0)),
        ),
        Kind("k-neighbours", "binary", lambda: _with_preprocessing(KNeighborsClassifier(7))),
        Kind("xgboost-classifier", "binary", xgb("clf"), _as_categories),
        Kind("xgboost-regressor", "regression", xgb("reg"), _as_categories),
        Kind("lightgbm-classifier", "multiclass", lgbm("clf"), _as_categories),
        Kind("lightgbm-regressor", "regression", lgbm("reg"), _as_categories),
        Kind(
            "catboost-classifier",
            "binary",
            catboost,
            lambda frame: (
                _as_categories(frame).assign(plan=frame["plan"].astype(str)).drop(columns=["region"])
            ),
        ),
        Kind(
            "sklearn-pipeline-as-onnx",
            "binary",
            _onnx_ready_pipeline,
            lambda frame: frame[["amount", "tenure", "visits", "signup_dow", "plan"]].astype(
                {"visits": "float64", "plan": str}
            ),
            export=_onnx_pipeline,
        ),
        Kind(
            "pytorch-mlp-as-onnx",
            "binary",
            lambda: None,
            lambda frame: frame[["tenure", "signup_dow"]].astype("float64"),
            export=_torch_mlp,
        ),
    ]


KINDS = _kinds()
TARGET = {"binary": "label", "multiclass": "tier", "regression": "value"}
RULES = {
    "binary": ["accuracy min=0.5", "roc_auc min=0.5"],
    "multiclass": ["accuracy min=0.34", "f1_macro min=0.2"],
    "regression": ["r2 min=0"],
}


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("conformance")
    return {"folder": folder, "train": table(600, 0), "eval": table(300, 1)}


def _post(url: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    body = json.dumps({"rows": rows}).encode()
    request = urllib.request.Request(url + "/predict", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def _json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a client sends them: JSON, with null for every missing value."""
    return list(json.loads(frame.to_json(orient="records", date_format="iso")))


def _same(a: Any, b: Any) -> bool:
    left, right = np.asarray(a), np.asarray(b)
    if left.dtype.kind in "fc" or right.dtype.kind in "fc":
        return bool(np.allclose(left.astype(float), right.astype(float), rtol=1e-6, atol=1e-9))
    return [str(x) for x in left.ravel()] == [str(x) for x in right.ravel()]


@pytest.mark.mlflow
@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS, ids=[k.id for k in KINDS])
def test_every_stage_for_every_model_kind(kind: Kind, tables: dict[str, Any], mlflow_server: str) -> None:
    folder: Path = tables["folder"] / kind.id
    folder.mkdir()
    train, evaluation = tables["train"], tables["eval"]
    target = TARGET[kind.task]
    x_train = kind.features(train)

    # save -> load
    estimator = kind.build()
    if estimator is not None:
        estimator.fit(x_train, train[target])
    if kind.export is not None:
        model_path = kind.export(estimator, x_train, train, folder)
    else:
        model_path = save_model(estimator, folder / "model", sample_input=x_train.head(20), name=kind.id)
    loaded = load_model(model_path)
    x_eval = kind.features(evaluation)
    predicted, proba = loaded.predict(x_eval)
    if estimator is not None and kind.export is None:
        assert _same(predicted, estimator.predict(x_eval)), "loading changed the predictions"
        if proba is not None:
            assert _same(proba, estimator.predict_proba(x_eval))
    assert (proba is not None) == (kind.task != "regression")

    # evaluate: the per-row predictions file the gate reads
    rows = predictions_frame(
        loaded, x_eval.assign(id=evaluation["id"], **{target: evaluation[target]}),
        source="evaluation data", label_column=target, id_column="id", keep_columns=(),
    )  # fmt: skip
    predictions = folder / "predictions.csv"
    rows.to_csv(predictions, index=False)

    # gate, bound to this model
    verdict = run_gate(predictions, rule=RULES[kind.task], resamples=200, seed=0, model=model_path)
    assert verdict.passed, [r.message for r in verdict.rules]
    verdict_file = folder / "verdict.json"
    verdict_file.write_text(verdict.to_json())

    # model push, then the alias, then the baseline predictions from the registry
    name = f"conformance-{kind.id}"
    pushed = push_model(
        model_path, name, verdict=verdict_file, tracking_uri=mlflow_server, git=git("c0ffee" * 6 + "0001"),
        workspace=folder,
    )  # fmt: skip
    promote_model(name, pushed.version, "champion", tracking_uri=mlflow_server, workspace=folder)
    data_file = folder / "eval-features.parquet"
    x_eval.assign(id=evaluation["id"].to_numpy(), **{target: evaluation[target].to_numpy()}).to_parquet(
        data_file
    )
    baseline = baseline_predictions(
        f"{name}@champion", data_file, folder / "baseline.csv", label_column=target, id_column="id",
        tracking_uri=mlflow_server, workspace=folder,
    )  # fmt: skip
    assert baseline.found
    from_registry = pd.read_csv(folder / "baseline.csv")
    assert _same(from_registry["prediction"], rows["prediction"]), "the registry's model predicts otherwise"

    # mlci serve answers what the model answers in-process, from JSON rows with nulls
    sample = x_eval.head(40)
    with ModelServer(model_path) as server:
        server.wait_ready(120)
        answer = _post(server.url, _json_rows(sample))
    expected, expected_proba = loaded.predict(sample)
    assert _same(answer["predictions"], expected)
    if expected_proba is not None:
        assert _same(answer["probabilities"], expected_proba)
