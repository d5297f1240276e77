"""Performance in production: realized on joined labels, estimated from probabilities before them.

**Realized** performance is the gate's: the metrics of :mod:`mlci_lib.gate.metrics` on the rows a
labels file joined, with the gate's bootstrap intervals, decided by the gate's rule checks.

**Estimated** performance is confidence-based performance estimation (CBPE). When a classifier is
calibrated, a row predicted with probability p for its predicted class is right with probability
p, and its true class k is drawn with the probabilities the model gave: so the expected confusion
matrix of a window is ``E[conf[k, j]] = sum of p_ik over the rows predicted j``, and every metric of
the confusion matrix has an estimate (expected accuracy is the mean probability of the predicted
class). The estimate holds only when the model is calibrated, so calibration is checked on the
labelled evaluation set first:

- the expected calibration error (ECE) of the predicted-class probability, over equal-width bins;
- a reliability test: in each bin the count of right predictions is a sum of independent
  Bernoulli(p_i) under calibration, so ``T = Σ_b (right_b − Σ p_i)² / Σ p_i(1 − p_i)`` is about
  chi-square with one degree of freedom per bin.

The model counts as *not calibrated* when its ECE is above ``max_ece`` and the test rejects
calibration at 5%: the miscalibration is both large and not noise. Then the estimate is reported
but flagged, and a rule on it is undefined (never a pass).

The estimate's interval is a parametric bootstrap of the realized metric, given the window's
probabilities: each resample draws the calibration error of every confidence bin from what the
evaluation set measured (its gap, right share − mean probability, and that gap's standard error;
an empty bin gets a gap of 0 ± 0.5), moves the predicted-class probabilities by it, and draws the
labels' confusion matrix from its normal approximation (per predicted class, the sum of the rows'
categorical draws: mean Σ q_i, covariance Σ diag(q_i) − q_i q_iᵀ). The interval thus covers both
the labels' chance and the measured calibration error, at the verdict's confidence.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from mlci_lib.gate.bootstrap import BootstrapSettings, Draws
    from mlci_lib.gate.results import RuleResult
    from mlci_lib.gate.rules import MetricRule

#: Significance of the reliability test.
RELIABILITY_ALPHA = 0.05


@dataclasses.dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    rows: int
    confidence: float | None
    accuracy: float | None


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Calibration of the predicted-class probability on the labelled evaluation set."""

    source: str
    rows: int
    bins: tuple[CalibrationBin, ...]
    ece: float
    max_ece: float
    #: The reliability test's statistic, degrees of freedom and p-value.
    statistic: float
    dof: int
    p_value: float
    calibrated: bool
    message: str


def predicted_confidence(proba: "np.ndarray", predicted: "np.ndarray") -> "np.ndarray":
    import numpy as np

    picked: np.ndarray = proba[np.arange(len(predicted)), predicted]
    return picked


def _bin_of(confidence: "np.ndarray", bins: int) -> "np.ndarray":
    import numpy as np

    return np.minimum((confidence * bins).astype(np.int64), bins - 1)


def check_calibration(
    proba: "np.ndarray",
    predicted: "np.ndarray",
    labels: "np.ndarray",
    *,
    bins: int = 10,
    max_ece: float = 0.05,
    source: str = "evaluation set",
) -> Calibration:
    """ECE and the reliability test of ``proba`` (rows x classes) against class-index ``labels``."""
    import numpy as np
    from scipy import stats

    confidence = predicted_confidence(proba, predicted)
    right = (predicted == labels).astype(np.float64)
    index = _bin_of(confidence, bins)
    count = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    right_sum = np.bincount(index, weights=right, minlength=bins)
    var_sum = np.bincount(index, weights=confidence * (1 - confidence), minlength=bins)
    n = len(confidence)
    table = []
    for b in range(bins):
        rows = int(count[b])
        table.append(
            CalibrationBin(
                low=b / bins,
                high=(b + 1) / bins,
                rows=rows,
                confidence=float(conf_sum[b] / rows) if rows else None,
                accuracy=float(right_sum[b] / rows) if rows else None,
            )
        )
    ece = float(np.abs(right_sum - conf_sum).sum() / n) if n else math.nan
    present = count > 0
    statistic = float(((right_sum - conf_sum)[present] ** 2 / np.maximum(var_sum[present], 1e-9)).sum())
    dof = int(present.sum())
    p_value = float(stats.chi2.sf(statistic, dof)) if dof else math.nan
    calibrated = not (ece > max_ece and p_value < RELIABILITY_ALPHA)
    if calibrated and not ece > max_ece:
        message = (
            f"calibrated on {source}: ECE {ece:.4f} (max {max_ece:g}), reliability test p = {p_value:.3g}"
        )
    elif calibrated:
        message = (
            f"taken as calibrated on {source}: ECE {ece:.4f} is above {max_ece:g}, but the reliability "
            f"test does not reject calibration (p = {p_value:.3g}): on {n:,} rows that gap may be noise, "
            "and the estimate's interval carries it"
        )
    else:
        message = (
            f"not calibrated on {source}: ECE {ece:.4f} is above {max_ece:g} and the reliability test "
            f"rejects calibration (p = {p_value:.3g}), so estimated performance is not valid for this model"
        )
    return Calibration(
        source=source,
        rows=n,
        bins=tuple(table),
        ece=ece,
        max_ece=max_ece,
        statistic=statistic,
        dof=dof,
        p_value=p_value,
        calibrated=calibrated,
        message=message,
    )


def calibration_gaps(
    proba: "np.ndarray", predicted: "np.ndarray", labels: "np.ndarray", bins: int
) -> tuple["np.ndarray", "np.ndarray"]:
    """Per confidence bin on the evaluation set: right share − mean probability, and its standard error."""
    import numpy as np

    confidence = predicted_confidence(proba, predicted)
    index = _bin_of(confidence, bins)
    count = np.bincount(index, minlength=bins).astype(np.float64)
    gap_sum = np.bincount(index, weights=(predicted == labels) - confidence, minlength=bins)
    var_sum = np.bincount(index, weights=confidence * (1 - confidence), minlength=bins)
    gap = np.divide(gap_sum, count, out=np.zeros(bins), where=count > 0)
    # A bin with few rows (none: ± 0.5) says little about the calibration error there.
    se = np.sqrt((var_sum + 0.25) / (count + 1) ** 2)
    return gap, se


@dataclasses.dataclass(frozen=True)
class ExpectedConfusion:
    """What the CBPE draws need from a window, computed once in one pass over its rows."""

    #: Expected confusion matrix ``[true, predicted]``.
    mean: "np.ndarray"
    #: ``slope[b, k, j]``: how the expected count ``[k, j]`` moves per unit of calibration error in bin b.
    slope: "np.ndarray"
    #: Per predicted class j, the covariance of the true-class counts of the rows predicted j.
    covariance: "np.ndarray"


def expected_confusion(proba: "np.ndarray", predicted: "np.ndarray", bins: int) -> ExpectedConfusion:
    import numpy as np

    n, k = proba.shape
    confidence = predicted_confidence(proba, predicted)
    index = _bin_of(confidence, bins)
    group = index * k + predicted
    mean = np.zeros((k, k))
    slope = np.zeros((bins, k, k))
    covariance = np.zeros((k, k, k))
    # Moving the predicted-class probability by d moves the others by -d in proportion to them.
    rest = np.divide(1.0, 1.0 - confidence, out=np.zeros(n), where=confidence < 1)
    counts = np.bincount(group, minlength=bins * k).reshape(bins, k)
    for true in range(k):
        column = proba[:, true]
        sums = np.bincount(group, weights=column, minlength=bins * k).reshape(bins, k)
        mean[true] = sums.sum(axis=0)
        moved = -np.bincount(group, weights=column * rest, minlength=bins * k).reshape(bins, k)
        slope[:, true, :] = moved
    for j in range(k):
        slope[:, j, j] = counts[:, j]
    if k <= 4:
        # A few classes: each product's sum per predicted class is one weighted count over all
        # rows, with no copy of the rows predicted j.
        for a in range(k):
            column = proba[:, a]
            totals = np.bincount(predicted, weights=column, minlength=k)
            for b in range(a, k):
                cross = np.bincount(predicted, weights=column * proba[:, b], minlength=k)
                covariance[:, a, b] = covariance[:, b, a] = -cross
            covariance[:, a, a] += totals
    else:
        for j in range(k):
            rows = proba[predicted == j]
            covariance[j] = np.diag(rows.sum(axis=0)) - rows.T @ rows
    return ExpectedConfusion(mean=mean, slope=slope, covariance=covariance)


def estimated_draws(
    summary: ExpectedConfusion,
    gap: "np.ndarray",
    se: "np.ndarray",
    names: Sequence[str],
    settings: "BootstrapSettings",
    pos_index: int | None,
) -> tuple[dict[str, float], dict[str, "Draws"]]:
    """Point estimates (the expected confusion matrix's metrics) and their parametric draws."""
    import numpy as np

    from mlci_lib.gate.bootstrap import Draws
    from mlci_lib.gate.metrics import confusion_metric

    k = summary.mean.shape[0]
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed).spawn(4)[3])
    resamples = max(settings.resamples, 1)
    shift = rng.normal(gap, se, size=(resamples, len(gap)))
    conf = summary.mean[None] + np.einsum("rb,bkj->rkj", shift, summary.slope)
    for j in range(k):
        values, vectors = np.linalg.eigh(summary.covariance[j])
        root = vectors * np.sqrt(np.clip(values, 0, None))
        conf[:, :, j] += rng.standard_normal((resamples, k)) @ root.T
    conf = np.clip(conf, 0, None)
    points = {name: float(confusion_metric(name, summary.mean, pos_index)) for name in names}
    draws = {
        name: Draws(
            values=np.asarray(confusion_metric(name, conf, pos_index)).reshape(-1, 1),
            basis=np.asarray([points[name]]),
            method="parametric: labels drawn from the calibrated probabilities, calibration error per bin",
        )
        for name in names
    }
    return points, draws


@dataclasses.dataclass(frozen=True)
class EstimatedPerformance:
    """CBPE on one version's window."""

    valid: bool
    message: str
    rows: int
    metrics: dict[str, float | None]
    intervals: dict[str, tuple[float, float] | None]
    calibration: Calibration | None


@dataclasses.dataclass(frozen=True)
class RealizedPerformance:
    """The gate's metrics on the rows of one version that got a label."""

    rows: int
    labelled_rows: int
    metrics: dict[str, float | None]
    intervals: dict[str, tuple[float, float] | None]
    message: str = ""


def check_metric_rule(
    rule: "MetricRule",
    value: float,
    *,
    baseline: float | None = None,
    draws: "Draws | None" = None,
    rows: int | None = None,
    confidence: float = 0.95,
    undefined: str = "",
) -> list["RuleResult"]:
    """Decide one metric rule as the gate decides its own, on evidence gathered here.

    ``draws`` (one model: ``values[:, 0]``) give the interval; ``baseline`` (the evaluation set's
    value) is held fixed by change checks, as the gate holds a baseline known by its metrics only;
    ``undefined`` says why ``value`` has no value, and the rule is then undefined (never a pass).
    """
    from mlci_lib.gate.checks import MetricEvidence, metric_checks

    evidence = MetricEvidence(
        candidate=value,
        baseline=baseline,
        draws=draws,
        paired=False,
        rows=rows,
        candidate_undefined=undefined,
    )
    return metric_checks(rule, evidence, confidence)


def interval_of(point: float, draws: "Draws | None", confidence: float) -> tuple[float, float] | None:
    from mlci_lib.gate.bootstrap import interval

    if draws is None or not math.isfinite(point):
        return None
    found = interval(point, draws.values[:, 0], float(draws.basis[0]), confidence)
    return None if found is None else (found.low, found.high)


def finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
