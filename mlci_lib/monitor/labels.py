"""Labels that arrive after the predictions, joined back onto the logged rows.

A labels file (CSV, Parquet, JSON Lines) holds a label column and a key: the request id the
server logged (``request_id``, with ``row`` when a request carried several rows), or a user id
column that the model received as an input (``--label-id-column customer_id`` joins on the logged
``inputs.customer_id``). Each key appears once in the labels file; many logged rows may share it
(one customer, many requests). Labels that join no logged row of the window are an input error,
never an empty pass; a partial join is reported with its counts.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from mlci_lib.errors import InputError
from mlci_lib.values import shown

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclasses.dataclass(frozen=True)
class JoinCounts:
    """How a labels file met the logged rows (part of the monitor verdict)."""

    source: str
    key: tuple[str, ...]
    label_column: str
    #: Rows of the labels file, and those whose label is missing (not used).
    label_rows: int
    missing_labels: int
    #: Logged rows in the window, and those that got a label.
    logged_rows: int
    joined_rows: int
    #: Labels whose key matched no logged row of the window (another window, or unknown ids).
    unmatched_labels: int


@dataclasses.dataclass(frozen=True)
class LabelJoin:
    counts: JoinCounts
    #: The labels file's labels (missing ones left out), in their own dtype.
    values: "np.ndarray"
    #: For each logged row, the index of its label in ``values``, or -1.
    position: "np.ndarray"

    @property
    def joined(self) -> "np.ndarray":
        return self.position >= 0

    def labels_of(self, rows: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
        """For the logged rows selected by the boolean ``rows``: which got a label, and the labels."""
        picked = self.position[rows]
        has = picked >= 0
        return has, self.values[picked[has]]


def _key_values(series: "pd.Series") -> "pd.Series":
    """A key column's values: numbers as floats, anything else as text (pandas' Arrow strings,
    which factorize many times faster than Python strings)."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64").reset_index(drop=True)
    return series.astype(str).reset_index(drop=True)


def _column_codes(left: "pd.Series", right: "pd.Series") -> tuple["np.ndarray", int]:
    """Codes ``0..size-1`` (``-1`` for a missing value) of one key column over both sides, equal
    where the values are, and ``size``.

    Whole numbers of a narrow range (the ``row`` of a request) are their own codes, offset by the
    smallest: no hash table to build. Anything else is factorized over both sides at once.
    """
    import numpy as np
    import pandas as pd

    if left.dtype.kind in "iu" and right.dtype.kind in "iu":
        values = np.concatenate([left.to_numpy(np.int64), right.to_numpy(np.int64)])
        if len(values):
            low, high = int(values.min()), int(values.max())
            if high - low < 2**31:
                return values - low, high - low + 1
    both = pd.concat([_key_values(left), _key_values(right)], ignore_index=True)
    codes, uniques = pd.factorize(both)
    return np.asarray(codes, dtype=np.int64), len(uniques)


def _codes(
    logged: "pd.DataFrame", labels: "pd.DataFrame", pairs: list[tuple[str, str]]
) -> tuple["np.ndarray", "np.ndarray"]:
    """One integer per key on both sides, equal where the keys are: a hash join on numbers.

    Each key column's codes (:func:`_column_codes`) are folded into one, ``code * (size + 1) +
    column code + 1``; only when the product of the sizes could overflow is the fold refactorized
    to keep it small. A tuple index of a million (request id, row) pairs costs many times more to
    build and probe.
    """
    import numpy as np
    import pandas as pd

    n = len(logged)
    combined = np.zeros(n + len(labels), dtype=np.int64)
    span = 1  # the fold's values are below this
    for log_column, label_column in pairs:
        codes, size = _column_codes(logged[log_column], labels[label_column])
        if span * (size + 1) >= 2**62:
            combined, uniques = pd.factorize(combined)
            span = len(uniques)
        combined = combined * (size + 1) + (codes + 1)
        span *= size + 1
    return combined[:n], combined[n:]


def _align_kinds(logged: "pd.DataFrame", labels: "pd.DataFrame", pairs: list[tuple[str, str]]) -> None:
    """A key numeric on one side and text on the other compares as text on both."""
    import pandas as pd

    for log_col, label_col in pairs:
        numeric = [
            pd.api.types.is_numeric_dtype(f[c].dtype) for f, c in ((logged, log_col), (labels, label_col))
        ]
        if numeric[0] != numeric[1]:
            for frame, column in ((logged, log_col), (labels, label_col)):
                values = frame[column]
                if pd.api.types.is_float_dtype(values.dtype) and (values.dropna() % 1 == 0).all():
                    values = values.astype("Int64")
                frame[column] = values.astype(str)


def join_labels(
    logged: "pd.DataFrame",
    labels: "str | os.PathLike[str]",
    *,
    label_column: str = "label",
    id_column: str | None = None,
) -> LabelJoin:
    """Join the labels file onto ``logged`` (flat log rows: ``request_id``, ``row``, ``inputs.*``)."""
    import numpy as np
    import pandas as pd

    from mlci_lib.tables import read_table

    frame = read_table(labels, what="labels file")
    source = str(labels)
    if label_column not in frame.columns:
        raise InputError(
            f"labels file {source} has no column {label_column!r}",
            hint="name its label column with --label-column (it has "
            + ", ".join(map(str, frame.columns[:8]))
            + ")",
        )
    if id_column:
        logged_key = f"inputs.{id_column}"
        if id_column not in frame.columns:
            raise InputError(
                f"labels file {source} has no column {id_column!r} (option --label-id-column)",
                hint="write the id column in the labels file, or join on request_id",
            )
        if logged_key not in logged.columns:
            raise InputError(
                f"option --label-id-column {id_column!r}: the logged rows have no input {id_column!r}",
                hint="name an input the model receives (and the server logs), or join on request_id",
            )
        pairs = [(logged_key, id_column)]
    else:
        if "request_id" not in frame.columns:
            raise InputError(
                f"labels file {source} has no request_id column to join on",
                hint="write the request id the server echoed (X-Request-Id), or join on an input "
                "column with --label-id-column",
            )
        pairs = [("request_id", "request_id")]
        if "row" in frame.columns:
            pairs.append(("row", "row"))
        elif "row" in logged.columns and logged["row"].to_numpy().max(initial=0) > 0:
            raise InputError(
                f"labels file {source} joins on request_id, but some logged requests hold several rows",
                hint="add a 'row' column (the row's position in its request, as logged), "
                "or join on an input column with --label-id-column",
            )
    keyed = frame[[c for _, c in pairs] + [label_column]].copy()
    log_keys = logged[[c for c, _ in pairs]].copy()
    _align_kinds(log_keys, keyed, pairs)
    missing = keyed[label_column].isna().to_numpy()
    keyed = keyed[~missing]
    log_codes, label_codes = _codes(log_keys, keyed, pairs)
    label_index = pd.Index(label_codes)
    if not label_index.is_unique:
        first = int(np.flatnonzero(label_index.duplicated())[0])
        key = keyed.iloc[first][[c for _, c in pairs]].tolist()
        shown_key = shown(key[0] if len(key) == 1 else tuple(key))
        raise InputError(
            f"labels file {source} gives key {shown_key} more than one label",
            hint="keep one label per " + " and ".join(c for _, c in pairs),
        )
    position = label_index.get_indexer(log_codes)
    joined = position >= 0
    values = keyed[label_column].to_numpy()
    used = np.zeros(len(keyed), dtype=bool)
    used[position[joined]] = True
    counts = JoinCounts(
        source=source,
        key=tuple(c for _, c in pairs),
        label_column=label_column,
        label_rows=len(frame),
        missing_labels=int(missing.sum()),
        logged_rows=len(logged),
        joined_rows=int(joined.sum()),
        unmatched_labels=int((~used).sum()),
    )
    if counts.joined_rows == 0:
        sample_label = shown(keyed.iloc[0][pairs[0][1]]) if len(keyed) else "none"
        sample_log = shown(log_keys.iloc[0].tolist()[0]) if len(log_keys) else "none"
        raise InputError(
            f"labels file {source}: none of its {len(keyed):,} labels joins a logged row of the window "
            f"on {' and '.join(counts.key)} (labels like {sample_label}, logged like {sample_log})",
            hint="pass the labels of these logs (and window), or the key they share with --label-id-column",
        )
    return LabelJoin(counts=counts, values=values, position=position)
