"""On point estimates, the gate decides exactly as MLflow's validate_evaluation_results.

Each MetricThreshold(threshold, min_absolute_change, min_relative_change, greater_is_better) is
written as the equivalent mlci rule (min/max, min-improvement, min-relative-improvement,
direction) and both run on the same numbers.
"""

from __future__ import annotations

import pytest

from mlci_lib.gate import run_gate

mlflow = pytest.importorskip("mlflow")  # the registry extra; installed in the test environment
from mlflow.models import EvaluationResult, MetricThreshold  # noqa: E402
from mlflow.models.evaluation.validation import (  # noqa: E402
    ModelValidationFailedException,
    validate_evaluation_results,
)

# (id, candidate, baseline, threshold, min_absolute_change, min_relative_change, greater_is_better)
CASES = [
    ("above-threshold", 0.91, 0.90, 0.9, None, None, True),
    ("below-threshold", 0.89, 0.90, 0.9, None, None, True),
    ("equal-to-threshold", 0.9, 0.90, 0.9, None, None, True),
    ("lower-better-under-max", 0.2, 0.3, 0.25, None, None, False),
    ("lower-better-over-max", 0.3, 0.3, 0.25, None, None, False),
    ("abs-change-met", 0.95, 0.90, None, 0.04, None, True),
    ("abs-change-missed", 0.93, 0.90, None, 0.04, None, True),
    ("abs-change-float-edge", 0.3, 0.1, None, 0.2, None, True),
    ("abs-change-exact", 0.75, 0.5, None, 0.25, None, True),
    ("equal-values-abs", 0.8, 0.8, None, 0.01, None, True),
    ("lower-better-abs-met", 0.10, 0.20, None, 0.05, None, False),
    ("lower-better-abs-missed", 0.18, 0.20, None, 0.05, None, False),
    ("rel-change-met", 0.99, 0.90, None, None, 0.1, True),
    ("rel-change-missed", 0.98, 0.90, None, None, 0.1, True),
    ("rel-change-zero", 0.9, 0.9, None, None, 0.0, True),
    ("rel-change-zero-worse", 0.89, 0.9, None, None, 0.0, True),
    ("zero-baseline-better", 0.1, 0.0, None, None, 0.05, True),
    ("zero-baseline-equal", 0.0, 0.0, None, None, 0.05, True),
    ("zero-baseline-lower-better", -0.1, 0.0, None, None, 0.05, False),
    ("zero-baseline-lower-equal", 0.0, 0.0, None, None, 0.5, False),
    ("negative-baseline-r2", -0.2, -0.5, None, None, 0.5, True),
    ("negative-baseline-r2-missed", -0.3, -0.5, None, None, 0.5, True),
    ("lower-better-rel-met", 8.0, 10.0, None, None, 0.2, False),
    ("lower-better-rel-missed", 8.5, 10.0, None, None, 0.2, False),
    ("all-three-pass", 0.95, 0.85, 0.9, 0.05, 0.1, True),
    ("all-three-one-fails", 0.95, 0.85, 0.96, 0.05, 0.1, True),
    ("lower-all-three", 1.0, 2.0, 1.5, 0.5, 0.4, False),
    ("int-threshold", 3, 2, 3, 1, None, True),
]


def _mlflow_passes(cand, base, threshold, abs_change, rel_change, greater) -> bool:
    thresholds = {
        "m": MetricThreshold(
            threshold=threshold,
            min_absolute_change=abs_change,
            min_relative_change=rel_change,
            greater_is_better=greater,
        )
    }
    try:
        validate_evaluation_results(
            thresholds,
            EvaluationResult(metrics={"m": cand}, artifacts={}),
            EvaluationResult(metrics={"m": base}, artifacts={}),
        )
    except ModelValidationFailedException:
        return False
    return True


def _mlci_passes(cand, base, threshold, abs_change, rel_change, greater) -> bool:
    checks: dict[str, object] = {"direction": "higher" if greater else "lower"}
    if threshold is not None:
        checks["min" if greater else "max"] = threshold
    if abs_change is not None:
        checks["min-improvement"] = abs_change
    if rel_change is not None:
        checks["min-relative-improvement"] = rel_change
    verdict = run_gate({"m": cand}, {"m": base}, {"metrics": {"m": checks}})
    assert verdict.method == "point"
    return verdict.passed


@pytest.mark.parametrize(("case", "cand", "base", "threshold", "abs_change", "rel_change", "greater"), CASES)
def test_verdict_equals_mlflow(case, cand, base, threshold, abs_change, rel_change, greater) -> None:
    expected = _mlflow_passes(cand, base, threshold, abs_change, rel_change, greater)
    assert _mlci_passes(cand, base, threshold, abs_change, rel_change, greater) == expected, case


def test_the_table_exercises_both_outcomes() -> None:
    outcomes = {_mlflow_passes(*case[1:]) for case in CASES}
    assert outcomes == {True, False}
