"""The bootstrap intervals have the coverage they claim, and noise gives inconclusive, not fail.

Simulated data with a known true difference between the candidate and the baseline: over
hundreds of seeds the 95% interval must cover the truth in about 95% of them. The tolerance is
about three binomial standard deviations, and an interval of the wrong width (a 90% or 99%
interval, or an unpaired one) falls outside it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlci_lib.gate import run_gate
from mlci_lib.gate.bootstrap import BootstrapSettings, bootstrap_metrics, interval
from mlci_lib.gate.metrics import point_metric
from mlci_lib.gate.predictions import PredictionTable, encode_tables

pytestmark = pytest.mark.slow

#: P(candidate right, baseline right) cells: candidate accuracy 0.82, baseline 0.78.
CELLS = {(1, 1): 0.70, (1, 0): 0.12, (0, 1): 0.08, (0, 0): 0.10}


def _paired_accuracy_tables(seed: int, n: int, cells=CELLS) -> tuple[PredictionTable, PredictionTable]:
    rng = np.random.default_rng(seed)
    keys = list(cells)
    picked = rng.choice(len(keys), size=n, p=[cells[k] for k in keys])
    cand_right = np.array([keys[i][0] for i in picked], dtype=bool)
    base_right = np.array([keys[i][1] for i in picked], dtype=bool)
    y = rng.integers(0, 2, n).astype(float)
    cand = np.where(cand_right, y, 1 - y)
    base = np.where(base_right, y, 1 - y)
    return PredictionTable("cand", y, cand), PredictionTable("base", y, base)


def _change_interval(verdict) -> tuple[float, float]:
    (rule,) = [r for r in verdict.rules if r.check == "max-drop"]
    assert rule.interval is not None
    return rule.interval


def _coverage_bounds(seeds: int, level: float = 0.95) -> tuple[float, float]:
    sd = math.sqrt(level * (1 - level) / seeds)
    return level - 3.2 * sd, level + 3.2 * sd


def test_accuracy_interval_covers_the_true_difference_95_percent_of_seeds() -> None:
    seeds = 400
    truth = (CELLS[(1, 0)] + CELLS[(1, 1)]) - (CELLS[(0, 1)] + CELLS[(1, 1)])
    covered = 0
    for seed in range(seeds):
        cand, base = _paired_accuracy_tables(seed, 800)
        verdict = run_gate(cand, base, rule=["accuracy max-drop=0"], seed=seed)
        low, high = _change_interval(verdict)
        covered += low <= truth <= high
    low_ok, high_ok = _coverage_bounds(seeds)
    assert low_ok <= covered / seeds <= high_ok, covered / seeds


def _auc_models(seed: int, n: int, rho: float = 0.6):
    """Binormal scores: AUC of a shift d with unit variances is Phi(d / sqrt(2))."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    z = rng.normal(size=n)
    cand = 1.2 * y + z
    base = 0.9 * y + rho * z + math.sqrt(1 - rho**2) * rng.normal(size=n)
    tables = [
        PredictionTable("cand", y.astype(float), (cand > 0.6).astype(float), score=cand),
        PredictionTable("base", y.astype(float), (base > 0.45).astype(float), score=base),
    ]
    rows, _ = encode_tables(tables)
    return rows


def _phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


@pytest.mark.parametrize(
    ("budget", "seeds", "resamples"),
    [(0, 200, 1000), (10**12, 150, 400)],
    ids=["binned-multiplier", "rows-drawn"],
)
def test_roc_auc_difference_interval_covers_the_truth(budget: int, seeds: int, resamples: int) -> None:
    truth = _phi(1.2 / math.sqrt(2)) - _phi(0.9 / math.sqrt(2))
    covered = 0
    for seed in range(seeds):
        rows = _auc_models(seed, 1500)
        settings = BootstrapSettings(resamples=resamples, seed=seed, exact_rows_budget=budget)
        draws = bootstrap_metrics(rows, ["roc_auc"], settings)["roc_auc"]
        point = point_metric("roc_auc", rows[0]) - point_metric("roc_auc", rows[1])
        diff = draws.values[:, 0] - draws.values[:, 1]
        iv = interval(point, diff, float(draws.basis[0] - draws.basis[1]), 0.95)
        assert iv is not None
        covered += iv.low <= truth <= iv.high
    low_ok, high_ok = _coverage_bounds(seeds)
    assert low_ok <= covered / seeds <= high_ok, covered / seeds


def test_zero_true_difference_is_inconclusive_not_fail() -> None:
    same = {(1, 1): 0.70, (1, 0): 0.10, (0, 1): 0.10, (0, 0): 0.10}
    outcomes = []
    for seed in range(200):
        cand, base = _paired_accuracy_tables(seed, 600, cells=same)
        verdict = run_gate(cand, base, rule=["accuracy max-drop=0"], seed=seed)
        outcomes.append(verdict.rules[0].outcome)
    fails = outcomes.count("fail") / len(outcomes)
    inconclusive = outcomes.count("inconclusive") / len(outcomes)
    # An interval straddles 0 in about 95% of seeds; it lies below 0 in about 2.5%.
    assert inconclusive >= 0.88, outcomes
    assert fails <= 0.06, outcomes


def test_inconclusive_policy_decides_the_gate() -> None:
    same = {(1, 1): 0.70, (1, 0): 0.10, (0, 1): 0.10, (0, 0): 0.10}
    cand, base = _paired_accuracy_tables(7, 600, cells=same)
    results = {}
    for policy in ("fail", "warn", "pass"):
        verdict = run_gate(cand, base, rule=["accuracy max-drop=0"], on_inconclusive=policy, seed=1)
        assert verdict.rules[0].outcome == "inconclusive"
        results[policy] = (verdict.passed, verdict.status)
    assert results == {"fail": (False, "fail"), "warn": (True, "warn"), "pass": (True, "pass")}


def test_same_seed_same_interval_and_point_estimate_is_exact() -> None:
    cand, base = _paired_accuracy_tables(3, 1000)
    first = run_gate(cand, base, rule=["accuracy max-drop=0.01", "f1_macro max-drop=0.01"], seed=11)
    again = run_gate(cand, base, rule=["accuracy max-drop=0.01", "f1_macro max-drop=0.01"], seed=11)
    other = run_gate(cand, base, rule=["accuracy max-drop=0.01", "f1_macro max-drop=0.01"], seed=12)
    assert first.to_dict() == again.to_dict()
    assert first.rules[0].interval != other.rules[0].interval
    acc = first.rules[0]
    assert acc.candidate == pytest.approx(float(np.mean(cand.predictions == cand.labels)), abs=1e-15)
    assert acc.interval[0] <= acc.value <= acc.interval[1]


def test_confusion_types_resample_like_rows() -> None:
    """Multinomial counts over (label, candidate, baseline) types give the same spread as rows."""
    cand, base = _paired_accuracy_tables(4, 1000)
    rows, _ = encode_tables([cand, base])
    draws = bootstrap_metrics(rows, ["accuracy"], BootstrapSettings(resamples=4000, seed=0))["accuracy"]
    fast_sd = np.std(draws.values[:, 0] - draws.values[:, 1])
    rng = np.random.default_rng(0)
    right = (rows[0].predictions == rows[0].labels).astype(float) - (rows[1].predictions == rows[1].labels)
    slow = [right[rng.integers(0, len(right), len(right))].mean() for _ in range(4000)]
    assert fast_sd == pytest.approx(np.std(slow), rel=0.06)
