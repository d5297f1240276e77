"""The input columns a model expects, and the coercion of a table to them.

A signature is inferred from a few training rows when the model is saved, and every table the
model later predicts on (a CSV or Parquet file, a JSON request) is coerced to it. Coercion hands
the model what it was fitted on: the same columns in the same order, each of the same pandas
dtype wherever the signature recorded one (``Int64`` stays ``Int64``, a ``category`` column gets
the fitted categories back, a text column gets pandas' own missing marker).

Missing values: ``None``, NaN, NaT and ``pd.NA`` (and JSON ``null``) are missing in every kind
of column. Where the fitted dtype cannot hold a missing value (NumPy ``int64`` or ``bool``), the
column becomes the nearest dtype that can (``float64`` with NaN, pandas' nullable ``boolean``),
which scikit-learn reads as NaN: the model sees a missing value, never a made-up one.

The dict form (``mlci-model.json``) is ``{"inputs": [{"name": ..., "type": <kind>}, ...]}``; newer
files add ``dtype`` and, for ``category`` columns, ``categories`` and ``ordered``. Older files
without them still load, and coerce as before (NumPy dtypes, text as ``object``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError
from mlci_lib.values import is_missing, plain, shown

if TYPE_CHECKING:
    import pandas as pd

#: The kinds of column a signature knows. Anything else (from a newer mlci) passes unchanged.
KINDS = ("integer", "float", "boolean", "string", "category", "datetime")

_TRUE_TEXT = {"true": True, "false": False}


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # one of KINDS
    #: The pandas dtype the model was fitted on (``str(series.dtype)``: "int64", "Int64", "str",
    #: "category", "datetime64[us, UTC]"...), or None when the signature predates it.
    dtype: str | None = None
    #: For "category": the fitted categories in their order (codes follow this order), or None
    #: when they are not plain JSON values.
    categories: tuple[Any, ...] | None = None
    ordered: bool = False
    #: For ``object`` columns: the missing marker the fitted data used, "nan" or "none".
    #: scikit-learn's encoders tell None and NaN apart, so a model fitted on one must get that one.
    missing: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.kind}
        if self.dtype is not None:
            out["dtype"] = self.dtype
        if self.kind == "category":
            out["categories"] = None if self.categories is None else list(self.categories)
            out["ordered"] = self.ordered
        if self.missing is not None:
            out["missing"] = self.missing
        return out

    def placeholder(self) -> Any:
        """A value this column accepts, for warm-up rows: zero, false, empty text, the epoch.

        It must pass coercion: a time-zone-aware column takes only times with a zone, and a
        category column is given a category the model knows.
        """
        if self.kind == "category" and self.categories:
            return self.categories[0]
        if self.kind == "datetime":
            import pandas as pd

            tz = getattr(pd.api.types.pandas_dtype(self.dtype), "tz", None) if self.dtype else None
            return pd.Timestamp(0, tz=tz)
        return {"integer": 0, "float": 0.0, "boolean": False}.get(self.kind, "")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSpec:
        categories = data.get("categories")
        if categories is not None and not isinstance(categories, list):
            raise TypeError(f"categories of column {data['name']!r} must be a list")
        dtype = data.get("dtype")
        missing = data.get("missing")
        return cls(
            name=str(data["name"]),
            kind=str(data["type"]),
            dtype=None if dtype is None else str(dtype),
            categories=None if categories is None else tuple(categories),
            ordered=bool(data.get("ordered", False)),
            missing=missing if missing in ("nan", "none") else None,
        )


@dataclasses.dataclass(frozen=True)
class ModelSignature:
    """The input columns a model expects, with the kind of value of each."""

    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSignature:
        return cls(tuple(ColumnSpec.from_dict(c) for c in data["inputs"]))

    @classmethod
    def infer(cls, frame: pd.DataFrame) -> ModelSignature:
        return cls(tuple(_infer_column(str(name), frame[name]) for name in frame.columns))

    def coerce(self, frame: pd.DataFrame, *, source: str = "input") -> pd.DataFrame:
        """Return ``frame`` with exactly the signature's columns, each of the fitted dtype.

        Raises InputError naming the first missing column or the first value of a wrong type.
        """
        import pandas as pd

        missing = [c.name for c in self.columns if c.name not in frame.columns]
        if missing:
            raise InputError(
                f"{source}: missing column {missing[0]!r}",
                hint=f"the model expects columns {', '.join(self.names)}",
            )
        out = {}
        for spec in self.columns:
            series = frame[spec.name]
            if isinstance(series, pd.DataFrame):
                raise InputError(f"{source}: column {spec.name!r} appears more than once")
            coerce = _COERCERS.get(spec.kind)
            out[spec.name] = (
                series if coerce is None else coerce(series, spec, f"{source}: column {spec.name!r}")
            )
        return pd.DataFrame(out, index=frame.index)


# -- inference -----------------------------------------------------------------------------------


def _infer_column(name: str, series: pd.Series) -> ColumnSpec:
    import pandas as pd

    dtype = series.dtype
    text = str(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        categories = [plain(c) for c in dtype.categories]
        known = all(isinstance(c, (str, int, float, bool)) for c in categories)
        return ColumnSpec(
            name, "category", text, tuple(categories) if known else None, ordered=bool(dtype.ordered)
        )
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnSpec(name, "boolean", text)
    if pd.api.types.is_integer_dtype(dtype):
        return ColumnSpec(name, "integer", text)
    if pd.api.types.is_float_dtype(dtype):
        return ColumnSpec(name, "float", text)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return ColumnSpec(name, "datetime", text)
    if pd.api.types.is_object_dtype(dtype):
        marker = _object_missing_marker(series)
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred == "boolean":
            return ColumnSpec(name, "boolean", text, missing=marker)
        if inferred in ("date", "datetime", "datetime64"):
            return ColumnSpec(name, "datetime")
        if inferred == "integer":
            return ColumnSpec(name, "integer")
        if inferred in ("floating", "mixed-integer-float", "decimal"):
            return ColumnSpec(name, "float")
        return ColumnSpec(name, "string", text, missing=marker)
    return ColumnSpec(name, "string", text)


def _object_missing_marker(series: pd.Series) -> str | None:
    kinds = {"none" if v is None else "nan" for v in series if is_missing(v)}
    return "none" if kinds == {"none"} else None


# -- coercion, one function per kind -------------------------------------------------------------


def _first_row(mask: Any) -> int:
    import numpy as np

    return int(np.flatnonzero(np.asarray(mask, dtype=bool))[0])


def _bad(where: str, wanted: str, series: pd.Series, row: int, hint: str | None = None) -> InputError:
    return InputError(f"{where} {wanted}, row {row + 1} is {shown(series.iloc[row])}", hint=hint)


def _numbers(series: pd.Series, where: str) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        raise _bad(where, "must be numeric", series, 0, hint="write numbers, not true/false")
    if pd.api.types.is_object_dtype(series.dtype):
        flags = series.map(lambda v: isinstance(v, bool) or type(v).__name__ == "bool").to_numpy(dtype=bool)
        if flags.any():
            raise _bad(
                where, "must be numeric", series, _first_row(flags), hint="write numbers, not true/false"
            )
    converted = pd.to_numeric(series, errors="coerce")
    bad = converted.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        raise _bad(where, "must be numeric", series, _first_row(bad))
    return converted.astype("float64") if converted.dtype != "float64" else converted


def _coerce_integer(series: pd.Series, spec: ColumnSpec, where: str) -> pd.Series:
    import numpy as np
    import pandas as pd

    target = spec.dtype or "int64"
    if str(series.dtype) == target:
        return series
    dtype = pd.api.types.pandas_dtype(target)
    if not pd.api.types.is_integer_dtype(dtype):
        return _numbers(series, where)  # a dtype this pandas does not know as integer
    values = _exact_integers(series)
    if values is None:
        values = _numbers(series, where)
        numbers = values.to_numpy()
        present = values.notna().to_numpy()
        fraction = present & (numbers != np.floor(np.where(present, numbers, 0)))
        if fraction.any():
            raise _bad(where, "must hold whole numbers", series, _first_row(fraction))
    present = values.notna().to_numpy()
    info = np.iinfo(dtype.numpy_dtype if hasattr(dtype, "numpy_dtype") else dtype)
    as_float = values.to_numpy(dtype="float64", na_value=0.0)
    out_of_range = present & ((as_float < info.min) | (as_float > info.max))
    if out_of_range.any():
        raise _bad(
            where, f"must hold whole numbers from {info.min} to {info.max}", series, _first_row(out_of_range)
        )
    if not present.all() and isinstance(dtype, np.dtype):
        # NumPy integers cannot hold a missing value; float64 NaN is what pandas itself uses for
        # such a column, and what scikit-learn turns every integer column into anyway.
        return values.astype("float64")
    return values.astype(dtype)


def _exact_integers(series: pd.Series) -> pd.Series | None:
    """``series`` as integers without passing through float64 (exact beyond 2**53), or None.

    JSON gives Python ints and None; a float64 detour would round large ids before any check.
    """
    import numpy as np
    import pandas as pd

    if pd.api.types.is_integer_dtype(series.dtype):
        return series
    if not pd.api.types.is_object_dtype(series.dtype):
        return None
    values: list[int | None] = []
    for value in series:
        if is_missing(value):
            values.append(None)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            values.append(int(value))
        else:
            return None
    try:
        return pd.Series(pd.array(values, dtype="Int64"), index=series.index)
    except (TypeError, ValueError, OverflowError):
        return None


def _coerce_float(series: pd.Series, spec: ColumnSpec, where: str) -> pd.Series:
    target = spec.dtype or "float64"
    if str(series.dtype) == target:
        return series
    return _numbers(series, where).astype(target)


def boolean_value(value: Any) -> bool | None:
    """True/False for the ways a boolean is written, None when missing; raises ValueError otherwise."""
    value = plain(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_TEXT:
        return _TRUE_TEXT[value.strip().lower()]
    raise ValueError(value)


def _coerce_boolean(series: pd.Series, spec: ColumnSpec, where: str) -> pd.Series:
    import numpy as np
    import pandas as pd

    target = spec.dtype or "bool"
    if str(series.dtype) == target:
        return series
    values: list[bool | None] = []
    for row, value in enumerate(series):
        try:
            values.append(boolean_value(value))
        except ValueError:
            raise _bad(where, "must be true or false", series, row) from None
    has_missing = any(v is None for v in values)
    if target == "object":
        marker = None if spec.missing == "none" else np.nan
        return pd.Series(
            np.array([marker if v is None else v for v in values], dtype=object),
            index=series.index,
            dtype=object,
        )
    if target == "bool" and not has_missing:
        return pd.Series(np.array(values, dtype=bool), index=series.index)
    # NumPy's bool has no missing value: pandas' nullable boolean marks the gaps instead.
    return pd.Series(pd.array(values, dtype="boolean"), index=series.index)


def _check_text(series: pd.Series, where: str) -> None:
    import pandas as pd

    if pd.api.types.is_object_dtype(series.dtype):
        non_text = series.map(lambda v: not isinstance(v, str) and not is_missing(v)).to_numpy(dtype=bool)
        if non_text.any():
            raise _bad(
                where,
                "must be text",
                series,
                _first_row(non_text),
                hint="quote the values, or read the column as text",
            )
        return
    if not pd.api.types.is_string_dtype(series.dtype) and series.notna().any():
        raise _bad(
            where,
            "must be text",
            series,
            _first_row(series.notna()),
            hint="quote the values, or read the column as text",
        )


def _text_with_marker(series: pd.Series, spec: ColumnSpec) -> pd.Series:
    """``series`` as text of the fitted dtype, its missing values as that dtype's marker."""
    import numpy as np
    import pandas as pd

    target = spec.dtype or "object"
    if target == "str" and not isinstance(pd.api.types.pandas_dtype("str"), pd.StringDtype):
        target = "object"  # pandas before 3 reads "str" as NumPy text, which writes NaN as 'nan'
    if target == "object":
        marker = None if spec.missing == "none" else np.nan
        values = series.to_numpy(dtype=object, copy=True)
        values[series.isna().to_numpy()] = marker
        return pd.Series(values, index=series.index, dtype=object)
    try:
        return series.astype(target)
    except (TypeError, ValueError):
        return series.astype(object)


def _plain_values(series: pd.Series) -> pd.Series:
    """A categorical column as its values: coercion checks and converts values, not codes."""
    import pandas as pd

    return series.astype(object) if isinstance(series.dtype, pd.CategoricalDtype) else series


def _coerce_string(series: pd.Series, spec: ColumnSpec, where: str) -> pd.Series:
    series = _plain_values(series)
    if spec.dtype is not None and str(series.dtype) == spec.dtype and spec.dtype != "object":
        return series
    _check_text(series, where)
    return _text_with_marker(series, spec)


def _coerce_category(series: pd.Series, spec: ColumnSpec, where: str) -> pd.Series:
    import pandas as pd

    known = spec.categories
    if known is None:
        return series.astype("category")
    series = _plain_values(series)
    numeric = bool(known) and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in known)
    if numeric:
        values = _numbers(series, where)
    else:
        _check_text(series, where)
        values = series.astype(object).map(lambda v: None if is_missing(v) else str(v))
    # Unseen values are kept (after the fitted categories, so known codes are unchanged): the
    # model's own encoder decides what an unknown category means, not the signature.
    seen = set(known)
    extra = [v for v in pd.unique(values.dropna()) if v not in seen]
    categorical = pd.Categorical(values, categories=[*known, *extra], ordered=spec.ordered)
    return pd.Series(categorical, index=series.index)


def _coerce_datetime(series: pd.Series, spec: ColumnSpec, where: str) -> pd.Series:
    import pandas as pd

    target = pd.api.types.pandas_dtype(spec.dtype) if spec.dtype else None
    if target is not None and series.dtype == target:
        return series
    is_time = pd.api.types.is_datetime64_any_dtype(series.dtype)
    parsed = series if is_time else _parse_times(series, where)
    if target is None or not pd.api.types.is_datetime64_any_dtype(target):
        return parsed
    wanted_tz = getattr(target, "tz", None)
    has_tz = getattr(parsed.dtype, "tz", None) is not None
    present = parsed.notna().to_numpy()
    if not present.any():
        return pd.Series(pd.NaT, index=series.index, dtype=target)  # all missing: no zone to check
    if has_tz != (wanted_tz is not None):
        row = _first_row(present)
        if wanted_tz is not None:
            raise InputError(
                f"{where} holds times with a time zone ({wanted_tz}), row {row + 1} has none "
                f"({shown(series.iloc[row])})",
                hint="write each time with its offset, e.g. 2024-01-01T09:00:00+01:00",
            )
        raise InputError(
            f"{where} holds times without a time zone, row {row + 1} has one ({shown(series.iloc[row])})",
            hint="write local times without an offset, as in the training data",
        )
    if wanted_tz is not None and has_tz:
        parsed = parsed.dt.tz_convert(wanted_tz)
    try:
        return parsed.astype(target)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(f"{where}: times out of range for {target} ({exc})") from None


def _parse_times(series: pd.Series, where: str) -> pd.Series:
    import numpy as np
    import pandas as pd

    def is_time(value: Any) -> bool:
        return isinstance(value, (str, _dt.date, np.datetime64)) or is_missing(value)

    odd = series.map(lambda v: not is_time(v)).to_numpy(dtype=bool)
    if odd.any():
        raise _bad(
            where, "must be a date and time", series, _first_row(odd), hint="write times as ISO 8601 text"
        )
    parsed = None
    for fmt in ("ISO8601", "mixed"):
        try:
            parsed = pd.to_datetime(series, errors="coerce", format=fmt)
        except ValueError:
            # Offsets that differ between rows: one column must have one time zone, so compare
            # them in UTC (the fitted zone is applied afterwards).
            parsed = pd.to_datetime(series, errors="coerce", format=fmt, utc=True)
        bad = parsed.isna().to_numpy() & series.notna().to_numpy()
        if not bad.any():
            return parsed
    assert parsed is not None
    bad = parsed.isna().to_numpy() & series.notna().to_numpy()
    raise _bad(where, "must be a date and time", series, _first_row(bad), hint="write times as ISO 8601 text")


_COERCERS: dict[str, Callable[[Any, ColumnSpec, str], Any]] = {
    "integer": _coerce_integer,
    "float": _coerce_float,
    "boolean": _coerce_boolean,
    "string": _coerce_string,
    "category": _coerce_category,
    "datetime": _coerce_datetime,
}
