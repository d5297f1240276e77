"""Every metric mlci offers against scikit-learn, case by case, with the labels= scikit-learn would use.

Cases: binary, multiclass, a class of the probability columns absent from the labels, a single
class, one row, tied scores, string labels (and regression: ordinary, one row, constant labels).
Where scikit-learn raises or warns that a metric is ill-defined and substitutes a number, mlci
says undefined (NaN here). mlci's deliberate differences, checked below as such:

- any classification metric on labels of a single class is undefined (scikit-learn computes
  accuracy or log loss there: nothing is being told apart);
- R² on constant labels is undefined (scikit-learn's ``force_finite`` substitutes 1 or 0;
  ``force_finite=False`` gives the honest NaN or -inf);
- macro and weighted averages use ``zero_division=0`` for a class never predicted, as scikit-learn
  does, but without its warning: the average is defined and low.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.preprocessing import label_binarize

from mlci_lib.gate import compute_metrics
from mlci_lib.gate.metrics import METRICS

TOL = 1e-12
CLASSIFICATION = [name for name, spec in METRICS.items() if spec.family != "regression"]
REGRESSION = [name for name, spec in METRICS.items() if spec.family == "regression"]
BINARY_ONLY = {name for name, spec in METRICS.items() if spec.tasks == ("binary",)}


class Case:
    def __init__(self, y: Any, pred: Any, scores: Any, classes: list[Any], pos: Any = None) -> None:
        self.y, self.pred, self.scores, self.classes, self.pos = (
            np.asarray(y),
            np.asarray(pred),
            scores,
            classes,
            pos,
        )

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2


def _proba(rng: np.random.Generator, y_index: np.ndarray, k: int, ties: bool = False) -> np.ndarray:
    logits = rng.normal(size=(len(y_index), k))
    logits[np.arange(len(y_index)), y_index] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if ties:
        proba = np.round(proba, 1)
        proba[:, -1] = 1.0 - proba[:, :-1].sum(axis=1)
        proba = np.clip(proba, 0.0, 1.0)
    return proba


def _cases() -> dict[str, Case]:
    rng = np.random.default_rng(7)
    n = 80
    y = rng.integers(0, 2, n)
    score = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + rng.normal(size=n))))
    y3 = rng.integers(0, 3, n)
    p3 = _proba(rng, y3, 3)
    y2of3 = rng.integers(0, 2, n)  # three probability columns, class 2 never in the labels
    p2of3 = _proba(rng, y2of3, 3)
    pred2of3 = p2of3.argmax(axis=1)
    tied = np.round(score, 1)
    names = np.array(["bird", "cat", "dog"])
    ham = np.array(["ham", "spam"])
    return {
        "binary": Case(y, (score > 0.5).astype(int), score, [0, 1], 1),
        "multiclass": Case(y3, p3.argmax(axis=1), p3, [0, 1, 2]),
        "class-absent-from-labels": Case(y2of3, pred2of3, p2of3, [0, 1, 2]),
        "class-absent-from-labels-and-predictions": Case(
            y2of3, p2of3[:, :2].argmax(axis=1), p2of3, [0, 1, 2]
        ),
        "single-class-binary": Case(np.ones(n, int), (score > 0.5).astype(int), score, [0, 1], 1),
        "single-class-multiclass": Case(np.zeros(n, int), p3.argmax(axis=1), p3, [0, 1, 2]),
        "one-row": Case([1], [1], np.array([0.8]), [0, 1], 1),
        "ties-binary": Case(y, (tied > 0.5).astype(int), tied, [0, 1], 1),
        "ties-multiclass": Case(
            y3, _proba(rng, y3, 3, ties=True).argmax(axis=1), _proba(rng, y3, 3, ties=True), [0, 1, 2]
        ),
        "string-labels-multiclass": Case(names[y3], names[p3.argmax(axis=1)], p3, list(names)),
        "string-labels-binary": Case(ham[y], ham[(score > 0.5).astype(int)], score, list(ham), "spam"),
        "never-predicts-positive": Case(y, np.zeros(n, int), score, [0, 1], 1),
    }


CASES = _cases()


def _sklearn(name: str, case: Case) -> Callable[[], float]:
    y, pred, scores, classes, pos = case.y, case.pred, case.scores, case.classes, case.pos
    if case.binary:
        positive = y == pos
        proba = (
            np.column_stack([1 - scores, scores])
            if classes.index(pos) == 1
            else np.column_stack([scores, 1 - scores])
        )
    else:
        proba = scores
    kind, _, average = name.partition("_")
    table: dict[str, Callable[[], float]] = {
        "accuracy": lambda: skm.accuracy_score(y, pred),
        "balanced_accuracy": lambda: skm.balanced_accuracy_score(y, pred),
        "roc_auc": (lambda: skm.roc_auc_score(positive, scores))
        if case.binary
        else (lambda: skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)),
        "pr_auc": (lambda: skm.average_precision_score(positive, scores))
        if case.binary
        else (
            lambda: skm.average_precision_score(label_binarize(y, classes=classes), proba, average="macro")
        ),
        "log_loss": lambda: skm.log_loss(y, proba, labels=classes),
        "brier_score": (lambda: skm.brier_score_loss(positive, scores))
        if case.binary
        else (lambda: skm.brier_score_loss(y, proba, labels=classes)),
    }
    if name in table:
        return table[name]
    func = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[kind]
    if average:  # macro / weighted over the classes seen (scikit-learn's default labels), zero_division=0
        return lambda: func(y, pred, average=average, zero_division=0)
    return lambda: func(y, pred, pos_label=pos, average="binary")


def _expected(name: str, case: Case) -> float:
    """scikit-learn's value, or NaN where it raises or says the metric is ill-defined."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndefinedMetricWarning)
        warnings.filterwarnings("error", message=".*(No positive class|Only one class).*")
        try:
            value = float(_sklearn(name, case)())
        except (ValueError, UndefinedMetricWarning, UserWarning):
            return math.nan
    if len(set(case.y.tolist())) < 2:
        return math.nan  # mlci: one class in the labels is undefined for every metric
    return value


def _mlci(name: str, case: Case) -> float:
    task = "binary" if case.binary else "multiclass"
    classes = None if case.binary else case.classes
    return compute_metrics(
        case.y, case.pred, scores=case.scores, metrics=[name], task=task, pos_label=case.pos, classes=classes
    )[name]


PAIRS = [
    (name, case)
    for case in CASES
    for name in CLASSIFICATION
    if not (name in BINARY_ONLY and not CASES[case].binary)
]


@pytest.mark.parametrize("name, case", PAIRS, ids=[f"{c}-{n}" for n, c in PAIRS])
@pytest.mark.slow
def test_classification_metric_equals_sklearn_or_is_undefined(name: str, case: str) -> None:
    expected, got = _expected(name, CASES[case]), _mlci(name, CASES[case])
    if math.isnan(expected):
        assert math.isnan(got), f"{name} on {case}: scikit-learn finds it ill-defined, mlci says {got}"
    else:
        assert got == pytest.approx(expected, abs=TOL), f"{name} on {case}"


@pytest.mark.slow
def test_the_cases_cover_what_they_name() -> None:
    undefined = {(n, c) for n, c in PAIRS if math.isnan(_expected(n, CASES[c]))}
    assert ("roc_auc", "class-absent-from-labels") in undefined
    assert ("pr_auc", "class-absent-from-labels") in undefined
    assert ("precision", "never-predicts-positive") in undefined
    assert all((n, "single-class-binary") in undefined for n in CLASSIFICATION)
    # The multiclass Brier score counts the probability column of a class the labels lack.
    case = CASES["class-absent-from-labels-and-predictions"]
    assert not set(case.y.tolist()) | set(case.pred.tolist()) >= {2}
    assert _mlci("brier_score", case) == pytest.approx(
        skm.brier_score_loss(case.y, case.scores, labels=[0, 1, 2]), abs=TOL
    )


REGRESSION_CASES = {
    "ordinary": (np.linspace(0, 10, 50), np.linspace(0, 10, 50) + np.sin(np.arange(50))),
    "one-row": (np.array([2.0]), np.array([3.0])),
    "constant-labels": (np.full(20, 4.0), np.linspace(3, 5, 20)),
    "constant-labels-perfect": (np.full(20, 4.0), np.full(20, 4.0)),
    "zero-labels": (np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 2.5])),
}
_REG_SKLEARN = {
    "mae": skm.mean_absolute_error,
    "mse": skm.mean_squared_error,
    "rmse": skm.root_mean_squared_error,
    "mape": skm.mean_absolute_percentage_error,
    # force_finite=False: the value without scikit-learn's substitution for a zero denominator
    "r2": lambda y, p: skm.r2_score(y, p, force_finite=False),
}
REG_PAIRS = [(n, c) for c in REGRESSION_CASES for n in REGRESSION]


@pytest.mark.parametrize("name, case", REG_PAIRS, ids=[f"{c}-{n}" for n, c in REG_PAIRS])
def test_regression_metric_equals_sklearn_or_is_undefined(name: str, case: str) -> None:
    y, pred = REGRESSION_CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndefinedMetricWarning)
        try:
            expected = float(_REG_SKLEARN[name](y, pred))
        except UndefinedMetricWarning:
            expected = math.nan
    got = compute_metrics(y, pred, metrics=[name], task="regression")[name]
    if not math.isfinite(expected):
        assert math.isnan(got), f"{name} on {case}: scikit-learn gives {expected}, mlci {got}"
    else:
        assert got == pytest.approx(expected, rel=TOL, abs=TOL)


def test_every_metric_is_covered() -> None:
    assert {n for n, _ in PAIRS} | {n for n, _ in REG_PAIRS} == set(METRICS)


def _with_proba(y: np.ndarray, pred: np.ndarray, proba: np.ndarray) -> Any:
    import pandas as pd

    frame = pd.DataFrame({"id": np.arange(len(y)), "label": y, "prediction": pred})
    for k in range(proba.shape[1]):
        frame[f"proba_{k}"] = proba[:, k]
    return frame


def test_candidate_scores_the_same_alone_and_next_to_a_baseline() -> None:
    from mlci_lib.gate import run_gate

    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 200)  # class 2 never in the labels
    cand_p, base_p = _proba(rng, y, 3), _proba(rng, y, 3)
    cand = _with_proba(y, cand_p[:, :2].argmax(axis=1), cand_p)  # never predicts class 2
    base = _with_proba(y, base_p.argmax(axis=1), base_p)  # sometimes does
    assert (base["prediction"] == 2).any()
    names = [
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "precision_weighted",
        "log_loss",
        "brier_score",
        "roc_auc",
    ]
    alone = run_gate(cand, rule=[f"{n} min=-1" for n in names], resamples=0).candidate["metrics"]
    paired = run_gate(cand, base, rule=[f"{n} min=-1 max-drop=1" for n in names], resamples=0).candidate[
        "metrics"
    ]
    assert alone == paired
    assert alone["roc_auc"] is None  # class 2 absent from the labels
    assert alone["brier_score"] == pytest.approx(skm.brier_score_loss(y, cand_p, labels=[0, 1, 2]), abs=TOL)


def test_a_baseline_cannot_turn_a_binary_candidate_multiclass() -> None:
    import pandas as pd

    from mlci_lib.errors import InputError
    from mlci_lib.gate import run_gate

    rng = np.random.default_rng(12)
    y = rng.integers(0, 2, 100)
    cand = pd.DataFrame({"label": y, "prediction": y, "score": y * 0.8 + 0.1})
    base = cand.assign(prediction=np.where(np.arange(100) == 5, 2, y))
    assert run_gate(cand, rule=["precision min=0.5"], resamples=0).task == "binary"
    with pytest.raises(InputError, match="predicts a class the candidate's binary task does not have"):
        run_gate(cand, base, rule=["precision max-drop=0.1"], resamples=0)
