"""The gate's metrics equal scikit-learn's, to 1e-12, on binary, multiclass and regression data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from mlci_lib.errors import InputError
from mlci_lib.gate import compute_metrics

TOL = 1e-12


def _binary(seed: int, n: int = 3000, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + rng.normal(size=n))))
    if ties:
        score = np.round(score, 2)
    return y, (score > 0.5).astype(int), score


@pytest.mark.parametrize("ties", [False, True], ids=["distinct-scores", "tied-scores"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.slow
def test_binary_metrics_equal_sklearn(seed: int, ties: bool) -> None:
    y, pred, score = _binary(seed, ties=ties)
    got = compute_metrics(y, pred, scores=score)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "precision_macro": skm.precision_score(y, pred, average="macro"),
        "recall_macro": skm.recall_score(y, pred, average="macro"),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "precision_weighted": skm.precision_score(y, pred, average="weighted"),
        "recall_weighted": skm.recall_score(y, pred, average="weighted"),
        "f1_weighted": skm.f1_score(y, pred, average="weighted"),
        "roc_auc": skm.roc_auc_score(y, score),
        "pr_auc": skm.average_precision_score(y, score),
        "log_loss": skm.log_loss(y, score),
        "brier_score": skm.brier_score_loss(y, score),
    }
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=TOL), name


def test_string_labels_with_pos_label_equal_sklearn() -> None:
    y, pred, score = _binary(5, n=500)
    names = np.array(["ham", "spam"])
    got = compute_metrics(names[y], names[pred], scores=score, pos_label="spam")
    assert got["f1"] == pytest.approx(skm.f1_score(names[y], names[pred], pos_label="spam"), abs=TOL)
    assert got["precision"] == pytest.approx(
        skm.precision_score(names[y], names[pred], pos_label="spam"), abs=TOL
    )
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(names[y], score), abs=TOL)
    assert got["log_loss"] == pytest.approx(skm.log_loss(names[y], score), abs=TOL)
    with pytest.raises(InputError, match="pos-label"):
        compute_metrics(names[y], names[pred])


@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k, n = 4, 2500
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    pred[:7] = 3  # a class predicted more often than it occurs
    got = compute_metrics(y, pred, scores=proba)
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "f1_macro": skm.f1_score(y, pred, average="macro"),
        "f1_weighted": skm.f1_score(y, pred, average="weighted"),
        "precision_macro": skm.precision_score(y, pred, average="macro"),
        "recall_weighted": skm.recall_score(y, pred, average="weighted"),
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr"),
        "pr_auc": skm.average_precision_score(y, proba),
        "log_loss": skm.log_loss(y, proba),
        "brier_score": skm.brier_score_loss(y, proba),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=TOL), name
    with pytest.raises(InputError, match="does not apply"):
        compute_metrics(y, pred, metrics=["f1"])


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=4000) * 3 + 1
    y[:5] = 0.0  # MAPE's epsilon path
    pred = y + rng.normal(size=4000)
    got = compute_metrics(y, pred)
    expected = {
        "mae": skm.mean_absolute_error(y, pred),
        "mse": skm.mean_squared_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "r2": skm.r2_score(y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred),
    }
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=TOL, abs=TOL), name


def test_undefined_and_degenerate_cases() -> None:
    # Constant target: R² divides by zero. scikit-learn substitutes 1 or 0 (force_finite); mlci
    # reports it undefined (NaN), which the gate never passes.
    assert math.isnan(compute_metrics([2.5, 2.5], [2.5, 2.5], metrics=["r2"])["r2"])
    assert math.isnan(compute_metrics([2.5, 2.5], [2.0, 3.0], metrics=["r2"])["r2"])
    # No positive prediction: precision is ill-defined (scikit-learn warns and says 0): undefined.
    assert math.isnan(compute_metrics([1, 0, 1], [0, 0, 0], metrics=["precision"])["precision"])
    with pytest.raises(InputError, match="different lengths"):
        compute_metrics([1, 0, 1], [1, 0])
    with pytest.raises(InputError, match="unknown metric"):
        compute_metrics([1, 0], [1, 0], metrics=["acuracy"])
