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
  weights 1 + Z sum within a type to exactly that. Binning only shapes the spread: the interval is
  centred on the exact point estimate (the spread is of resampled minus unresampled value, both
  binned);
- every other metric (log loss, Brier score, regression metrics, multiclass AUC): rows are drawn.

Every family returns, per metric, the resampled values of each model and the value of the same
representation on the unresampled data (the basis of the spread).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlci_lib.gate.metrics import (
    BINARY,
    METRICS,
    EncodedRows,
    confusion_metric,
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
    rng: "np.random.Generator", counts: "np.ndarray", row_types: "np.ndarray", size: int
) -> "np.ndarray":
    """Classical bootstrap: counts of each type among n rows drawn with replacement, ``(size, T)``."""
    import numpy as np

    n = int(counts.sum())
    if len(counts) <= MULTINOMIAL_MAX_TYPES:
        return rng.multinomial(n, counts / n, size=size).astype(np.float64)
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
    code = models[0].labels.astype(np.int64)
    for m in models:
        code = code * k + m.predictions
    types, row_types, counts = np.unique(code, return_inverse=True, return_counts=True)
    row_types = row_types.reshape(-1)
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
    groups = []
    widths = []
    for m in models:
        inverse, distinct = m.score_groups()
        if distinct > settings.score_bins:
            # Quantile bins by rank, from the distinct-score groups (no second sort): a group goes
            # to the bin where its first row falls, so tied scores always share a bin.
            sizes = np.bincount(inverse, minlength=distinct)
            first_rank = np.cumsum(sizes) - sizes
            bin_of_group = first_rank * settings.score_bins // n
            inverse = bin_of_group[inverse]
            width = settings.score_bins
        else:
            width = distinct
        groups.append(inverse.astype(np.int64))
        widths.append(width)
    code = positive.astype(np.int64)
    for g, w in zip(groups, widths, strict=True):
        code = code * w + g
    types, counts = np.unique(code, return_counts=True)
    rest = types.copy()
    decoded = []
    for w in reversed(widths):
        decoded.append(rest % w)
        rest //= w
    decoded.reverse()
    is_pos = rest.astype(bool)
    # Per model: a (T x 2G) map from type to (positive?, group) cell.
    maps = [_one_hot(is_pos * w + g, 2 * w) for g, w in zip(decoded, widths, strict=True)]
    values = {name: np.empty((settings.resamples, len(models))) for name in names}
    sqrt_counts = np.sqrt(counts.astype(np.float64))
    start = 0
    for size in _chunks(settings.resamples, len(types)):
        # float32 normals: half the cost, and ample precision for a perturbation of the counts.
        draw = counts + sqrt_counts * rng.standard_normal((size, len(types)), dtype=np.float32)
        for m, (cellmap, w) in enumerate(zip(maps, widths, strict=True)):
            cells = np.asarray((cellmap.T @ draw.T).T)
            neg, pos = cells[:, :w], cells[:, w:]
            for name in names:
                values[name][start : start + size, m] = ranking_from_groups(name, pos, neg)
        start += size
    basis = {}
    for name in names:
        per_model = []
        for cellmap, w in zip(maps, widths, strict=True):
            cells = np.asarray(cellmap.T @ counts.astype(np.float64))
            per_model.append(float(ranking_from_groups(name, cells[w:], cells[:w])))
        basis[name] = np.asarray(per_model)
    method = f"Gaussian multiplier over (label, score bin) types, {settings.score_bins} bins"
    return {name: Draws(values[name], basis[name], method) for name in names}


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
