"""Paired bootstrap of model metrics, resampling counts of row types instead of rows.

Rows are resampled with replacement, the same rows for the candidate and the baseline (a paired
bootstrap), so the interval of the difference reflects how the two models disagree row by row.
Most metrics depend on a row only through a few features, its *type*, so a resample is fully
described by how many rows of each type it drew, and those counts are multinomial:

- confusion-matrix metrics: the type is (label, candidate prediction, baseline prediction), at most
  K³ types; a resample costs a multinomial draw over those types, whatever the number of rows;
- ROC AUC and PR AUC (binary): the type is (label, candidate score, baseline score). Up to
  ``exact_rows_budget`` row-draws in total the bootstrap draws rows and is exact. Beyond that, scores
  are grouped into ``score_bins`` quantile bins per model and each resample perturbs the count c of
  every (label, bin, bin) type by ``sqrt(c)·Z`` — the Gaussian multiplier bootstrap, whose per-row
  weights 1 + Z sum within a type to exactly that. Those perturbations reach the metric only
  through the cells (label, bin) of each model, so the cells are drawn at once from their joint
  Gaussian law (one normal per cell, not per type). Binning only shapes the spread: the interval is
  centred on the exact point estimate (the spread is of resampled minus unresampled value, both
  binned);
- every other metric (log loss, Brier score, regression metrics, multiclass AUC): rows are drawn.

Every family returns, per metric, the resampled values of each model and the value of the same
representation on the unresampled data (the basis of the spread).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlci_lib.gate.metrics import (
    BINARY,
    METRICS,
    EncodedRows,
    confusion_metric,
    map_models,
    point_metric,
    ranking_from_groups,
)

if TYPE_CHECKING:
    import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0
#: Above this many types a multinomial draw per type costs more than drawing rows.
MULTINOMIAL_MAX_TYPES = 4096
#: Rows × resamples up to which ROC/PR AUC draws rows (exact); beyond, binned types.
EXACT_ROWS_BUDGET = 50_000_000
SCORE_BINS = 128
CHUNK_CELLS = 4_000_000


@dataclasses.dataclass(frozen=True)
class BootstrapSettings:
    resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = DEFAULT_SEED
    exact_rows_budget: int = EXACT_ROWS_BUDGET
    score_bins: int = SCORE_BINS


@dataclasses.dataclass(frozen=True)
class Draws:
    """Resampled values of one metric: ``values[r, m]`` for resample r and model m."""

    values: "np.ndarray"
    #: The metric on the unresampled data, in the representation the resamples use (per model).
    basis: "np.ndarray"
    method: str


def bootstrap_metrics(
    models: Sequence[EncodedRows], names: Sequence[str], settings: BootstrapSettings
) -> dict[str, Draws]:
    """Paired bootstrap draws of each metric in ``names`` for each model (rows already aligned)."""
    import numpy as np

    out: dict[str, Draws] = {}
    families: dict[str, list[str]] = {}
    for name in names:
        family = METRICS[name].family
        if (family == "ranking" and models[0].task != BINARY) or family in ("proba", "regression"):
            family = "rows"
        if models[0].weights is not None and family != "confusion":
            raise ValueError(f"{name}: counted row types carry confusion-matrix metrics only")
        families.setdefault(family, []).append(name)
    # One independent stream per family, so adding a metric never changes another's interval.
    seeds = np.random.SeedSequence(settings.seed).spawn(3)
    if "confusion" in families:
        out.update(_confusion(models, families["confusion"], settings, np.random.default_rng(seeds[0])))
    if "ranking" in families:
        out.update(_ranking(models, families["ranking"], settings, np.random.default_rng(seeds[1])))
    if "rows" in families:
        out.update(_rows(models, families["rows"], settings, np.random.default_rng(seeds[2])))
    return out


def _chunks(total: int, per_resample_cells: int) -> list[int]:
    size = max(1, min(total, CHUNK_CELLS // max(1, per_resample_cells)))
    sizes = [size] * (total // size)
    if total % size:
        sizes.append(total % size)
    return sizes


def _type_counts(
    rng: "np.random.Generator", counts: "np.ndarray", row_types: "np.ndarray | None", size: int
) -> "np.ndarray":
    """Classical bootstrap: counts of each type among n rows drawn with replacement, ``(size, T)``."""
    import numpy as np

    n = int(counts.sum())
    if len(counts) <= MULTINOMIAL_MAX_TYPES or row_types is None:
        return rng.multinomial(n, counts / n, size=size).astype(np.float64)
    assert row_types is not None
    out = np.empty((size, len(counts)), dtype=np.float64)
    for r in range(size):
        out[r] = np.bincount(row_types[rng.integers(0, n, n)], minlength=len(counts))
    return out


def _one_hot(index: "np.ndarray", width: int) -> Any:
    """A (len(index) x width) 0/1 map, dense when small (no scipy import), sparse otherwise."""
    import numpy as np

    if len(index) * width <= 4_000_000:
        dense = np.zeros((len(index), width))
        dense[np.arange(len(index)), index] = 1.0
        return dense
    from scipy import sparse

    return sparse.csr_matrix((np.ones(len(index)), (np.arange(len(index)), index)), shape=(len(index), width))


def _confusion(
    models: Sequence[EncodedRows], names: list[str], settings: BootstrapSettings, rng: "np.random.Generator"
) -> dict[str, Draws]:
    import numpy as np

    k = models[0].n_classes
    code = models[0].labels.astype(np.int64)  # a copy, then worked on in place
    for model in models:
        code *= k
        code += model.predictions
    weights = models[0].weights
    if weights is None:
        types, counts = _present_codes(code, k ** (len(models) + 1))
    else:
        # Entries are row types already counted (the Spark engine): the same types and counts.
        types, inverse = np.unique(code, return_inverse=True)
        counts = np.rint(np.bincount(inverse.reshape(-1), weights=weights)).astype(np.int64)
    # Each row's type is needed only to draw rows, when there are too many types for a multinomial
    # (counted row types have no rows: they draw the multinomial, the same distribution).
    many = len(types) > MULTINOMIAL_MAX_TYPES and weights is None
    row_types = np.searchsorted(types, code) if many else None
    # Decode each type into its confusion cell (label * K + prediction) for each model.
    cells = []
    rest = types.copy()
    preds = []
    for _ in models:
        preds.append(rest % k)
        rest //= k
    labels = rest
    for pred in reversed(preds):
        cells.append(_one_hot(labels * k + pred, k * k))
    values = {name: np.empty((settings.resamples, len(models))) for name in names}
    start = 0
    for size in _chunks(settings.resamples, len(types) + k * k * len(models)):
        draw = _type_counts(rng, counts, row_types, size)
        for m, onehot in enumerate(cells):
            conf = np.asarray((onehot.T @ draw.T).T).reshape(size, k, k)
            for name in names:
                values[name][start : start + size, m] = confusion_metric(name, conf, models[m].pos_index)
        start += size
    basis = {
        name: np.asarray(
            [
                confusion_metric(name, np.asarray(onehot.T @ counts).reshape(k, k), models[m].pos_index)
                for m, onehot in enumerate(cells)
            ]
        )
        for name in names
    }
    method = "multinomial over confusion types"
    return {name: Draws(values[name], basis[name], method) for name in names}


def _ranking(
    models: Sequence[EncodedRows], names: list[str], settings: BootstrapSettings, rng: "np.random.Generator"
) -> dict[str, Draws]:
    import numpy as np

    positive = models[0].labels == models[0].pos_index
    n = len(positive)
    if n * settings.resamples <= settings.exact_rows_budget:
        return _ranking_rows(models, names, settings, rng, positive)
    binned = map_models(lambda model: _score_bins(model, settings.score_bins), models)
    groups = [group for group, _ in binned]
    widths = [width for _, width in binned]
    code = positive.astype(np.int64)  # a copy, then worked on in place
    for g, w in zip(groups, widths, strict=True):
        code *= w
        code += g
    types, counts = _present_codes(code, 2 * math.prod(widths))
    rest = types.copy()
    decoded = []
    for w in reversed(widths):
        decoded.append(rest % w)
        rest //= w
    decoded.reverse()
    is_pos = rest.astype(bool)
    # Each type's cell, (positive?, group), for each model, side by side: model m's cells are
    # columns offsets[m] .. offsets[m] + 2 * widths[m].
    offsets = np.cumsum([0] + [2 * w for w in widths])
    cell = [offsets[m] + is_pos * w + g for m, (g, w) in enumerate(zip(decoded, widths, strict=True))]
    basis_cells = np.concatenate(
        [np.bincount(c - offsets[m], weights=counts, minlength=2 * widths[m]) for m, c in enumerate(cell)]
    )
    # A resample perturbs the count c of every type by sqrt(c)·Z; each model's cells sum those.
    # That sum is linear in the Z, so the perturbation of all cells at once is Gaussian with the
    # covariance of the per-type map: drawing it from that covariance's factor takes one normal
    # per cell instead of one per type (512 instead of up to 32,768 a resample), the same law.
    # The factorisations and products are a few hundred wide: one BLAS thread does them in
    # milliseconds, where OpenBLAS's threads, spinning against other work on the machine, took
    # over a second for the same eigendecomposition.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        factors = _cell_covariance_factors(cell, counts, widths)
        draws = [
            (block, rng.standard_normal((settings.resamples, factor.shape[1])) @ factor.T)
            for block, factor in factors
        ]
    values = {name: np.empty((settings.resamples, len(models))) for name in names}
    start = 0
    for size in _chunks(settings.resamples, int(offsets[-1])):
        cells = np.broadcast_to(basis_cells, (size, len(basis_cells))).copy()
        for block, drawn in draws:
            cells[:, block] += drawn[start : start + size]
        for m, w in enumerate(widths):
            neg = cells[:, offsets[m] : offsets[m] + w]
            pos = cells[:, offsets[m] + w : offsets[m + 1]]
            for name in names:
                values[name][start : start + size, m] = ranking_from_groups(name, pos, neg)
        start += size
    basis = {}
    for name in names:
        per_model = []
        for m, w in enumerate(widths):
            cells = basis_cells[offsets[m] : offsets[m + 1]]
            per_model.append(float(ranking_from_groups(name, cells[w:], cells[:w])))
        basis[name] = np.asarray(per_model)
    method = f"Gaussian multiplier over (label, score bin) types, {settings.score_bins} bins"
    return {name: Draws(values[name], basis[name], method) for name in names}


def _score_bins(model: EncodedRows, bins: int) -> tuple["np.ndarray", int]:
    """Each row's score bin and the number of bins: quantile bins by rank, or one per distinct score.

    A row's bin is ``bins · r // n`` where r counts the rows with a smaller score, so tied scores
    always share a bin. That is the number of bin edges below the score, the edges being the
    scores at ranks ceil(b · n / bins) - 1, b = 1 .. bins - 1, read from the sorted scores.
    """
    import numpy as np

    summary = model.sorted_scores()
    n = len(summary.values)
    if summary.distinct_count() > bins:
        ranks = -(-np.arange(1, bins, dtype=np.int64) * n // bins)
        edges, width = summary.values[ranks - 1], bins
    else:
        edges = summary.distinct()
        width = len(edges)
    scores = np.asarray(model.scores, dtype=np.float64).reshape(-1)
    return count_below(edges, scores, summary.values[0], summary.values[-1]), width


#: Cells of the uniform grid :func:`count_below` looks values up in.
_GRID_CELLS = 1 << 16


def count_below(edges: "np.ndarray", values: "np.ndarray", low: float, high: float) -> "np.ndarray":
    """For each value (all in [low, high]), how many of the sorted ``edges`` are strictly smaller.

    As ``searchsorted(edges, values)``, but a binary search per value is slow on a million of
    them: each value's cell in a uniform grid over [low, high] is computed arithmetically, and the
    answer is read from a table per cell. The cell is a monotone function of the value, so a cell
    that holds no edge gives the exact count; the few values in a cell holding an edge are searched.
    """
    import numpy as np

    span = float(high) - float(low)
    scale = _GRID_CELLS / span if span > 0 else math.inf
    if len(values) < 4 * _GRID_CELLS or len(edges) == 0 or not math.isfinite(scale):
        return np.searchsorted(edges, values, side="left").astype(np.int64)

    def cell(x: "np.ndarray") -> "np.ndarray":
        position = np.subtract(x, low)
        position *= scale
        index: np.ndarray = np.minimum(position.astype(np.int64), _GRID_CELLS - 1)
        return index

    edge_cells = cell(edges)
    below = np.searchsorted(edge_cells, np.arange(_GRID_CELLS), side="left")
    holds_edge = np.zeros(_GRID_CELLS, dtype=bool)
    holds_edge[edge_cells] = True
    cells = cell(values)
    out: np.ndarray = below[cells]
    unsure = np.flatnonzero(holds_edge[cells])
    out[unsure] = np.searchsorted(edges, values[unsure], side="left")
    return out


def _present_codes(code: "np.ndarray", space: int) -> tuple["np.ndarray", "np.ndarray"]:
    """The distinct values of ``code`` (ascending, in ``[0, space)``) and how often each occurs."""
    import numpy as np

    if space <= max(1 << 20, 4 * len(code)):
        tally = np.bincount(code, minlength=space)
        present = np.flatnonzero(tally)
        return present, tally[present]
    return np.unique(code, return_counts=True)


def _cell_covariance_factors(
    cells: Sequence["np.ndarray"], counts: "np.ndarray", widths: Sequence[int]
) -> list[tuple["np.ndarray", "np.ndarray"]]:
    """Factors of the covariance of the cell sums of per-type perturbations ``sqrt(c)·Z``.

    ``cells[m][t]`` is type t's cell for model m: model m's cells are ``2 · widths[m]`` columns,
    its negative bins then its positive ones, after the models before it. Type t adds c_t to the
    covariance of every pair of its cells, so the covariance is a table of counts: the diagonal
    block of a model holds its cells' counts, the block of two models their joint counts.
    Positive and negative rows never share a cell, so it is block-diagonal by label, and each
    block is factored alone: (its cells, L) with L·Lᵀ the block, by Cholesky, or from the
    eigendecomposition when the block is singular (a model compared with itself has perfectly
    correlated cells). Cells with no rows have no variance and are left out.
    """
    import numpy as np

    width = 2 * sum(widths)
    weights = counts.astype(np.float64)
    flat = np.zeros(width * width)
    for a in cells:
        for b in cells:
            flat += np.bincount(a * width + b, weights=weights, minlength=width * width)
    covariance = flat.reshape(width, width)
    offsets = np.cumsum([0, *(2 * w for w in widths)])
    factors = []
    for label in (0, 1):
        block = np.concatenate([offsets[m] + label * w + np.arange(w) for m, w in enumerate(widths)])
        block = block[np.diag(covariance)[block] > 0]
        if not len(block):
            continue
        part = covariance[np.ix_(block, block)]
        try:
            factor = np.linalg.cholesky(part)
        except np.linalg.LinAlgError:
            eigenvalues, eigenvectors = np.linalg.eigh(part)
            factor = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
        factors.append((block, factor))
    return factors


def _ranking_rows(
    models: Sequence[EncodedRows],
    names: list[str],
    settings: BootstrapSettings,
    rng: "np.random.Generator",
    positive: "np.ndarray",
) -> dict[str, Draws]:
    import numpy as np

    n = len(positive)
    prepared = [m.score_groups() for m in models]
    pos_f = positive.astype(np.float64)
    neg_f = 1.0 - pos_f
    values = {name: np.empty((settings.resamples, len(models))) for name in names}
    for r in range(settings.resamples):
        weights = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        wp, wn = weights * pos_f, weights * neg_f
        for m, (groups, width) in enumerate(prepared):
            pos = np.bincount(groups, weights=wp, minlength=width)
            neg = np.bincount(groups, weights=wn, minlength=width)
            for name in names:
                values[name][r, m] = ranking_from_groups(name, pos, neg)
    basis = {name: np.asarray([point_metric(name, m) for m in models]) for name in names}
    return {name: Draws(values[name], basis[name], "rows drawn with replacement") for name in names}


def _rows(
    models: Sequence[EncodedRows], names: list[str], settings: BootstrapSettings, rng: "np.random.Generator"
) -> dict[str, Draws]:
    import numpy as np

    n = len(models[0])
    values = {name: np.empty((settings.resamples, len(models))) for name in names}
    with np.errstate(all="ignore"):
        for r in range(settings.resamples):
            index = rng.integers(0, n, n)
            for m, model in enumerate(models):
                sample = model.take(index)
                for name in names:
                    values[name][r, m] = point_metric(name, sample)
    basis = {name: np.asarray([point_metric(name, m) for m in models]) for name in names}
    return {name: Draws(values[name], basis[name], "rows drawn with replacement") for name in names}


@dataclasses.dataclass(frozen=True)
class Interval:
    low: float
    high: float
    #: Share of resamples where the statistic was undefined (e.g. no positive row drawn).
    undefined: float


def interval(point: float, resampled: "np.ndarray", basis: float, confidence: float) -> Interval | None:
    """Percentile interval of ``point`` + (resampled − basis); None when mostly undefined."""
    import numpy as np

    finite = np.isfinite(resampled)
    undefined = 1.0 - float(finite.mean()) if len(resampled) else 1.0
    if undefined > 0.01 or not np.isfinite(basis) or not np.isfinite(point):
        return None
    alpha = 1.0 - confidence
    low, high = np.quantile(resampled[finite] - basis, [alpha / 2, 1 - alpha / 2])
    return Interval(float(point + low), float(point + high), undefined)
