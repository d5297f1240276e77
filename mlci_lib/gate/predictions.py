"""Reading the gate's inputs: per-row predictions files and metrics JSON files, as hostile input.

A predictions file (CSV, Parquet, JSON Lines) has a label column, a prediction column, optional
score (``score``) or class-probability (``proba_<class>``) columns, optional slice columns and an
optional row id. Only the needed columns are read. Candidate and baseline rows are joined on the
id, or by position when neither file has one and both have the same length; anything else is an
error, never a silent partial comparison.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError, UsageError
from mlci_lib.gate.metrics import (
    BINARY,
    MULTICLASS,
    REGRESSION,
    TASKS,
    EncodedRows,
    canonical_name,
    default_metrics,
    metric_for_task,
    needs_scores,
    point_metric,
)
from mlci_lib.values import shown

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

METRICS_SUFFIXES = (".json",)


@dataclasses.dataclass(frozen=True)
class Columns:
    """Column names of a predictions file (the ``--*-column`` options)."""

    id: str = "id"
    label: str = "label"
    prediction: str = "prediction"
    score: str = "score"
    proba_prefix: str = "proba_"
    #: True when the user named the id column, which then must exist.
    id_explicit: bool = False


@dataclasses.dataclass(frozen=True)
class PredictionTable:
    """The columns of one predictions file, as read (not yet encoded)."""

    source: str
    labels: "np.ndarray | None"
    predictions: "np.ndarray"
    ids: "np.ndarray | None" = None
    score: "np.ndarray | None" = None
    #: class name as written in the column suffix -> probabilities
    proba: Mapping[str, "np.ndarray"] = dataclasses.field(default_factory=dict)
    slices: Mapping[str, "np.ndarray"] = dataclasses.field(default_factory=dict)
    #: How many rows each entry stands for (row types counted by the Spark engine); None: one.
    weights: "np.ndarray | None" = None

    def __len__(self) -> int:
        return len(self.predictions)

    def take(self, index: "np.ndarray") -> "PredictionTable":
        def pick(values: Any) -> Any:
            return None if values is None else values[index]

        return dataclasses.replace(
            self,
            labels=pick(self.labels),
            predictions=self.predictions[index],
            ids=pick(self.ids),
            score=pick(self.score),
            proba={k: v[index] for k, v in self.proba.items()},
            slices={k: v[index] for k, v in self.slices.items()},
            weights=pick(self.weights),
        )


def is_metrics_file(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in METRICS_SUFFIXES


def load_metrics_json(path: str | os.PathLike[str], *, what: str) -> dict[str, float]:
    """A ``{"metric": number}`` file (a top-level ``"metrics"`` mapping is also accepted)."""
    from mlci_lib.files import read_json

    data = read_json(path, what=what)
    if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
        data = data["metrics"]
    if not isinstance(data, dict) or not data:
        raise InputError(
            f"{what} {path} must be a JSON object of metric names to numbers",
            hint='e.g. {"accuracy": 0.91, "f1": 0.88}',
        )
    return validate_metrics_mapping(data, where=f"{what} {path}")


def validate_metrics_mapping(data: Mapping[str, Any], *, where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(
                f"{where}: metric {name!r} is {value!r}, not a number", hint="write metric values as numbers"
            )
        if not math.isfinite(float(value)):
            raise InputError(f"{where}: metric {name!r} is not finite", hint="fix the evaluation step")
        out[str(name)] = float(value)
    return out


# -- predictions files -----------------------------------------------------------------------------


def _available_columns(path: Path, what: str) -> list[str] | None:
    """Column names without reading the data (None for JSON Lines, which has no header)."""
    from mlci_lib.files import existing_file
    from mlci_lib.tables import _csv_header, _sniff, table_format

    existing_file(path, what=what)
    fmt = table_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        _sniff(path, fmt, what)
        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a damaged footer
            detail = " ".join(str(exc).split())[:200]
            raise InputError(f"{what} {path} cannot be read as PARQUET: {detail}") from None
    if fmt == "csv":
        _sniff(path, fmt, what)
        try:
            return [c.strip() for c in _csv_header(path)]
        except UnicodeDecodeError:
            raise InputError(f"{what} {path} is not UTF-8 text", hint="save it as UTF-8") from None
    return None


def read_predictions(
    path: str | os.PathLike[str],
    *,
    what: str,
    columns: Columns = Columns(),
    slice_columns: Sequence[str] = (),
    need_labels: bool = True,
) -> PredictionTable:
    """Read the columns the gate needs from a predictions file."""
    from mlci_lib.tables import read_arrow, read_table

    file = Path(path)
    available = _available_columns(file, what)
    frame: _Columns | None = None
    if available is None:
        frame = _Columns(frame=read_table(file, what=what))
        available = frame.names
    wanted = [columns.prediction]
    for name in (columns.label, *slice_columns):
        if name not in wanted:
            wanted.append(name)
    missing = [c for c in wanted if c not in available]
    if missing and not (missing == [columns.label] and not need_labels):
        shown = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
        raise InputError(f"{what} {file} has no column {missing[0]!r}", hint=f"its columns are: {shown}")
    wanted = [c for c in wanted if c in available]
    if columns.id in available:
        wanted.append(columns.id)
    elif columns.id_explicit:
        raise InputError(f"{what} {file} has no id column {columns.id!r}", hint="check --id-column")
    if columns.score in available and columns.score not in wanted:
        wanted.append(columns.score)
    proba_cols = [c for c in available if c.startswith(columns.proba_prefix) and c not in wanted]
    wanted.extend(proba_cols)
    if frame is None:
        # Straight into NumPy from Arrow, without building a DataFrame.
        frame = _Columns(table=read_arrow(file, what=what, columns=wanted))
    if len(frame) == 0:
        raise InputError(f"{what} {file} has no rows", hint="check the step that writes it")

    labels = _class_column(frame, columns.label, file, what) if columns.label in frame else None
    predictions = _class_column(frame, columns.prediction, file, what)
    ids = _id_column(frame, columns.id, file, what) if columns.id in frame else None
    score = _score_column(frame, columns.score, file, what) if columns.score in frame else None
    proba = {
        c[len(columns.proba_prefix) :]: _score_column(frame, c, file, what)
        for c in proba_cols
        if c[len(columns.proba_prefix) :]
    }
    slices = {name: frame.pandas(name)[name].to_numpy() for name in slice_columns}
    return PredictionTable(
        source=str(file),
        labels=labels,
        predictions=predictions,
        ids=ids,
        score=score,
        proba=proba,
        slices=slices,
    )


class _Columns:
    """The columns read from a predictions file: an Arrow table (CSV, Parquet) or a DataFrame.

    :meth:`numbers` gives a plain numeric column without missing values straight from Arrow;
    anything else goes through pandas, one column at a time (:meth:`pandas`), so every message
    about a bad value is the same whatever the format.
    """

    def __init__(self, *, table: "pa.Table | None" = None, frame: "pd.DataFrame | None" = None) -> None:
        self.table, self.frame = table, frame
        self.names = [str(c) for c in (table.column_names if table is not None else frame.columns)]  # type: ignore[union-attr]

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def __len__(self) -> int:
        return self.table.num_rows if self.table is not None else len(self.frame)  # type: ignore[arg-type]

    def pandas(self, name: str) -> "pd.DataFrame":
        """Column ``name`` as a one-column DataFrame."""
        if self.frame is not None:
            return self.frame[[name]]
        assert self.table is not None
        return self.table.select([name]).to_pandas()

    def integers(self, name: str) -> "np.ndarray | None":
        """Column ``name`` as int64 when Arrow holds it as integers or booleans with no null.

        Class columns are mostly integers: kept so, they are class codes as they are (no float
        copy to convert, and no check that the floats are whole).
        """
        import numpy as np
        import pyarrow as pa

        if self.table is None:
            return None
        column = self.table.column(name)
        kind = column.type
        if column.null_count or not (
            pa.types.is_boolean(kind) or (pa.types.is_integer(kind) and kind != pa.uint64())
        ):
            return None
        values: np.ndarray = column.to_numpy().astype(np.int64, copy=False)
        return values

    def numbers(self, name: str) -> "np.ndarray | None":
        """Column ``name`` as float64 when Arrow holds it as numbers with no null, NaN or infinity."""
        import numpy as np
        import pyarrow as pa

        if self.table is None:
            return None
        column = self.table.column(name)
        kind = column.type
        if column.null_count or not (
            pa.types.is_integer(kind)
            or pa.types.is_float32(kind)
            or pa.types.is_float64(kind)
            or pa.types.is_boolean(kind)
        ):
            return None
        values = column.to_numpy().astype(np.float64, copy=False)
        return values if np.isfinite(values).all() else None


def _id_column(frame: _Columns, name: str, file: Path, what: str) -> "np.ndarray":
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if frame.table is not None:
        column = frame.table.column(name)
        if not column.null_count and pa.types.is_integer(column.type):
            return np.asarray(column.to_numpy())
    series = frame.pandas(name)[name]
    if pd.isna(series).any():
        row = int(pd.isna(series).to_numpy().argmax())
        raise InputError(f"{what} {file}: id column {name!r} is empty at row {row + 1}")
    ids: np.ndarray = series.to_numpy()
    return ids


def _class_column(frame: _Columns, name: str, file: Path, what: str) -> "np.ndarray":
    """A label or prediction column: numbers (int64 or float64) or strings; no missing values."""
    import numpy as np
    import pandas as pd

    fast = frame.integers(name)
    if fast is None:
        fast = frame.numbers(name)
    if fast is not None:
        return fast
    series = frame.pandas(name)[name]
    missing = pd.isna(series).to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise InputError(
            f"{what} {file}: column {name!r} has a missing value at row {row + 1}",
            hint="drop or fill those rows before the gate",
        )
    if series.dtype == bool or pd.api.types.is_numeric_dtype(series.dtype):
        values: np.ndarray = series.to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise InputError(
                f"{what} {file}: column {name!r} has an infinite value at row {row + 1}",
                hint="write finite numbers only",
            )
        return values
    texts: np.ndarray = series.astype(str).to_numpy(dtype=object)
    return texts


def _score_column(frame: _Columns, name: str, file: Path, what: str) -> "np.ndarray":
    from mlci_lib.tables import numeric_column

    fast = frame.numbers(name)
    if fast is not None:
        return fast
    return numeric_column(frame.pandas(name), name, file=file, what=what)


# -- joining candidate and baseline ----------------------------------------------------------------


def align_baseline(candidate: PredictionTable, baseline: PredictionTable) -> PredictionTable:
    """Reorder ``baseline`` to the candidate's rows (by id, else by position), or raise."""
    import numpy as np
    import pandas as pd

    if (
        candidate.ids is not None
        and baseline.ids is not None
        and _same_unique_ids(candidate.ids, baseline.ids)
    ):
        aligned = baseline  # the same rows in the same order: nothing to join
    elif candidate.ids is not None and baseline.ids is not None:
        for source, ids in ((candidate.source, candidate.ids), (baseline.source, baseline.ids)):
            dup = pd.Index(ids).duplicated()
            if dup.any():
                raise InputError(
                    f"{source}: row id {shown(ids[int(np.flatnonzero(dup)[0])])} appears twice",
                    hint="row ids must be unique to join candidate and baseline",
                )
        base_index = pd.Index(_id_keys(baseline.ids))
        position = base_index.get_indexer(_id_keys(candidate.ids))
        if (position < 0).any():
            first = candidate.ids[int(np.flatnonzero(position < 0)[0])]
            raise InputError(
                f"{int((position < 0).sum())} candidate rows have no baseline row "
                f"(first id {shown(first)} is not in {baseline.source})",
                hint="evaluate both models on the same rows",
            )
        if len(baseline) != len(candidate):
            raise InputError(
                f"{len(baseline) - len(candidate)} baseline rows in {baseline.source} have no candidate row",
                hint="evaluate both models on the same rows",
            )
        aligned = baseline.take(position)
    elif candidate.ids is None and baseline.ids is None:
        if len(candidate) != len(baseline):
            raise InputError(
                f"candidate has {len(candidate)} rows and baseline {baseline.source} has {len(baseline)}, "
                "and there is no id column to join them",
                hint="evaluate both models on the same rows, or add an id column to both files",
            )
        aligned = baseline
    else:
        has, lacks = (candidate, baseline) if candidate.ids is not None else (baseline, candidate)
        raise InputError(
            f"{has.source} has a row id column but {lacks.source} has none, so rows cannot be joined",
            hint="write the id column in both files, or in neither (then rows join by position)",
        )
    if aligned.labels is not None and candidate.labels is not None:
        differ = ~_same_values(candidate.labels, aligned.labels)
        if differ.any():
            row = int(np.flatnonzero(differ)[0])
            where = f"id {shown(candidate.ids[row])}" if candidate.ids is not None else f"row {row + 1}"
            raise InputError(
                f"candidate and baseline {baseline.source} disagree on the label at {where} "
                f"({shown(candidate.labels[row])} vs {shown(aligned.labels[row])})",
                hint="both files must score the same evaluation rows",
            )
    return aligned


def _same_unique_ids(a: "np.ndarray", b: "np.ndarray") -> bool:
    """True when both files list the same numeric ids in the same order, each id once."""
    import numpy as np
    import pandas as pd

    if a.dtype.kind not in "iuf" or b.dtype.kind not in "iuf" or not np.array_equal(a, b):
        return False
    return bool(np.all(a[1:] > a[:-1])) or bool(pd.Index(a).is_unique)


def _id_keys(ids: "np.ndarray") -> "np.ndarray":
    """Ids as comparable keys: integral floats as ints, everything else as text."""
    import numpy as np

    if ids.dtype.kind in "iuf":
        values = ids.astype(np.float64)
        if np.all(values == np.round(values)):
            return values.astype(np.int64)
        return values
    return np.asarray([str(v) for v in ids], dtype=object)


def _same_values(a: "np.ndarray", b: "np.ndarray") -> "np.ndarray":
    import numpy as np

    same: np.ndarray
    if a.dtype == object or b.dtype == object:
        same = np.asarray([_class_text(x) for x in a]) == np.asarray([_class_text(y) for y in b])
    else:
        same = a == b
    return same


# -- encoding ------------------------------------------------------------------------------------


def _class_text(value: Any) -> str:
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def _infer_task(tables: Sequence[PredictionTable], hint: str | None, memo: dict[Any, Any]) -> str:
    import numpy as np

    first = tables[0]
    numeric = all(
        (t.labels is None or t.labels.dtype != object) and t.predictions.dtype != object for t in tables
    )
    if numeric:
        arrays = [t.predictions for t in tables] + [t.labels for t in tables if t.labels is not None]
        fractional = any(_whole_numbers(a, memo) is None and not np.all(a == np.round(a)) for a in arrays)
        if fractional:
            return REGRESSION
        if hint == REGRESSION:
            return REGRESSION
    if first.proba and len(first.proba) >= 3:
        return MULTICLASS
    # The candidate's classes decide the task, so a baseline cannot change how the candidate is
    # scored; a baseline predicting a third class on a binary task is then refused when encoding.
    classes = _classes(tables[:1], memo)
    return MULTICLASS if len(classes) >= 3 else BINARY


def _classes(tables: Sequence[PredictionTable], memo: dict[Any, Any] | None = None) -> list[str]:
    seen: set[str] = set()
    numeric = True
    for t in tables:
        for arr in (t.labels, t.predictions):
            if arr is None:
                continue
            uniq, _ = _distinct(arr, memo)
            if arr.dtype == object:
                numeric = False
            seen.update(_class_text(v) for v in uniq.tolist())
    return _sorted_classes(seen, numeric=numeric)


#: Whole numbers up to this size are class codes counted directly, without sorting.
_DIRECT_LIMIT = float(2**52)


def _whole_numbers(values: "np.ndarray", memo: dict[Any, Any] | None = None) -> "np.ndarray | None":
    """``values`` as int64 when they are whole numbers within ±2**52, else None."""
    import numpy as np

    key = ("whole", id(values))
    if memo is not None and key in memo:
        return memo[key]  # type: ignore[no-any-return]
    whole = None
    in_range = values.dtype.kind in "fi" and len(values) > 0
    if in_range and values.min() >= -_DIRECT_LIMIT and values.max() <= _DIRECT_LIMIT:
        as_int = values.astype(np.int64, copy=False)
        if values.dtype.kind == "i" or np.array_equal(as_int, values):
            whole = as_int
    if memo is not None:
        memo[key] = whole
    return whole


def _distinct(values: "np.ndarray", memo: dict[Any, Any] | None = None) -> tuple["np.ndarray", "np.ndarray"]:
    """The sorted distinct values (as :func:`numpy.unique`) and each value's index among them.

    Class columns are mostly a few whole numbers: those are counted with one bincount instead of
    a sort. ``memo`` (keyed by array identity) spares recounting an array.
    """
    import numpy as np

    key = ("distinct", id(values))
    if memo is not None and key in memo:
        return memo[key]  # type: ignore[no-any-return]
    result = None
    whole = _whole_numbers(values, memo)
    if whole is not None:
        low = int(whole.min())
        span = int(whole.max()) - low
        if span < max(1 << 16, len(values)):
            offsets = whole - low if low else whole
            present = np.flatnonzero(np.bincount(offsets, minlength=span + 1))
            if len(present) == span + 1:  # every value in the range occurs: offsets are the indices
                inverse = offsets
            else:
                position = np.zeros(span + 1, dtype=np.int64)
                position[present] = np.arange(len(present))
                inverse = position[offsets]
            result = ((present + low).astype(np.float64), inverse)
    if result is None:
        uniq, inverse = np.unique(values, return_inverse=True)
        result = (uniq, inverse.reshape(-1))
    if memo is not None:
        memo[key] = result
    return result


def _sorted_classes(classes: Any, *, numeric: bool = True) -> list[str]:
    """Classes in scikit-learn's order: by value for numbers, lexicographic for text."""
    if numeric:
        try:
            return sorted(classes, key=float)
        except ValueError:
            pass
    return sorted(classes)


def encode_tables(
    tables: Sequence[PredictionTable],
    *,
    task: str | None = None,
    pos_label: str | None = None,
    task_hint: str | None = None,
) -> tuple[list[EncodedRows], list[str]]:
    """Encode aligned tables (candidate first) on one shared class list; return rows and classes."""

    if task is not None and task not in TASKS:
        raise UsageError(f"option --task must be one of {', '.join(TASKS)}, got {task!r}")
    labels = tables[0].labels
    if labels is None:
        raise InputError(f"{tables[0].source} has no label column", hint="check --label-column")
    if len(labels) != len(tables[0].predictions):  # pragma: no cover - one frame, always equal
        raise InputError(f"{tables[0].source}: labels and predictions have different lengths")
    memo: dict[Any, Any] = {}  # distinct values per array, computed once
    task = task or _infer_task(tables, task_hint, memo)
    if task == REGRESSION:
        out = []
        for t in tables:
            if t.predictions.dtype == object or labels.dtype == object:
                raise InputError(
                    f"{t.source}: a regression needs numeric labels and predictions",
                    hint="use --task binary or multiclass for class labels",
                )
            out.append(EncodedRows(task=REGRESSION, labels=labels, predictions=t.predictions))
        return out, []
    classes = _classes(tables, memo)
    if task == MULTICLASS:
        # The probability columns name the model's classes (scikit-learn's labels=): one the
        # evaluation rows never show still counts, for the candidate alone or next to a baseline.
        written = {c for t in tables for c in t.proba}
        if written - set(classes):
            numeric = all(t.labels is None or t.labels.dtype != object for t in tables)
            classes = _sorted_classes({*classes, *written}, numeric=numeric)
    pos_index: int | None = None
    if task == BINARY:
        own = set(_classes(tables[:1], memo)) | ({_class_text(pos_label)} if pos_label is not None else set())
        odd = next((t for t in tables[1:] if not set(_classes([t], memo)) <= own), None)
        if odd is not None and len(classes) > 2:
            raise InputError(
                f"{odd.source} predicts a class the candidate's binary task does not have "
                f"(classes {', '.join(classes[:6])})",
                hint="gate models of the same task: check the baseline's predictions, or set --task",
            )
        if pos_label is None:
            if set(classes) <= {"0", "1", "-1"}:
                pos_label = "1"
            else:
                raise InputError(
                    f"cannot tell the positive class among {', '.join(classes)}",
                    hint="set --pos-label to the class the score is the probability of",
                )
        pos_label = _class_text(pos_label)
        if pos_label not in classes:
            classes = _sorted_classes([*classes, pos_label])
        if len(classes) > 2:
            raise InputError(
                f"a binary task has more than two classes: {', '.join(classes[:6])}",
                hint="use --task multiclass, or check the label and prediction columns",
            )
        if len(classes) == 1:
            classes = _sorted_classes([*classes, "0" if pos_label != "0" else "1"])
        pos_index = classes.index(pos_label)
    index = {c: i for i, c in enumerate(classes)}
    label_codes = _codes(labels, index, memo)
    out = []
    for t in tables:
        scores = _scores_for(t, task, classes, pos_label)
        out.append(
            EncodedRows(
                task=task,
                labels=label_codes,
                predictions=_codes(t.predictions, index, memo),
                scores=scores,
                n_classes=len(classes),
                pos_index=pos_index,
                classes=tuple(classes),
                weights=tables[0].weights,
            )
        )
    if task == MULTICLASS and len(classes) < 2:
        raise InputError("a multiclass task needs at least two classes", hint="check --task")
    return out, classes


def _codes(
    values: "np.ndarray", index: Mapping[str, int], memo: dict[Any, Any] | None = None
) -> "np.ndarray":
    import numpy as np

    uniq, inverse = _distinct(values, memo)
    mapping = np.asarray([index[_class_text(v)] for v in uniq.tolist()], dtype=np.int64)
    if np.array_equal(mapping, np.arange(len(mapping))):
        return inverse  # already the class indices (e.g. labels 0 and 1)
    codes: np.ndarray = mapping[inverse]
    return codes


def _scores_for(t: PredictionTable, task: str, classes: list[str], pos_label: str | None) -> Any:
    import numpy as np

    if task == BINARY:
        if t.score is not None:
            return t.score
        if pos_label is not None and pos_label in t.proba:
            return t.proba[pos_label]
        return None
    if not t.proba:
        return None
    missing = [c for c in classes if c not in t.proba]
    if missing:
        raise InputError(
            f"{t.source} has probability columns but none for class {missing[0]!r}",
            hint="write one probability column per class",
        )
    return np.column_stack([t.proba[c] for c in classes])


def encode_arrays(
    y_true: Any,
    y_pred: Any,
    *,
    scores: Any = None,
    task: str | None = None,
    pos_label: Any = None,
    classes: Sequence[Any] | None = None,
) -> EncodedRows:
    """Encode in-memory arrays (the :func:`compute_metrics` entry point)."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"label": list(y_true) if not hasattr(y_true, "shape") else y_true})
    if len(y_pred) != len(frame):
        raise InputError(f"labels and predictions have different lengths ({len(frame)} vs {len(y_pred)})")
    frame["prediction"] = list(y_pred) if not hasattr(y_pred, "shape") else y_pred
    where = Path("<arrays>")
    labels = _class_column(_Columns(frame=frame), "label", where, "input")
    predictions = _class_column(_Columns(frame=frame), "prediction", where, "input")
    score = None
    proba: dict[str, np.ndarray] = {}
    if scores is not None:
        matrix = np.asarray(scores, dtype=np.float64)
        if len(matrix) != len(frame):
            raise InputError(f"labels and scores have different lengths ({len(frame)} vs {len(matrix)})")
        if not np.isfinite(matrix).all():
            raise InputError("scores hold a missing or infinite value", hint="pass finite scores")
        if matrix.ndim == 1:
            score = matrix
        else:
            names = [_class_text(c) for c in classes] if classes is not None else None
            if names is None:
                names = _classes([PredictionTable("<arrays>", labels, predictions)])
            if len(names) != matrix.shape[1]:
                raise InputError(
                    f"scores have {matrix.shape[1]} columns for {len(names)} classes",
                    hint="pass classes= in the order of the score columns",
                )
            proba = {n: matrix[:, i] for i, n in enumerate(names)}
    table = PredictionTable("<arrays>", labels, predictions, score=score, proba=proba)
    rows, _ = encode_tables(
        [table], task=task, pos_label=None if pos_label is None else _class_text(pos_label)
    )
    return rows[0]


def compute_metrics(
    y_true: Sequence[Any] | "np.ndarray",
    y_pred: Sequence[Any] | "np.ndarray",
    *,
    scores: Any = None,
    metrics: Sequence[str] | None = None,
    task: str | None = None,
    pos_label: Any = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, float]:
    """Compute metrics from labels, predictions and optional scores, as scikit-learn does.

    ``scores`` is the positive-class probability (binary) or an ``(n, K)`` matrix of class
    probabilities in the order of ``classes`` (default: sorted classes). ``metrics`` defaults to
    every metric that applies. Raises :class:`InputError` on inputs that cannot be scored.
    """
    rows = encode_arrays(y_true, y_pred, scores=scores, task=task, pos_label=pos_label, classes=classes)
    names = [canonical_name(n) for n in metrics] if metrics is not None else default_metrics(rows)
    out: dict[str, float] = {}
    for name in names:
        metric_for_task(name, rows.task, where="compute_metrics")
        if needs_scores(name) and rows.scores is None:
            raise InputError(f"metric {name!r} needs scores", hint="pass scores= (class probabilities)")
        out[name] = point_metric(name, rows)
    return out
