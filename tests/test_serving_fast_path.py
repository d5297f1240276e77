"""The serving fast path answers exactly what the model answers on a DataFrame, for every model kind.

The fast path (:mod:`mlci_lib.serving.fast_path`) hands a numeric model the bare float64 matrix
and takes a classifier's labels from its probabilities; both are chosen at load. These tests run
real fitted models (the conformance matrix's kinds, plus all-numeric ones where the fast path
engages) through :class:`ModelService` on JSON bodies and compare, to the last bit, with the
estimator's own ``predict`` / ``predict_proba`` on the DataFrame.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlci_lib.models import load_model, save_model
from mlci_lib.serving import ModelService, fast_path
from tests.test_conformance import KINDS, TARGET, Kind, table

pytestmark = pytest.mark.slow


def _json_body(frame: pd.DataFrame) -> bytes:
    """Rows as a client sends them: plain JSON values, null for a missing one, floats exact."""

    def cell(value: Any) -> Any:
        if value is pd.NA or value is None:
            return None
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, np.generic):
            return cell(value.item())
        return value

    rows = [{k: cell(v) for k, v in row.items()} for row in frame.astype(object).to_dict("records")]
    return json.dumps({"rows": rows}).encode()


def _served(
    model_path: Path, warm: pd.DataFrame, sample: pd.DataFrame
) -> tuple[ModelService, dict[str, Any]]:
    service = ModelService(load_model(model_path))
    service.warm_up(warm)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fast path that warns would warn on every request
        status, answer = service.predict_body(_json_body(sample))
    assert status == 200, answer
    return service, answer


def _assert_exact(answer: dict[str, Any], predictions: Any, probabilities: Any | None) -> None:
    assert answer["predictions"] == np.asarray(predictions).tolist()
    if probabilities is None:
        assert "probabilities" not in answer
    else:
        np.testing.assert_array_equal(np.asarray(answer["probabilities"]), probabilities)


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return {"train": table(600, 0), "eval": table(120, 1)}


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS, ids=[k.id for k in KINDS])
def test_every_conformance_kind_answers_as_its_own_predict(
    kind: Kind, tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    train, evaluation = tables["train"], tables["eval"]
    x_train, x_eval = kind.features(train), kind.features(evaluation)
    estimator = kind.build()
    if estimator is not None:
        estimator.fit(x_train, train[TARGET[kind.task]])
    if kind.export is not None:
        model_path = kind.export(estimator, x_train, train, tmp_path)
    else:
        model_path = save_model(estimator, tmp_path / "model", sample_input=x_train.head(20), name=kind.id)
    _service, answer = _served(model_path, x_train.head(20), x_eval)
    if kind.export is not None:  # an ONNX file: its own answer is onnxruntime's, in process
        predictions, probabilities = load_model(model_path).predict(x_eval)
        if probabilities is not None:
            # The served probabilities come from the same graph run; compare as the ONNX path does.
            np.testing.assert_allclose(np.asarray(answer["probabilities"]), probabilities, rtol=1e-6)
        assert answer["predictions"] == np.asarray(predictions).tolist()
        return
    own_proba = estimator.predict_proba(x_eval) if kind.task != "regression" else None
    _assert_exact(answer, estimator.predict(x_eval), own_proba)


def _numeric(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"f{i}" for i in range(6)])
    frame["count"] = rng.integers(0, 10, n)
    return frame


def _label(frame: pd.DataFrame, classes: int) -> Any:
    score = frame.f0 + frame.f1 * frame.f2 + 0.3 * frame["count"]
    if classes == 2:
        return np.where(score > 1, "yes", "no")
    return pd.cut(score, [-np.inf, 0, 1.5, np.inf], labels=["low", "mid", "high"]).astype(str)


def _sklearn(name: str) -> Callable[[], Any]:
    def build() -> Any:
        from sklearn.ensemble import (
            GradientBoostingClassifier,
            HistGradientBoostingClassifier,
            HistGradientBoostingRegressor,
            RandomForestClassifier,
        )
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.model_selection import FixedThresholdClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVC

        return {
            "hgb": lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
            "hgb-regressor": lambda: HistGradientBoostingRegressor(max_iter=30, random_state=0),
            "logistic": lambda: LogisticRegression(max_iter=500),
            "scaled-logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
            "random-forest": lambda: RandomForestClassifier(20, random_state=0),
            "gradient-boosting": lambda: GradientBoostingClassifier(n_estimators=20, random_state=0),
            "svc": lambda: SVC(probability=True, random_state=0),
            "fixed-threshold": lambda: FixedThresholdClassifier(LogisticRegression(), threshold=0.8),
            "ridge": lambda: Ridge(),
        }[name]()

    return build


def _lightgbm() -> Any:
    import lightgbm

    return lightgbm.LGBMClassifier(n_estimators=20, num_leaves=8, random_state=0, verbose=-1)


#: (id, build, classes, whether the bare matrix and the one-pass labels are expected)
NUMERIC = [
    ("hgb", _sklearn("hgb"), 2, (True, True)),
    ("hgb-multiclass", _sklearn("hgb"), 3, (True, True)),
    ("hgb-regressor", _sklearn("hgb-regressor"), 0, (True, False)),
    ("logistic", _sklearn("logistic"), 2, (True, True)),
    ("logistic-multiclass", _sklearn("logistic"), 3, (True, True)),
    ("scaled-logistic", _sklearn("scaled-logistic"), 2, (True, True)),
    ("random-forest", _sklearn("random-forest"), 3, (True, True)),
    ("gradient-boosting", _sklearn("gradient-boosting"), 2, (True, False)),
    ("svc", _sklearn("svc"), 2, (True, False)),
    ("fixed-threshold", _sklearn("fixed-threshold"), 2, (False, False)),
    ("ridge", _sklearn("ridge"), 0, (True, False)),
    ("lightgbm", _lightgbm, 3, (None, True)),
]


@pytest.mark.parametrize(
    ("build", "classes", "expected"), [n[1:] for n in NUMERIC], ids=[n[0] for n in NUMERIC]
)
def test_numeric_models_take_the_fast_path_with_the_same_answers(
    build: Callable[[], Any], classes: int, expected: tuple[bool | None, bool], tmp_path: Path
) -> None:
    train, sample = _numeric(400, 0), _numeric(200, 1)
    target = _label(train, classes) if classes else train.f0 * 3 + train["count"]
    estimator = build().fit(train, target)
    model_path = save_model(estimator, tmp_path / "model", sample_input=train.head(20), name="numeric")
    service, answer = _served(model_path, train.head(5), sample)
    bare, one_pass = expected
    assert service.fast_path["matrix"]
    if bare is not None:
        assert service.fast_path["bare_matrix"] is bare
    assert service.fast_path["one_pass"] is one_pass
    proba = estimator.predict_proba(sample) if classes else None
    _assert_exact(answer, estimator.predict(sample), proba)


def test_labels_from_tied_probabilities_are_the_models_own_decision() -> None:
    """A score just above 0 rounds to probability 1/2 for both classes: argmax says the first
    class, LogisticRegression's predict says the second. The fast path must say the second."""
    from sklearn.linear_model import LogisticRegression

    train = _numeric(300, 0)[["f0", "f1"]]
    model = LogisticRegression(fit_intercept=False).fit(train, np.where(train.f0 > 0, "yes", "no"))
    weights = model.coef_[0]
    rows = pd.DataFrame([weights * (1e-18 / float(weights @ weights)), [1.0, 0.0]], columns=["f0", "f1"])
    assert model.decision_function(rows)[0] > 0
    probabilities = model.predict_proba(rows)
    assert probabilities[0, 0] == probabilities[0, 1] == 0.5
    naive = model.classes_[probabilities.argmax(axis=1)]
    own = model.predict(rows)
    assert naive[0] != own[0]  # the case the fast path guards against
    assert fast_path.labels_from_probabilities(model, rows, probabilities).tolist() == own.tolist()
    assert fast_path.verify_labels(model, rows)


def test_the_view_is_refused_when_names_differ_and_shares_the_fitted_state() -> None:
    from sklearn.linear_model import LogisticRegression

    train = _numeric(100, 0)
    model = LogisticRegression().fit(train, _label(train, 2))
    names = list(train.columns)
    assert fast_path.matrix_view(model, names[::-1]) is None
    assert fast_path.matrix_view(model, names[:-1]) is None
    view = fast_path.matrix_view(model, names)
    assert view is not None and view is not model
    assert not hasattr(view, "feature_names_in_") and hasattr(model, "feature_names_in_")
    assert view.coef_ is model.coef_  # a shallow copy: no second copy of the model in memory
    fitted_on_array = LogisticRegression().fit(train.to_numpy(), _label(train, 2))
    assert fast_path.matrix_view(fitted_on_array, names) is fitted_on_array
    assert fast_path.matrix_view(fitted_on_array, names[:-1]) is None


def test_a_mixed_frame_model_keeps_the_dataframe_path(
    tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    kind = next(k for k in KINDS if k.id == "logistic-regression")
    train = tables["train"]
    estimator = kind.build().fit(kind.features(train), train["label"])
    model_path = save_model(estimator, tmp_path / "model", sample_input=kind.features(train).head(20))
    service, _answer = _served(model_path, kind.features(train).head(5), kind.features(tables["eval"]))
    assert service.fast_path == {"matrix": False, "bare_matrix": False, "one_pass": True}
