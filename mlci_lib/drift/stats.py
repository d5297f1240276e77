"""Drift statistics on one feature: PSI, Kolmogorov-Smirnov, chi-square, Jensen-Shannon.

Numeric features are sorted once per side; every statistic is computed from the sorted arrays
(binning on reference quantiles is a ``searchsorted`` of the bin edges, not of the data), so a
feature of a million rows costs two sorts. Categorical features are counted by level: levels
the reference never had land in an ``(unseen)`` bucket, rare reference levels beyond
``max_levels`` in ``(other)``, and missing values have their own bucket on both kinds.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: Proportions are floored at this value in the PSI, so an empty bin gives a large, finite term.
PSI_EPSILON = 1e-4
#: Above this many rows per side the KS statistic is evaluated on a quantile grid of both samples.
EXACT_KS_ROWS = 200_000
#: Grid points per sample for the large-sample KS statistic (absolute error at most 2 / KS_GRID).
KS_GRID = 20_000

#: The conventions behind the statistics, each of which can move a PSI across a threshold on tied
#: data; every drift verdict states them (and the README's drift section repeats them).
CONVENTIONS: dict[str, str] = {
    "numeric_bin_edges": (
        "the reference's sorted non-missing values at 0-based positions floor(k * n / bins), "
        "k = 1 .. bins - 1, equal edges merged (so tied data gives fewer bins)"
    ),
    "numeric_bin_sides": (
        "bins are closed on the left: [edge_i, edge_i+1); a value equal to an edge counts in the bin "
        "above it; the first bin is everything below the first edge, the last everything at or above "
        "the last edge"
    ),
    "missing_values": "a bucket of their own on both sides, in PSI, JS and chi-square (not in KS)",
    "psi_share_floor": f"bucket shares below {PSI_EPSILON:g} count as {PSI_EPSILON:g} in the PSI",
    "js_distance": "Jensen-Shannon distance, base-2 logarithm, between 0 and 1, on the same buckets",
    "chi_square": (
        "test of homogeneity on the 2 x k table of bucket counts (buckets empty on both sides dropped), "
        "without Yates' continuity correction"
    ),
    "ks": (
        f"two-sample Kolmogorov-Smirnov on the non-missing values: SciPy's exact test up to "
        f"{EXACT_KS_ROWS:,} rows a side; above, the largest CDF gap over a grid of {KS_GRID:,} "
        f"quantiles a side (error at most {2 / KS_GRID:g}) with the asymptotic p-value"
    ),
    "categorical_levels": (
        "the reference's most frequent levels up to max-levels (ties by name), the rest as (other); "
        "levels the reference never had as (unseen)"
    ),
}

MISSING = "(missing)"
UNSEEN = "(unseen)"
OTHER = "(other)"


@dataclasses.dataclass(frozen=True)
class Binned:
    """Counts of the reference and current samples over the same buckets."""

    labels: tuple[str, ...]
    reference: "np.ndarray"
    current: "np.ndarray"
    unseen_levels: tuple[str, ...] = ()
    unseen_count: int = 0


def _proportions(counts: "np.ndarray") -> "np.ndarray":
    import numpy as np

    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts, dtype=np.float64)


def psi(binned: Binned) -> float:
    """Population stability index: sum over buckets of (cur - ref) * ln(cur / ref)."""
    import numpy as np

    ref = np.maximum(_proportions(binned.reference.astype(np.float64)), PSI_EPSILON)
    cur = np.maximum(_proportions(binned.current.astype(np.float64)), PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def js_distance(binned: Binned) -> float:
    """Jensen-Shannon distance (base 2, between 0 and 1) of the two bucket distributions."""
    import numpy as np

    ref = _proportions(binned.reference.astype(np.float64))
    cur = _proportions(binned.current.astype(np.float64))
    mid = (ref + cur) / 2

    def kl(p: "np.ndarray") -> float:
        mask = p > 0
        return float(np.sum(p[mask] * np.log2(p[mask] / mid[mask])))

    value = (kl(ref) + kl(cur)) / 2
    return math.sqrt(max(value, 0.0))


def chi_square(binned: Binned) -> tuple[float, float]:
    """Chi-square test of homogeneity on the 2 x k table of counts: (statistic, p-value).

    SciPy's ``chi2_contingency(table, correction=False)``, computed as it computes it (expected
    counts from the margins, the flattened sum of the terms, ``chdtrc`` for the p-value, as
    ``chi2.sf`` does), so the answers are the same to the bit without importing ``scipy.stats``.
    """
    import numpy as np
    from scipy.special import chdtrc

    table = np.vstack([binned.reference, binned.current]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        same = table.shape[1] < 2 and (table.sum(axis=1) > 0).all()
        return (0.0, 1.0) if same or table.sum() == 0 else (math.inf, 0.0)
    expected = (table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return statistic, float(chdtrc(dof, statistic))


def ks_two_sample(ref_sorted: "np.ndarray", cur_sorted: "np.ndarray") -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test on sorted, NaN-free arrays: (statistic, p-value).

    Up to :data:`EXACT_KS_ROWS` rows per side this is SciPy's test. Above, the statistic is the
    largest CDF gap over a grid of both samples' quantiles (error at most ``2 / KS_GRID``), and
    the p-value is the asymptotic Kolmogorov distribution, as SciPy uses for large samples.
    """
    import numpy as np

    n1, n2 = len(ref_sorted), len(cur_sorted)
    if n1 == 0 or n2 == 0:
        return (0.0, 1.0) if n1 == n2 else (1.0, 0.0)
    if max(n1, n2) <= EXACT_KS_ROWS:
        from scipy import stats  # only here: importing scipy.stats costs more than a large KS

        result = stats.ks_2samp(ref_sorted, cur_sorted)
        return float(result.statistic), float(result.pvalue)
    from scipy.special import kolmogorov  # what scipy.stats.kstwobign.sf evaluates

    grid = np.unique(
        np.concatenate(
            [
                ref_sorted[np.linspace(0, n1 - 1, min(n1, KS_GRID)).astype(np.int64)],
                cur_sorted[np.linspace(0, n2 - 1, min(n2, KS_GRID)).astype(np.int64)],
            ]
        )
    )
    cdf_ref = np.searchsorted(ref_sorted, grid, side="right") / n1
    cdf_cur = np.searchsorted(cur_sorted, grid, side="right") / n2
    statistic = float(np.max(np.abs(cdf_ref - cdf_cur)))
    effective = math.sqrt(n1 * n2 / (n1 + n2))
    pvalue = float(kolmogorov(effective * statistic))
    return statistic, min(max(pvalue, 0.0), 1.0)


def bin_numeric(
    ref_sorted: "np.ndarray", cur_sorted: "np.ndarray", ref_missing: int, cur_missing: int, bins: int
) -> Binned:
    """Bucket both samples on the reference's quantiles (plus a bucket for missing values)."""
    import numpy as np

    n1 = len(ref_sorted)
    if n1:
        cuts = ref_sorted[[(k * n1) // bins for k in range(1, bins)]]
        edges = np.unique(cuts)
    else:
        edges = np.array([], dtype=np.float64)

    def counts(values: "np.ndarray") -> "np.ndarray":
        positions = np.searchsorted(values, edges, side="left")
        return np.diff(np.concatenate([[0], positions, [len(values)]]))

    labels = [f"< {_fmt(edges[0])}"] if len(edges) else ["all values"]
    labels += [f"[{_fmt(lo)}, {_fmt(hi)})" for lo, hi in itertools.pairwise(edges)]
    if len(edges):
        labels.append(f">= {_fmt(edges[-1])}")
    ref_counts = np.append(counts(ref_sorted), ref_missing)
    cur_counts = np.append(counts(cur_sorted), cur_missing)
    return Binned((*labels, MISSING), ref_counts, cur_counts)


def bin_categorical(
    ref_counts: "pd.Series", cur_counts: "pd.Series", ref_missing: int, cur_missing: int, max_levels: int
) -> Binned:
    """Bucket both samples by level: the reference's top ``max_levels``, other, unseen, missing."""
    import numpy as np

    ref_sorted = sorted(ref_counts.items(), key=lambda item: (-int(item[1]), str(item[0])))
    kept = [level for level, _ in ref_sorted[:max_levels]]
    rare = {level for level, _ in ref_sorted[max_levels:]}
    cur_map = {level: int(count) for level, count in cur_counts.items()}
    ref_map = {level: int(count) for level, count in ref_counts.items()}
    labels = [str(level) for level in kept]
    ref_values = [ref_map[level] for level in kept]
    cur_values = [cur_map.get(level, 0) for level in kept]
    other_ref = sum(ref_map[level] for level in rare)
    other_cur = sum(count for level, count in cur_map.items() if level in rare)
    unseen = sorted(
        ((level, count) for level, count in cur_map.items() if level not in ref_map),
        key=lambda item: (-item[1], str(item[0])),
    )
    unseen_count = sum(count for _, count in unseen)
    labels += [OTHER, UNSEEN, MISSING]
    ref_values += [other_ref, 0, ref_missing]
    cur_values += [other_cur, unseen_count, cur_missing]
    return Binned(
        tuple(labels),
        np.asarray(ref_values, dtype=np.int64),
        np.asarray(cur_values, dtype=np.int64),
        unseen_levels=tuple(str(level) for level, _ in unseen[:5]),
        unseen_count=unseen_count,
    )


def _fmt(value: Any) -> str:
    return f"{float(value):.6g}"
