"""Estimated performance (CBPE) checked against realized performance, on real models and simulated data.

A calibrated model (logistic regression on data drawn from a logistic model) keeps its calibration
under covariate shift, so the estimate from its probabilities must hold the realized figure within
its stated interval. An overconfident model (Gaussian naive Bayes on correlated inputs, which it
treats as independent evidence) is flagged on the evaluation set, and its estimate, far from the
realized figure, never passes a rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB

from mlci_lib.gate.bootstrap import BootstrapSettings
from mlci_lib.models import save_model
from mlci_lib.monitor.performance import (
    calibration_gaps,
    check_calibration,
    estimated_draws,
    expected_confusion,
    interval_of,
)
from tests.helpers.monitoring import labels_frame, rule, run_check, serve_and_log


def simulate(
    rng: np.random.Generator, n: int, *, shift: float = 0.0, classes: int = 2
) -> tuple[pd.DataFrame, Any]:
    """Inputs (``a`` and two near-copies of it, ``b``) and labels drawn from a logistic model of them."""
    a = rng.normal(shift, 1, n)
    b = rng.normal(0, 1, n)
    frame = pd.DataFrame(
        {
            "a": a.round(4),
            "a2": (a + rng.normal(0, 0.1, n)).round(4),
            "a3": (a + rng.normal(0, 0.1, n)).round(4),
            "b": b.round(4),
        }
    )
    if classes == 2:
        p = 1 / (1 + np.exp(-(1.5 * a - b)))
        return frame, (rng.random(n) < p).astype(int)
    logits = np.column_stack([1.2 * a, -1.2 * a + 0.8 * b, np.zeros(n)])
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = (proba.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return frame, np.asarray(["low", "mid", "high"])[labels]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitor-performance")
    rng = np.random.default_rng(7)
    for classes in (2, 3):
        train, y = simulate(rng, 4000, classes=classes)
        evaluation, y_eval = simulate(rng, 3000, classes=classes)
        tag = "binary" if classes == 2 else "multiclass"
        train.assign(label=y).to_csv(root / f"train-{tag}.csv", index=False)
        evaluation.assign(label=y_eval).to_csv(root / f"eval-{tag}.csv", index=False)
        save_model(
            LogisticRegression(max_iter=500).fit(train, y),
            root / f"lr-{tag}",
            sample_input=train.head(),
            name="lr",
        )
        if classes == 2:
            save_model(GaussianNB().fit(train, y), root / "nb-binary", sample_input=train.head(), name="nb")
            save_model(Ridge().fit(train, train.a), root / "ridge", sample_input=train.head(), name="ridge")
    return root


def window(folder: Path, model: str, tag: str, *, shift: float, seed: int, n: int = 3000) -> Path:
    """Serve ``model`` on a simulated window and write its logs and its labels."""
    rng = np.random.default_rng(seed)
    rows, labels = simulate(rng, n, shift=shift, classes=2 if tag == "binary" else 3)
    logs = folder / f"logs-{model}-{seed}"
    ids = serve_and_log(folder / model, rows, logs)
    labels_frame(ids, labels).to_csv(folder / f"labels-{model}-{seed}.csv", index=False)
    return logs


def check(
    folder: Path, model: str, tag: str, logs: Path, seed: int, *extra: str
) -> tuple[int, dict[str, Any], str]:
    return run_check(
        "--logs",
        str(logs),
        "--reference",
        str(folder / f"train-{tag}.csv"),
        "--model",
        str(folder / model),
        "--evaluation",
        str(folder / f"eval-{tag}.csv"),
        "--labels",
        str(folder / f"labels-{model}-{seed}.csv"),
        *extra,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tag", "shift", "seed"),
    [("binary", 0.0, 11), ("binary", 0.8, 12), ("multiclass", 0.8, 13)],
    ids=["binary-same-inputs", "binary-shifted-inputs", "multiclass-shifted-inputs"],
)
def test_a_calibrated_models_estimate_holds_the_realized_figure(
    folder: Path, tag: str, shift: float, seed: int
) -> None:
    logs = window(folder, f"lr-{tag}", tag, shift=shift, seed=seed)
    code, verdict, err = check(
        folder,
        f"lr-{tag}",
        tag,
        logs,
        seed,
        "--rule",
        "estimated_accuracy min=0.3",
        "--rule",
        "accuracy min=0.3",
        "--config",
        str(_config(folder, drift_share=1.0)),
    )
    assert code == 0, err
    (version,) = verdict["versions"]
    estimated, realized = version["estimated"], version["realized"]
    assert estimated["valid"] is True and estimated["calibration"]["calibrated"] is True
    assert realized["labelled_rows"] == 3000
    names = ["accuracy", "precision", "recall", "f1"] if tag == "binary" else ["accuracy", "f1_macro"]
    for name in names:
        low, high = estimated["intervals"][name]
        assert low <= realized["metrics"][name] <= high, (
            name,
            estimated["metrics"][name],
            realized["metrics"][name],
        )
        assert high - low < 0.08  # a statement, not a shrug
    assert rule(version, "estimated_accuracy min")["outcome"] == "pass"
    assert rule(version, "estimated_accuracy min")["interval"] == estimated["intervals"]["accuracy"]


def _config(folder: Path, *, drift_share: float) -> Path:
    path = folder / f"monitor-{drift_share}.yml"
    # Drift is not what these tests judge: the shifted windows drift on purpose.
    path.write_text(f"drift: {{max_drift_share: {drift_share}, thresholds: {{psi: 10}}}}\nmin-rows: 500\n")
    return path


@pytest.mark.slow
def test_an_overconfident_model_is_flagged_and_its_estimate_never_passes(folder: Path) -> None:
    logs = window(folder, "nb-binary", "binary", shift=0.8, seed=21)
    code, verdict, err = check(
        folder,
        "nb-binary",
        "binary",
        logs,
        21,
        "--rule",
        "estimated_accuracy min=0.3",
        "--config",
        str(_config(folder, drift_share=1.0)),
    )
    assert code == 1, err
    (version,) = verdict["versions"]
    estimated = version["estimated"]
    calibration = estimated["calibration"]
    assert estimated["valid"] is False and calibration["calibrated"] is False
    assert calibration["ece"] > calibration["max_ece"] and calibration["p_value"] < 0.05
    outcome = rule(version, "estimated_accuracy min")
    assert outcome["outcome"] == "undefined" and "not calibrated" in outcome["message"]
    # Why the flag matters: the naive estimate is far from what the labels show.
    assert estimated["metrics"]["accuracy"] - version["realized"]["metrics"]["accuracy"] > 0.08
    assert any("not calibrated" in reason for reason in verdict["reasons"])


@pytest.mark.slow
def test_a_regressor_has_no_estimate_and_a_rule_on_one_fails(folder: Path) -> None:
    rng = np.random.default_rng(31)
    rows, _ = simulate(rng, 600)
    logs = folder / "logs-ridge"
    serve_and_log(folder / "ridge", rows, logs)
    code, verdict, _ = run_check(
        "--logs",
        str(logs),
        "--reference",
        str(folder / "train-binary.csv"),
        "--model",
        str(folder / "ridge"),
        "--rule",
        "estimated_accuracy min=0.5",
    )
    assert code == 1
    (version,) = verdict["versions"]
    assert version["estimated"] is None
    outcome = rule(version, "estimated_accuracy min")
    assert outcome["outcome"] == "undefined" and "regressor" in outcome["message"]


# -- the estimator itself, on simulated probabilities (no model) -----------------------------------


def _window_probabilities(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    logits = rng.normal(0, 1.6, (n, k))
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _draw(rng: np.random.Generator, proba: np.ndarray) -> np.ndarray:
    return (proba.cumsum(axis=1) < rng.random((len(proba), 1))).sum(axis=1)


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.slow
def test_the_interval_covers_the_realized_accuracy_at_its_confidence(k: int) -> None:
    """Over many windows of a calibrated model, the 95% interval holds the realized figure ~95% of times."""
    from mlci_lib.gate.metrics import confusion_metric

    rng = np.random.default_rng(k)
    evaluation = _window_probabilities(rng, 4000, k)
    eval_pred = evaluation.argmax(axis=1)
    eval_labels = _draw(rng, evaluation)
    assert check_calibration(evaluation, eval_pred, eval_labels).calibrated
    gap, se = calibration_gaps(evaluation, eval_pred, eval_labels, 10)
    settings = BootstrapSettings(resamples=400, seed=1)
    covered = {"accuracy": 0, "f1_macro": 0}
    windows = 80
    for w in range(windows):
        proba = _window_probabilities(rng, 2000, k) ** 1.0
        predicted = proba.argmax(axis=1)
        labels = _draw(rng, proba)
        points, draws = estimated_draws(
            expected_confusion(proba, predicted, 10),
            gap,
            se,
            list(covered),
            dataclasses_replace(settings, w),
            None,
        )
        conf = np.zeros((k, k))
        np.add.at(conf, (labels, predicted), 1)
        for name in covered:
            bounds = interval_of(points[name], draws[name], 0.95)
            assert bounds is not None
            covered[name] += bounds[0] <= float(confusion_metric(name, conf)) <= bounds[1]
    for name, hits in covered.items():
        assert hits / windows >= 0.88, (name, hits)


def dataclasses_replace(settings: BootstrapSettings, seed: int) -> BootstrapSettings:
    import dataclasses

    return dataclasses.replace(settings, seed=seed)


def test_a_sharpened_model_fails_the_calibration_check_and_a_noisy_small_one_does_not() -> None:
    rng = np.random.default_rng(5)
    true = _window_probabilities(rng, 3000, 3)
    labels = _draw(rng, true)
    sharpened = true**3 / (true**3).sum(axis=1, keepdims=True)  # overconfident: same ranking, larger maxima
    flagged = check_calibration(sharpened, sharpened.argmax(axis=1), labels)
    assert not flagged.calibrated and flagged.ece > 0.05 and flagged.p_value < 0.05
    assert "not calibrated" in flagged.message
    honest = check_calibration(true[:60], true[:60].argmax(axis=1), labels[:60])
    assert honest.calibrated  # 60 rows: a high ECE that the reliability test calls noise
