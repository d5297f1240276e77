"""Model metrics by scikit-learn's definitions, from arrays, confusion matrices or score groups.

Every metric here equals its scikit-learn counterpart (to 1e-12, tests check it), but it is
computed from a representation the bootstrap can resample cheaply:

- confusion-matrix metrics (accuracy, balanced accuracy, precision, recall, F1 in binary, macro
  and weighted forms) from a ``(..., K, K)`` matrix, vectorised over any leading axes;
- ranking metrics (ROC AUC, PR AUC) from counts of positives and negatives per distinct score,
  sorted by score, also vectorised (the bootstrap's form), or from each class's sorted scores
  (the point estimate's);
- per-row metrics (log loss, Brier score, MAE, MSE, RMSE, R², MAPE) from the arrays.

The class list is scikit-learn's ``labels=``: every class in the labels, the predictions and the
probability columns (a model's ``classes_``), so a class the model knows but the evaluation rows
lack still counts in the multiclass Brier score, as ``brier_score_loss(..., labels=...)`` counts it.

A metric is *undefined* (NaN here, the outcome ``undefined`` in the gate, which never passes)
where scikit-learn raises or warns that it is ill-defined and substitutes a number:

- any classification metric when the labels hold fewer than two classes;
- ROC AUC and PR AUC (multiclass) when a class of the class list never occurs in the labels;
- precision of the positive class when no row is predicted positive;
- R² on fewer than two rows or on constant labels (scikit-learn's ``force_finite`` gives 1 or 0;
  mlci refuses to turn a division by zero into a passing number).

Macro and weighted averages keep scikit-learn's ``zero_division=0`` for a class never predicted:
the class counts as 0, which lowers the average rather than hiding the model's failure.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from mlci_lib.errors import InputError

if TYPE_CHECKING:
    import numpy as np

_T = TypeVar("_T")

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
TASKS = (BINARY, MULTICLASS, REGRESSION)


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    name: str
    #: confusion | ranking | proba | regression
    family: str
    tasks: tuple[str, ...]
    higher_is_better: bool
    description: str


_CLS = (BINARY, MULTICLASS)
_SPECS = [
    MetricSpec("accuracy", "confusion", _CLS, True, "share of correct predictions"),
    MetricSpec("balanced_accuracy", "confusion", _CLS, True, "mean recall over classes"),
    MetricSpec("precision", "confusion", (BINARY,), True, "precision of the positive class"),
    MetricSpec("recall", "confusion", (BINARY,), True, "recall of the positive class"),
    MetricSpec("f1", "confusion", (BINARY,), True, "F1 of the positive class"),
    MetricSpec("precision_macro", "confusion", _CLS, True, "unweighted mean precision over classes"),
    MetricSpec("recall_macro", "confusion", _CLS, True, "unweighted mean recall over classes"),
    MetricSpec("f1_macro", "confusion", _CLS, True, "unweighted mean F1 over classes"),
    MetricSpec("precision_weighted", "confusion", _CLS, True, "support-weighted mean precision"),
    MetricSpec("recall_weighted", "confusion", _CLS, True, "support-weighted mean recall"),
    MetricSpec("f1_weighted", "confusion", _CLS, True, "support-weighted mean F1"),
    MetricSpec("roc_auc", "ranking", _CLS, True, "ROC AUC (multiclass: one-vs-rest, macro)"),
    MetricSpec("pr_auc", "ranking", _CLS, True, "average precision (multiclass: macro)"),
    MetricSpec("log_loss", "proba", _CLS, False, "cross-entropy of the predicted probabilities"),
    MetricSpec("brier_score", "proba", _CLS, False, "Brier score loss"),
    MetricSpec("mae", "regression", (REGRESSION,), False, "mean absolute error"),
    MetricSpec("mse", "regression", (REGRESSION,), False, "mean squared error"),
    MetricSpec("rmse", "regression", (REGRESSION,), False, "root mean squared error"),
    MetricSpec("r2", "regression", (REGRESSION,), True, "coefficient of determination"),
    MetricSpec("mape", "regression", (REGRESSION,), False, "mean absolute percentage error"),
]
METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}
#: Other spellings users write (scikit-learn scorer names, MLflow metric names).
ALIASES: dict[str, str] = {
    "accuracy_score": "accuracy",
    "f1_score": "f1",
    "precision_score": "precision",
    "recall_score": "recall",
    "average_precision": "pr_auc",
    "precision_recall_auc": "pr_auc",
    "brier": "brier_score",
    "brier_score_loss": "brier_score",
    "mean_absolute_error": "mae",
    "mean_squared_error": "mse",
    "root_mean_squared_error": "rmse",
    "r2_score": "r2",
    "mean_absolute_percentage_error": "mape",
}
CONFUSION_METRICS = tuple(s.name for s in _SPECS if s.family == "confusion")


def canonical_name(name: str) -> str:
    """The canonical name of a known metric (aliases resolved), else ``name`` unchanged."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    return key if key in METRICS else name.strip()


def known_metric(name: str) -> MetricSpec | None:
    return METRICS.get(canonical_name(name))


def metric_for_task(name: str, task: str, *, where: str) -> MetricSpec:
    """The spec of ``name``, or an InputError when it is unknown or does not fit ``task``."""
    spec = known_metric(name)
    if spec is None:
        from mlci_lib.options import suggest

        raise InputError(
            f"{where}: unknown metric {name!r}{suggest(name, [*METRICS, *ALIASES])}",
            hint=f"known metrics are {', '.join(METRICS)}",
        )
    if task not in spec.tasks:
        fit = [s.name for s in _SPECS if task in s.tasks]
        extra = " (for more than two classes use the _macro or _weighted form)" if task == MULTICLASS else ""
        if spec.family == "regression":
            extra = " (for whole-number regression targets set --task regression)"
        raise InputError(
            f"{where}: metric {spec.name!r} does not apply to a {task} task{extra}",
            hint=f"metrics for {task}: {', '.join(fit)}",
        )
    return spec


# -- confusion-matrix metrics ------------------------------------------------------------------


def _safe_div(num: "np.ndarray", den: "np.ndarray") -> "np.ndarray":
    """num / den, and 0 where den is 0 (scikit-learn's zero_division default)."""
    import numpy as np

    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def confusion_metric(name: str, conf: "np.ndarray", pos_index: int | None = None) -> "np.ndarray":
    """Metric ``name`` from confusion matrices ``conf[..., true, predicted]`` (counts); NaN if undefined."""
    import numpy as np

    conf = np.asarray(conf, dtype=np.float64)
    true_sum = conf.sum(axis=-1)
    value = _confusion_value(name, conf, pos_index)
    # One class in the labels: nothing to tell apart, whatever the formula would give.
    undefined = (true_sum > 0).sum(axis=-1) < 2
    if name == "precision" and pos_index is not None:
        undefined = undefined | (conf.sum(axis=-2)[..., pos_index] == 0)
    return np.where(undefined, np.nan, value)


def _confusion_value(name: str, conf: "np.ndarray", pos_index: int | None) -> "np.ndarray":
    import numpy as np

    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    true_sum = conf.sum(axis=-1)
    pred_sum = conf.sum(axis=-2)
    total = true_sum.sum(axis=-1)
    if name == "accuracy":
        return _safe_div(tp.sum(axis=-1), total)
    if name == "balanced_accuracy":
        present = true_sum > 0
        recall = _safe_div(tp, true_sum)
        return _safe_div((recall * present).sum(axis=-1), present.sum(axis=-1))
    kind, _, average = name.partition("_")
    if kind == "precision":
        per_class = _safe_div(tp, pred_sum)
    elif kind == "recall":
        per_class = _safe_div(tp, true_sum)
    elif kind == "f1":
        per_class = _safe_div(2 * tp, true_sum + pred_sum)
    else:
        raise ValueError(f"not a confusion-matrix metric: {name}")
    if average == "":
        if pos_index is None:
            raise ValueError(f"{name} needs the positive class")
        return per_class[..., pos_index]
    present = (true_sum + pred_sum) > 0
    if average == "macro":
        return _safe_div((per_class * present).sum(axis=-1), present.sum(axis=-1))
    if average == "weighted":
        return _safe_div((per_class * true_sum).sum(axis=-1), true_sum.sum(axis=-1))
    raise ValueError(f"unknown average in {name}")


def confusion_matrix(
    labels: "np.ndarray", predictions: "np.ndarray", n_classes: int, weights: "np.ndarray | None" = None
) -> "np.ndarray":
    import numpy as np

    code = labels * n_classes  # one temporary, added to in place: a million rows are 8 MB each
    code += predictions
    cells = np.bincount(code, weights=weights, minlength=n_classes * n_classes)
    if weights is not None:
        cells = np.rint(cells).astype(np.int64)  # whole row counts, summed as floats by bincount
    return cells.reshape(n_classes, n_classes)


# -- ranking metrics -----------------------------------------------------------------------------


def ranking_from_groups(name: str, pos: "np.ndarray", neg: "np.ndarray") -> "np.ndarray":
    """ROC AUC or average precision from counts per distinct score, sorted by ascending score.

    ``pos[..., g]`` and ``neg[..., g]`` count positives and negatives whose score is the g-th
    smallest. Ties count one half in the AUC, as in scikit-learn's trapezoidal ROC curve; average
    precision steps over distinct scores from the highest down, as ``average_precision_score``.
    Undefined values (no positive or no negative) are NaN.
    """
    import numpy as np

    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    n_pos = pos.sum(axis=-1)
    n_neg = neg.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if name == "roc_auc":
            below = np.cumsum(neg, axis=-1) - neg
            wins = (pos * (below + 0.5 * neg)).sum(axis=-1)
            out = wins / (n_pos * n_neg)
            return np.where((n_pos > 0) & (n_neg > 0), out, np.nan)
        if name == "pr_auc":
            # From the highest score down: cumulative true and false positives at each threshold.
            tp = np.cumsum(pos[..., ::-1], axis=-1)
            fp = np.cumsum(neg[..., ::-1], axis=-1)
            taken = (tp + fp) > 0
            precision = np.where(taken, tp / np.where(taken, tp + fp, 1), 0.0)
            out = (pos[..., ::-1] * precision).sum(axis=-1) / n_pos
            return np.where(n_pos > 0, out, np.nan)
    raise ValueError(f"not a ranking metric: {name}")


def score_groups(
    scores: "np.ndarray", positive: "np.ndarray"
) -> tuple["np.ndarray", "np.ndarray", "np.ndarray"]:
    """Group index of each row (rank of its distinct score) and positives/negatives per group."""
    import numpy as np

    _, groups = np.unique(scores, return_inverse=True)
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    pos = np.bincount(groups, weights=positive.astype(np.float64), minlength=n_groups)
    neg = np.bincount(groups, weights=(~positive).astype(np.float64), minlength=n_groups)
    return groups, pos, neg


@dataclasses.dataclass(frozen=True)
class SortedScores:
    """One model's scores sorted once: all of them, and the positives' and the negatives' apart.

    ``values`` holds every score in ascending order (the bootstrap's bin edges are read from
    it); ``positives`` and ``negatives`` hold the scores of each class in ascending order, from
    which :func:`ranking_from_sorted` counts, for each positive, the negatives below it.
    """

    values: "np.ndarray"
    positives: "np.ndarray"
    negatives: "np.ndarray"

    def distinct(self) -> "np.ndarray":
        """The distinct scores, ascending (-0.0 and 0.0 are one score, as ``np.unique`` has it)."""
        import numpy as np

        values = self.values
        if len(values) == 0:
            return values
        return values[np.concatenate(([True], values[1:] != values[:-1]))]

    def distinct_count(self) -> int:
        import numpy as np

        values = self.values
        return int(np.count_nonzero(values[1:] != values[:-1])) + 1 if len(values) else 0


def sort_scores(scores: "np.ndarray", positive: "np.ndarray") -> SortedScores:
    """Sort ``scores``, and the positives' and the negatives' scores apart.

    Three sorts of values, no argsort: NumPy sorts values with SIMD several times faster than it
    finds a permutation, and every ranking metric is a count of how the two sorted classes
    interleave (:func:`ranking_from_sorted`), which needs no merged order.
    """
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    return SortedScores(np.sort(scores), np.sort(scores[positive]), np.sort(scores[~positive]))


def ranking_from_sorted(name: str, summary: SortedScores) -> float:
    """ROC AUC or average precision from the sorted scores of each class (NaN when undefined).

    ROC AUC counts, for each positive, the negatives scored below it and half of those tied with
    it (scikit-learn's trapezoidal ROC curve), in integers. Average precision sums, over the
    positives, the precision at the threshold of the positive's score (the rows scored at least
    as high), divided by the number of positives: the sum over distinct thresholds, from the
    highest down, of the recall step times the precision, as ``average_precision_score``.
    """
    import numpy as np

    pos, neg = summary.positives, summary.negatives
    n_pos, n_neg = len(pos), len(neg)
    if name == "roc_auc":
        if n_pos == 0 or n_neg == 0:
            return math.nan
        below = np.searchsorted(neg, pos, side="left")
        # Negatives tied with a positive sit at its insertion point: only the positives that
        # meet one there need the second search (continuous scores have next to none).
        tied = np.flatnonzero(neg[np.minimum(below, n_neg - 1)] == pos)
        ties = np.searchsorted(neg, pos[tied], side="right") - below[tied]
        twice_wins = 2 * int(below.sum(dtype=np.int64)) + int(ties.sum(dtype=np.int64))
        return float(twice_wins / (2 * n_pos * n_neg))
    if name == "pr_auc":
        if n_pos == 0:
            return math.nan
        true_pos = n_pos - np.searchsorted(pos, pos, side="left")
        false_pos = n_neg - np.searchsorted(neg, pos, side="left")
        return float(np.sum(true_pos / (true_pos + false_pos)) / n_pos)
    raise ValueError(f"not a ranking metric: {name}")


def ranking_metric(name: str, positive: "np.ndarray", scores: "np.ndarray") -> float:
    return ranking_from_sorted(name, sort_scores(scores, positive))


# -- point estimates from arrays ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EncodedRows:
    """One model's predictions on the evaluation rows, encoded for metric computation.

    Classification: ``labels`` and ``predictions`` are class indices into ``classes``;
    ``scores`` is the positive-class probability (binary) or an ``(n, K)`` matrix (multiclass).
    Regression: ``labels`` and ``predictions`` are floats and ``scores`` is None.
    """

    task: str
    labels: "np.ndarray"
    predictions: "np.ndarray"
    scores: "np.ndarray | None" = None
    n_classes: int = 0
    pos_index: int | None = None
    #: The class names, in index order (classification), for messages.
    classes: tuple[str, ...] = ()
    #: How many rows each entry stands for, when the entries are row types counted elsewhere
    #: (the Spark engine's groupBy); None: one row each. Only confusion-matrix metrics take them.
    weights: "np.ndarray | None" = None
    #: Computed once and shared by the point estimate and the bootstrap (sorting 1M scores is
    #: the costliest step); not part of the value.
    _cache: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.labels) if self.weights is None else int(self.weights.sum())

    def take(self, index: "np.ndarray") -> "EncodedRows":
        scores = None if self.scores is None else self.scores[index]
        weights = None if self.weights is None else self.weights[index]
        return dataclasses.replace(
            self,
            labels=self.labels[index],
            predictions=self.predictions[index],
            scores=scores,
            weights=weights,
            _cache={},
        )

    def score_groups(self) -> tuple["np.ndarray", int]:
        """Binary task: each row's rank among the distinct scores, and the number of distinct scores."""
        import numpy as np

        if "groups" not in self._cache:
            _, groups = np.unique(np.asarray(self.scores), return_inverse=True)
            groups = groups.reshape(-1)
            self._cache["groups"] = (groups, int(groups.max()) + 1 if len(groups) else 0)
        return self._cache["groups"]  # type: ignore[no-any-return]

    def sorted_scores(self) -> SortedScores:
        """Binary task: the scores sorted once, shared by the point ROC/PR AUC and the bootstrap bins."""
        import numpy as np

        if "sorted" not in self._cache:
            self._cache["sorted"] = sort_scores(np.asarray(self.scores), self.labels == self.pos_index)
        return self._cache["sorted"]  # type: ignore[no-any-return]

    def ranking(self, name: str) -> float:
        """Binary task: ROC AUC or PR AUC on these rows, computed once."""
        key = f"ranking:{name}"
        if key not in self._cache:
            self._cache[key] = ranking_from_sorted(name, self.sorted_scores())
        return self._cache[key]  # type: ignore[no-any-return]

    def confusion(self) -> "np.ndarray":
        """Classification: the confusion matrix ``[true, predicted]`` (counts), computed once."""
        if "confusion" not in self._cache:
            self._cache["confusion"] = confusion_matrix(
                self.labels, self.predictions, self.n_classes, self.weights
            )
        return self._cache["confusion"]  # type: ignore[no-any-return]


#: Rows from which the models' scores are sorted side by side, one thread each.
PARALLEL_SORT_ROWS = 200_000


def map_models(function: Callable[[EncodedRows], _T], models: Sequence[EncodedRows]) -> list[_T]:
    """``function`` of each model, on a thread each when their rows are many (NumPy releases the GIL)."""
    if len(models) < 2 or len(models[0].labels) < PARALLEL_SORT_ROWS:
        return [function(model) for model in models]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(models), thread_name_prefix="mlci-models") as pool:
        return list(pool.map(function, models))


def presort_scores(models: Sequence[EncodedRows], names: Sequence[str]) -> None:
    """Sort each binary model's scores once and compute its ranking metrics ``names``, in parallel.

    Sorting and searching the sorted classes are the costliest steps of ROC and PR AUC on many
    rows, and NumPy releases the GIL in both, so the candidate's and the baseline's run at once
    on two cores (:meth:`EncodedRows.sorted_scores`, :meth:`EncodedRows.ranking`).
    """
    ready = [m for m in models if m.scores is not None and m.scores.ndim == 1]
    defined = [name for name in names if METRICS[name].family == "ranking"]

    def prepare(rows: EncodedRows) -> None:
        for name in defined:  # point_metric still returns NaN where fewer than two classes occur
            rows.ranking(name)

    map_models(prepare, ready)


def _proba_matrix(rows: EncodedRows) -> "np.ndarray":
    import numpy as np

    assert rows.scores is not None
    if rows.scores.ndim == 2:
        return rows.scores
    if "proba" not in rows._cache:  # built once for every metric of the rows (log loss, Brier...)
        # Binary: columns in class order, the positive class holding the score.
        matrix = np.empty((len(rows.scores), 2), dtype=np.float64)
        pos = rows.pos_index if rows.pos_index is not None else 1
        matrix[:, pos] = rows.scores
        matrix[:, 1 - pos] = 1.0 - rows.scores
        rows._cache["proba"] = matrix
    return rows._cache["proba"]  # type: ignore[no-any-return]


def point_metric(name: str, rows: EncodedRows) -> float:
    """Metric ``name`` (canonical) on ``rows``; NaN when undefined (e.g. AUC with one class)."""
    import numpy as np

    spec = METRICS[name]
    if spec.family in ("ranking", "proba") and _classes_present(rows) < 2:
        return math.nan
    if spec.family == "confusion":
        return float(confusion_metric(name, rows.confusion(), rows.pos_index))
    if spec.family == "ranking":
        if rows.task == BINARY:
            return rows.ranking(name)
        proba = _proba_matrix(rows)
        values = [ranking_metric(name, rows.labels == k, proba[:, k]) for k in range(rows.n_classes)]
        return float(np.mean(values))
    if spec.family == "proba":
        proba = _proba_matrix(rows)
        # Each row's probability of its true class (clipping it alone clips what log loss reads).
        if "picked" not in rows._cache:
            rows._cache["picked"] = proba[np.arange(len(rows)), rows.labels]
        picked = rows._cache["picked"]
        if name == "log_loss":
            eps = np.finfo(np.float64).eps
            return float(np.mean(-np.log(np.clip(picked, eps, 1 - eps))))
        # sum over classes of (onehot - p)^2 = sum p^2 - 2 p[true] + 1, without the one-hot matrix
        brier = np.mean(np.einsum("ij,ij->i", proba, proba) - 2 * picked + 1)
        return float(brier / 2 if proba.shape[1] < 3 else brier)
    y = rows.labels.astype(np.float64)
    p = rows.predictions.astype(np.float64)
    err = y - p
    if name == "mae":
        return float(np.mean(np.abs(err)))
    if name == "mse":
        return float(np.mean(err**2))
    if name == "rmse":
        return float(np.sqrt(np.mean(err**2)))
    if name == "mape":
        return float(np.mean(np.abs(err) / np.maximum(np.abs(y), np.finfo(np.float64).eps)))
    if name == "r2":
        if len(y) < 2:
            return math.nan
        ss_res = float(np.sum(err**2))
        ss_tot = float(np.sum((y - np.mean(y)) ** 2))
        if ss_tot == 0:
            return math.nan
        return 1.0 - ss_res / ss_tot
    raise ValueError(f"unknown metric {name}")


def _classes_present(rows: EncodedRows) -> int:
    import numpy as np

    if "present" not in rows._cache:  # asked by every ranking and probability metric
        counted: int
        if "confusion" in rows._cache:  # its rows are the labels' classes, already counted
            counted = int(np.count_nonzero(rows._cache["confusion"].sum(axis=1)))
        elif len(rows):
            counted = int(np.count_nonzero(np.bincount(rows.labels, minlength=rows.n_classes)))
        else:
            counted = 0
        rows._cache["present"] = counted
    return int(rows._cache["present"])


def undefined_reason(name: str, rows: EncodedRows) -> str:
    """Why ``name`` is undefined on ``rows`` (call it when :func:`point_metric` gave NaN)."""
    import numpy as np

    spec = METRICS[name]
    if len(rows) == 0:
        return "there are no rows"
    if rows.task == REGRESSION:
        if name == "r2" and len(rows) < 2:
            return "R² needs at least two rows (scikit-learn: not well-defined with less than two samples)"
        if name == "r2":
            return "the labels are constant, so R² divides by zero"
        return f"{name} is not finite on these rows"

    def shown(index: int) -> str:
        return rows.classes[index] if index < len(rows.classes) else str(index)

    counts = np.bincount(rows.labels, minlength=rows.n_classes)
    present = np.flatnonzero(counts)
    if len(present) < 2:
        only = ", ".join(shown(int(i)) for i in present) or "none"
        return f"the labels hold one class only ({only}), so {name} cannot tell classes apart"
    if name == "precision" and rows.pos_index is not None:
        return f"no row is predicted {shown(rows.pos_index)}, so precision divides by zero"
    if spec.family == "ranking":
        absent = [shown(int(i)) for i in np.flatnonzero(counts == 0)]
        if absent:
            return (
                f"class {absent[0]} never occurs in the labels, so its one-vs-rest {name} is undefined "
                "(scikit-learn raises)"
            )
    return f"{name} is undefined on these rows"


def needs_scores(name: str) -> bool:
    return METRICS[name].family in ("ranking", "proba")


def default_metrics(rows: EncodedRows) -> list[str]:
    """Every metric that applies to the task and the columns at hand."""
    return [
        s.name
        for s in _SPECS
        if rows.task in s.tasks and not (s.family in ("ranking", "proba") and rows.scores is None)
    ]
