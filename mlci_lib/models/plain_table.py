"""Rows as named columns of plain values: the table of the ONNX runtime, which serves without pandas.

The ONNX runtime's serving image carries numpy and onnxruntime, not pandas (pandas and what it
depends on are 44 MB, more than half the 82 MB of that image's whole dependency layer). Its
requests, warm-up rows and signature coercion therefore use this table instead of a DataFrame:
:func:`mlci_lib.serving.payload.rows_to_frame` builds one for an ONNX model,
:meth:`LoadedModel.prepare` coerces it with :func:`coerce_plain` (the same rules and messages as
its pandas coercion, for the kinds a graph's inputs can take), and the ONNX adapter
(:mod:`mlci_lib.models.onnx_format`) turns the coerced columns into the graph's tensors.

After coercion, numeric and boolean columns are float64 arrays with NaN for missing (what the
pandas path hands a graph too), text and category columns object arrays with None for missing.
The few DataFrame methods the serving path calls on a table (``columns``, ``len``, selecting
columns, ``to_numpy``, ``to_dict("records")``) exist here under the same names.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError
from mlci_lib.values import is_missing, shown

if TYPE_CHECKING:
    import numpy as np

    from mlci_lib.models.signature import ColumnSpec, ModelSignature


class PlainTable:
    """Named columns of equal length; values as JSON gives them, or coerced numpy arrays."""

    __slots__ = ("_data", "_kinds", "_length")

    def __init__(self, data: Mapping[str, Sequence[Any]], *, kinds: Mapping[str, str] | None = None) -> None:
        lengths = {len(values) for values in data.values()}
        if len(lengths) > 1:
            raise ValueError("the columns of a table must have the same length")
        self._data = dict(data)
        self._length = lengths.pop() if lengths else 0
        #: The signature kind of each coerced column ("integer", "string"...); empty before coercion.
        self._kinds = dict(kinds or {})

    @property
    def columns(self) -> list[str]:
        return list(self._data)

    @property
    def shape(self) -> tuple[int, int]:
        return self._length, len(self._data)

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"PlainTable({self._length} rows: {', '.join(self._data)})"

    def column(self, name: str) -> Sequence[Any]:
        return self._data[name]

    def __getitem__(self, names: Iterable[str]) -> PlainTable:
        """The table of ``names`` (a list of columns, as ``frame[[...]]``; one column is :meth:`column`)."""
        if isinstance(names, str):
            raise TypeError("select columns with a list of names, or one column with .column(name)")
        names = list(names)
        return PlainTable({n: self._data[n] for n in names}, kinds={n: self._kinds.get(n, "") for n in names})

    def head(self, n: int) -> PlainTable:
        return PlainTable({name: values[:n] for name, values in self._data.items()}, kinds=self._kinds)

    def to_numpy(self, dtype: Any = None) -> np.ndarray:
        """The columns side by side (rows x columns); ValueError when a value is not a number."""
        import numpy as np

        if not self._data:
            return np.empty((self._length, 0), dtype=dtype)
        return np.column_stack([np.asarray(_numbers_or_raise(v), dtype=dtype) for v in self._data.values()])

    def to_dict(self, orient: str = "records") -> list[dict[str, Any]]:
        """One ``{column: value}`` per row, as plain JSON values (missing as None)."""
        if orient != "records":
            raise ValueError("a PlainTable gives records only")
        columns = [
            [_json_value(v, self._kinds.get(name, "")) for v in _as_list(values)]
            for name, values in self._data.items()
        ]
        names = list(self._data)
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _as_list(values: Sequence[Any]) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _json_value(value: Any, kind: str) -> Any:
    if is_missing(value):
        return None
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _numbers_or_raise(values: Sequence[Any]) -> Any:
    if hasattr(values, "dtype"):
        return values
    return [math.nan if is_missing(v) else v for v in values]


# -- coercion to a signature ---------------------------------------------------------------------


def coerce_plain(signature: ModelSignature, table: PlainTable, *, source: str = "input") -> PlainTable:
    """``table`` with exactly the signature's columns, coerced as :meth:`ModelSignature.coerce` does.

    Raises InputError naming the first missing column or the first value of a wrong type.
    """
    missing = [c.name for c in signature.columns if c.name not in table.columns]
    if missing:
        raise InputError(
            f"{source}: missing column {missing[0]!r}",
            hint=f"the model expects columns {', '.join(signature.names)}",
        )
    out: dict[str, Any] = {}
    for spec in signature.columns:
        coerce = _COERCERS.get(spec.kind)
        values = table.column(spec.name)
        out[spec.name] = values if coerce is None else coerce(values, spec, f"{source}: column {spec.name!r}")
    return PlainTable(out, kinds={c.name: c.kind for c in signature.columns})


def _bad(where: str, wanted: str, values: Sequence[Any], row: int, hint: str | None = None) -> InputError:
    return InputError(f"{where} {wanted}, row {row + 1} is {shown(values[row])}", hint=hint)


def numbers_of(values: Sequence[Any], where: str) -> np.ndarray:
    """float64 with NaN for missing; numeric text is read as a number, as ``pd.to_numeric`` does."""
    import numpy as np

    out = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        if is_missing(value):
            out[row] = np.nan
            continue
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            raise _bad(where, "must be numeric", values, row, hint="write numbers, not true/false")
        try:
            number = float(value.strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError, OverflowError):
            raise _bad(where, "must be numeric", values, row) from None
        if number != number:  # the text "nan" is not a missing value, pandas refuses it too
            raise _bad(where, "must be numeric", values, row)
        out[row] = number
    return out


def _coerce_integer(values: Sequence[Any], spec: ColumnSpec, where: str) -> np.ndarray:
    import numpy as np

    numbers = numbers_of(values, where)
    present = ~np.isnan(numbers)
    fraction = present & (numbers != np.floor(np.where(present, numbers, 0)))
    if fraction.any():
        raise _bad(where, "must hold whole numbers", values, int(np.flatnonzero(fraction)[0]))
    try:
        info = np.iinfo(np.dtype((spec.dtype or "int64").lower()))
    except TypeError:  # a dtype numpy does not know as an integer: no range to check
        return numbers
    for row, value in enumerate(values):
        if present[row] and not info.min <= (value if isinstance(value, int) else numbers[row]) <= info.max:
            raise _bad(where, f"must hold whole numbers from {info.min} to {info.max}", values, row)
    return numbers


def _coerce_float(values: Sequence[Any], spec: ColumnSpec, where: str) -> np.ndarray:
    return numbers_of(values, where)


def _coerce_boolean(values: Sequence[Any], spec: ColumnSpec, where: str) -> np.ndarray:
    """1.0 and 0.0, NaN for missing: what a graph's numeric input receives for a boolean column."""
    import numpy as np

    from mlci_lib.models.signature import boolean_value

    out = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        try:
            flag = boolean_value(value)
        except ValueError:
            raise _bad(where, "must be true or false", values, row) from None
        out[row] = np.nan if flag is None else float(flag)
    return out


def _text(values: Sequence[Any], where: str) -> np.ndarray:
    import numpy as np

    out = np.empty(len(values), dtype=object)
    for row, value in enumerate(values):
        if is_missing(value):
            out[row] = None
        elif isinstance(value, str):
            out[row] = str(value)
        else:
            raise _bad(
                where, "must be text", values, row, hint="quote the values, or read the column as text"
            )
    return out


def _coerce_string(values: Sequence[Any], spec: ColumnSpec, where: str) -> np.ndarray:
    return _text(values, where)


def _coerce_category(values: Sequence[Any], spec: ColumnSpec, where: str) -> np.ndarray:
    known = spec.categories
    if known and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in known):
        return numbers_of(values, where)
    return _text(values, where)


def _coerce_datetime(values: Sequence[Any], spec: ColumnSpec, where: str) -> np.ndarray:
    raise InputError(
        f"{where} holds dates and times, which an ONNX graph's inputs cannot take",
        hint="derive numeric features (day of week, hours since...) before exporting the model",
    )


_COERCERS: dict[str, Callable[[Sequence[Any], ColumnSpec, str], np.ndarray]] = {
    "integer": _coerce_integer,
    "float": _coerce_float,
    "boolean": _coerce_boolean,
    "string": _coerce_string,
    "category": _coerce_category,
    "datetime": _coerce_datetime,
}
