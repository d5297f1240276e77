"""Intervals for comparing a canary with the stable version from the counts Prometheus keeps.

- A difference of two proportions (error rates, class shares): Newcombe's hybrid score interval
  (his method 10), the difference of the two Wilson score intervals combined. Unlike the Wald
  interval it stays honest at zero or few events: 0 errors in 20 requests gives a wide interval,
  not a certain 0, so too little traffic is inconclusive rather than a pass.
- A latency quantile from histogram buckets: the bucket counts of each side are resampled
  multinomially (a bootstrap of the requests, which a histogram describes only by their bucket),
  and each resample's quantile is interpolated within its bucket exactly as PromQL's
  ``histogram_quantile`` does; the interval is the gate's percentile interval of the difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def wilson(events: int, total: int, confidence: float) -> tuple[float, float]:
    """Wilson's score interval of a proportion ``events / total`` (``total`` > 0)."""
    z = z_value(confidence)
    p = events / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    # At 0 or all events the bound is exactly 0 or 1 (the formula leaves a rounding residue).
    low = 0.0 if events == 0 else max(0.0, centre - half)
    high = 1.0 if events == total else min(1.0, centre + half)
    return low, high


def proportion_difference(
    events_a: int, total_a: int, events_b: int, total_b: int, confidence: float
) -> tuple[float, tuple[float, float]]:
    """``p_a - p_b`` and Newcombe's hybrid score interval of it (both totals > 0)."""
    p_a, p_b = events_a / total_a, events_b / total_b
    low_a, high_a = wilson(events_a, total_a, confidence)
    low_b, high_b = wilson(events_b, total_b, confidence)
    difference = p_a - p_b
    low = difference - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    high = difference + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    return difference, (low, high)


def histogram_quantile(q: float, bounds: Sequence[float], counts: "np.ndarray") -> "np.ndarray":
    """PromQL's ``histogram_quantile`` over rows of per-bucket (not cumulative) counts.

    ``bounds`` are the buckets' upper bounds, ascending, the last one +Inf. A rank in the +Inf
    bucket gives the highest finite bound, as Prometheus does; a row with no observation, NaN.
    """
    import numpy as np

    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    upper = np.asarray(bounds, dtype=np.float64)
    cumulative = np.cumsum(counts, axis=1)
    total = cumulative[:, -1]
    rank = q * total
    index = np.argmax(cumulative >= rank[:, None], axis=1)
    rows = np.arange(len(counts))
    below = np.where(index > 0, cumulative[rows, np.maximum(index - 1, 0)], 0.0)
    inside = cumulative[rows, index] - below
    start = np.where(index > 0, upper[np.maximum(index - 1, 0)], np.minimum(0.0, upper[0]))
    end = upper[index]
    with np.errstate(invalid="ignore", divide="ignore"):
        value = start + (end - start) * (rank - below) / inside
    last_finite = upper[-2] if len(upper) > 1 else math.nan
    value = np.where(index == len(upper) - 1, last_finite, value)
    out: np.ndarray = np.where(total > 0, value, np.nan)
    return out


def resample_buckets(counts: Sequence[int], resamples: int, rng: "np.random.Generator") -> "np.ndarray":
    """``resamples`` multinomial redraws of the requests behind per-bucket counts, (resamples, buckets)."""
    import numpy as np

    array = np.asarray(counts, dtype=np.int64)
    total = int(array.sum())
    if total == 0:
        return np.zeros((resamples, len(array)))
    return rng.multinomial(total, array / total, size=resamples).astype(np.float64)
