"""An undefined metric is the outcome 'undefined', with its reason, and never passes a required rule:
candidate alone, next to a baseline (per-row or metrics file), slices and gaps, every bootstrap path
(point estimates, row draws, the confusion multinomial, the Gaussian multiplier over score bins),
whatever on-inconclusive says; the verdict JSON, the text and the Markdown say so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlci_lib.gate import run_gate
from mlci_lib.gate.render import verdict_markdown, verdict_text
from mlci_lib.gate.results import GateVerdict
from mlci_lib.report.verdicts import load_verdict


def _frame(n: int, *, single_class: bool = False, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.ones(n, dtype=int) if single_class else rng.integers(0, 2, n)
    score = 1 / (1 + np.exp(-(1.5 * (2 * rng.integers(0, 2, n) - 1) + rng.normal(size=n))))
    return pd.DataFrame(
        {"id": np.arange(n), "label": y, "prediction": (score > 0.5).astype(int), "score": score}
    )


def _rule(v: GateVerdict, name: str) -> dict:
    return next(r for r in v.to_dict()["rules"] if r["rule"] == name)


POLICIES = ["fail", "warn", "pass"]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("resamples", [0, 200], ids=["point", "bootstrap"])
@pytest.mark.parametrize("metric", ["roc_auc", "pr_auc", "accuracy", "f1", "log_loss", "brier_score"])
@pytest.mark.slow
def test_single_class_candidate_alone_is_undefined_and_fails(
    metric: str, resamples: int, policy: str
) -> None:
    rule_text = f"{metric} max=10" if metric in ("log_loss", "brier_score") else f"{metric} min=0.0"
    v = run_gate(
        _frame(300, single_class=True), rule=[rule_text], resamples=resamples, on_inconclusive=policy
    )
    rule = v.rules[0]
    assert rule.outcome == "undefined" and v.passed is False and v.status == "fail"
    assert "one class" in rule.message and rule.candidate is None and rule.value is None
    assert v.counts["undefined"] == 1
    assert v.failing() == [rule]


@pytest.mark.parametrize("check", ["max-drop=0.05", "min-improvement=-1", "max-relative-drop=0.5"])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.slow
def test_undefined_next_to_a_baseline_fails_whatever_the_policy(check: str, policy: str) -> None:
    cand = _frame(300, single_class=True)
    base = _frame(300, single_class=True, seed=1)
    v = run_gate(cand, base, rule=[f"roc_auc {check}"], resamples=200, on_inconclusive=policy)
    assert [r.outcome for r in v.rules] == ["undefined"] and not v.passed


def test_undefined_baseline_fails_a_comparison_but_not_the_candidates_own_threshold(tmp_path: Path) -> None:
    cand = _frame(300)
    base = cand.assign(prediction=0)  # never predicts positive: precision undefined on the baseline
    v = run_gate(cand, base, rule=["precision min=0.0 max-drop=0.05"], resamples=200)
    outcomes = {r.check: r for r in v.rules}
    assert outcomes["min"].outcome == "pass"
    assert outcomes["max-drop"].outcome == "undefined" and "baseline" in outcomes["max-drop"].message
    assert "no row is predicted 1" in outcomes["max-drop"].message and not v.passed


def test_metrics_file_baseline_and_per_row_undefined_candidate(tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"roc_auc": 0.8}))
    v = run_gate(_frame(300, single_class=True), str(base), rule=["roc_auc max-drop=0.5"], resamples=200)
    assert v.rules[0].outcome == "undefined" and v.rules[0].baseline == 0.8 and not v.passed


def test_gaussian_score_bin_path_keeps_undefined() -> None:
    # 60,000 rows x 1000 resamples is past the exact-row budget: ROC AUC uses the binned Gaussian path.
    v = run_gate(
        _frame(60_000, single_class=True), rule=["roc_auc min=0.5"], resamples=1000, on_inconclusive="pass"
    )
    assert v.rules[0].outcome == "undefined" and not v.passed


def test_r2_on_one_row_and_constant_labels() -> None:
    one = pd.DataFrame({"label": [1.5], "prediction": [1.4]})
    const = pd.DataFrame({"label": [2.0] * 50, "prediction": np.linspace(1.5, 2.5, 50)})
    for frame, reason in ((one, "at least two rows"), (const, "constant")):
        v = run_gate(frame, rule=["r2 min=-100"], task="regression", resamples=0, on_inconclusive="pass")
        assert v.rules[0].outcome == "undefined" and reason in v.rules[0].message and not v.passed


def test_multiclass_auc_with_a_class_absent_from_the_labels() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    proba = rng.dirichlet([1, 1, 1], 200)
    frame = pd.DataFrame({"label": y, "prediction": proba.argmax(axis=1)})
    for k in range(3):
        frame[f"proba_{k}"] = proba[:, k]
    v = run_gate(frame, rule=["roc_auc min=0.0", "accuracy min=0.0"], resamples=200)
    outcomes = {r.metric: r for r in v.rules}
    assert (
        outcomes["roc_auc"].outcome == "undefined" and "class 2 never occurs" in outcomes["roc_auc"].message
    )
    assert outcomes["accuracy"].outcome == "pass" and not v.passed


def test_optional_undefined_rule_warns() -> None:
    rules = {"metrics": {"roc_auc": {"min": 0.5, "required": False}}}
    v = run_gate(_frame(300, single_class=True), rules=rules, resamples=0)
    assert v.rules[0].outcome == "undefined" and v.passed and v.status == "warn"


def test_slice_and_gap_with_an_undefined_slice_fail() -> None:
    frame = _frame(400)
    frame["region"] = np.where(np.arange(400) < 200, "eu", "us")
    frame.loc[frame["region"] == "us", "label"] = 1  # one class in 'us': its AUC is undefined
    v = run_gate(
        frame, rule=["slice:roc_auc min=0.0 max-gap=1.0"], slice_column=["region"], on_inconclusive="pass"
    )
    by_rule = {r.rule: r for r in v.rules}
    assert by_rule["roc_auc min [region=us]"].outcome == "undefined"
    assert by_rule["roc_auc min [region=eu]"].outcome == "pass"
    gap = by_rule["roc_auc max-gap [region]"]
    assert gap.outcome == "undefined" and "region=us" in gap.message and not v.passed


def test_undefined_in_json_text_markdown_and_report(tmp_path: Path) -> None:
    v = run_gate(_frame(300, single_class=True), rule=["roc_auc min=0.5"], resamples=200)
    data = v.to_dict()
    text = json.dumps(data, allow_nan=False)  # JSON has no NaN: undefined values are null
    assert data["candidate"]["metrics"]["roc_auc"] is None and data["counts"]["undefined"] == 1
    assert "UNDEFINED" in verdict_text(v) and "one class" in verdict_text(v)
    markdown = verdict_markdown(v)
    assert "❌ undefined" in markdown and "one class" in markdown
    path = tmp_path / "verdict.json"
    path.write_text(text)
    assert load_verdict(path).passed is False  # the report reads the new outcome
