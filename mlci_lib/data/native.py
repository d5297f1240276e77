"""The data check's native engine: the common GX 1.x expectation types on pandas, with GX's answers.

Great Expectations resolves each expectation through a graph of metrics, and importing it is
half of a data check's time. The types most suites are made of are a comparison or an
aggregate over one column, so this module computes them with the same pandas calls GX's pandas
engine makes, on the same frame, and builds the result GX would report:

- the same domain: for the value checks, the column without its missing values
  (``Series.notnull``); for the not-null check every row; for the aggregates (mean, min, max,
  quantiles) the whole column, whose missing values pandas skips;
- the same condition (``isin``, ``duplicated(keep=False)``, ``astype(str).str.contains`` ...);
- the same counts and shares: ``unexpected_percent`` over the non-missing values (over all
  rows for the not-null check), ``missing_count``, success as ``(n - unexpected) / n >= mostly``
  and vacuously true when no value is left;
- the same partial unexpected list: the first unexpected values, in row order.

:func:`evaluate` answers only where it is sure to answer as GX does: a known type whose
arguments all have their plain form (numbers for numeric bounds, a list for a value set ...),
on a column that exists and has a dtype the type handles. Anything else returns None and the
expectation runs on GX, in the same verdict. ``tests/test_data_native.py`` compares both
engines on every suite of the tests and on generated ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from mlci_lib.data.suite import Expectation

#: Expectation types this engine evaluates (when their arguments and the column allow it).
NATIVE_TYPES = frozenset(
    {
        "expect_table_row_count_to_be_between",
        "expect_column_to_exist",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_be_in_type_list",
        "expect_column_value_lengths_to_be_between",
        "expect_column_value_lengths_to_equal",
        "expect_column_mean_to_be_between",
        "expect_column_min_to_be_between",
        "expect_column_max_to_be_between",
        "expect_column_quantile_values_to_be_between",
    }
)

#: The arguments each type takes natively; any other argument sends it to GX.
_ARGUMENTS: dict[str, frozenset[str]] = {
    "expect_table_row_count_to_be_between": frozenset({"min_value", "max_value", "strict_min", "strict_max"}),
    "expect_column_to_exist": frozenset({"column"}),
    "expect_column_values_to_not_be_null": frozenset({"column", "mostly"}),
    "expect_column_values_to_be_between": frozenset(
        {"column", "min_value", "max_value", "strict_min", "strict_max", "mostly"}
    ),
    "expect_column_values_to_be_in_set": frozenset({"column", "value_set", "mostly"}),
    "expect_column_values_to_be_unique": frozenset({"column", "mostly"}),
    "expect_column_values_to_match_regex": frozenset({"column", "regex", "mostly"}),
    "expect_column_values_to_be_in_type_list": frozenset({"column", "type_list", "mostly"}),
    "expect_column_value_lengths_to_be_between": frozenset(
        {"column", "min_value", "max_value", "strict_min", "strict_max", "mostly"}
    ),
    "expect_column_value_lengths_to_equal": frozenset({"column", "value", "mostly"}),
    "expect_column_mean_to_be_between": frozenset(
        {"column", "min_value", "max_value", "strict_min", "strict_max"}
    ),
    "expect_column_min_to_be_between": frozenset(
        {"column", "min_value", "max_value", "strict_min", "strict_max"}
    ),
    "expect_column_max_to_be_between": frozenset(
        {"column", "min_value", "max_value", "strict_min", "strict_max"}
    ),
    "expect_column_quantile_values_to_be_between": frozenset({"column", "quantile_ranges"}),
}


_AGGREGATES = frozenset(
    {
        "expect_column_mean_to_be_between",
        "expect_column_min_to_be_between",
        "expect_column_max_to_be_between",
        "expect_column_quantile_values_to_be_between",
    }
)


@dataclasses.dataclass(frozen=True)
class NativeResult:
    """What GX's ``ExpectationValidationResult`` would hold: success and the result mapping."""

    success: bool
    result: dict[str, Any]


class Columns:
    """The frame's columns, each one's missing-value mask and non-missing values computed once."""

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self._notnull: dict[str, Any] = {}
        self._domain: dict[str, Any] = {}

    def notnull(self, name: str) -> Any:
        """A NumPy boolean mask of the non-missing values (``Series.notnull``, without its index)."""
        if name not in self._notnull:
            import numpy as np

            column = self.frame[name]
            kind = column.dtype.kind if isinstance(column.dtype, np.dtype) else ""
            if kind in "iub" and kind:
                mask = np.ones(len(column), dtype=bool)  # NumPy integers and booleans hold no NA
            elif kind == "f":
                mask = ~np.isnan(column.to_numpy())
            else:
                mask = column.notnull().to_numpy(dtype=bool)
            self._notnull[name] = mask
        return self._notnull[name]

    def domain(self, name: str) -> Any:
        """The column without its missing values, as GX's ``filter_column_isnull`` leaves it."""
        if name not in self._domain:
            column = self.frame[name]
            mask = self.notnull(name)
            self._domain[name] = column if bool(mask.all()) else column[mask]
        return self._domain[name]


def covers(expectation: Expectation) -> bool:
    """Whether the type and the argument names are ones this engine may evaluate."""
    allowed = _ARGUMENTS.get(expectation.type)
    return allowed is not None and set(expectation.kwargs) <= allowed


def evaluate(expectation: Expectation, columns: Columns, sample_size: int) -> NativeResult | None:
    """GX's result for ``expectation`` on the frame, or None where GX must answer."""
    if not covers(expectation):
        return None
    kwargs = expectation.kwargs
    kind = expectation.type
    frame = columns.frame
    if kind == "expect_table_row_count_to_be_between":
        bounds = _bounds(kwargs, integers=True)
        if bounds is None:
            return None
        return _metric_between(len(frame), bounds)
    column = kwargs.get("column")
    if not isinstance(column, str) or column not in frame.columns:
        return None  # GX's own message for a missing column
    if list(frame.columns).count(column) != 1:
        return None
    if kind == "expect_column_to_exist":
        return NativeResult(True, {})
    mostly = kwargs.get("mostly", 1.0)
    if not _is_number(mostly) or not 0 <= mostly <= 1:
        return None
    series = frame[column]
    if kind == "expect_column_values_to_not_be_null":
        return _not_null(series, columns.notnull(column), float(mostly), sample_size)
    if kind in _AGGREGATES:
        if not _plain_numeric(series.dtype):
            return None
        # GX's pandas aggregates take the whole column (pandas skips the missing values): a
        # mean of the filtered values can differ from it in the last bit.
        return _aggregate(kind, kwargs, series)
    condition = _condition(kind, kwargs, series)
    if condition is None:
        return None
    domain = columns.domain(column)
    try:
        expected = condition(domain)
    except (TypeError, ValueError):
        return None  # GX raises too, and reports it in its own words
    return _map_result(len(frame), domain, expected, float(mostly), sample_size)


# -- map expectations -----------------------------------------------------------------------


def _not_null(series: Any, notnull: Any, mostly: float, sample_size: int) -> NativeResult:
    total = len(series)
    unexpected = total - int(notnull.sum())
    success = (total - unexpected) / total >= mostly if total else True
    return NativeResult(
        bool(success),
        {
            "element_count": total,
            "unexpected_count": unexpected,
            "unexpected_percent": unexpected / total * 100 if total else None,
            "partial_unexpected_list": list(series[~notnull][: max(sample_size, 1)]),
        },
    )


def _map_result(total: int, domain: Any, expected: Any, mostly: float, sample_size: int) -> NativeResult:
    import numpy as np

    unexpected_mask = ~np.asarray(expected, dtype=bool)
    unexpected = int(unexpected_mask.sum())
    nonnull = len(domain)
    if total == 0 or nonnull == 0:
        success = True
    else:
        success = (float(nonnull) - float(unexpected)) / float(nonnull) >= mostly
    missing = total - nonnull
    percent = unexpected / nonnull * 100 if nonnull > 0 and total > 0 else None
    sample = list(domain[unexpected_mask][: max(sample_size, 1)]) if unexpected else []
    return NativeResult(
        bool(success),
        {
            "element_count": total,
            "unexpected_count": unexpected,
            "unexpected_percent": percent,
            "partial_unexpected_list": sample,
            "missing_count": missing,
        },
    )


def _condition(kind: str, kwargs: Mapping[str, Any], series: Any) -> Any:
    """The expected-value test GX's pandas engine applies to the non-missing values, or None."""
    dtype = series.dtype
    if kind == "expect_column_values_to_be_between":
        bounds = _bounds(kwargs, integers=False)
        if bounds is None or str(dtype) not in _EXACT_COMPARISON:
            return None
        low, high, strict_low, strict_high = bounds

        def between(column: Any) -> Any:
            import numpy as np

            # NumPy dtypes: the comparison pandas would make, without its per-operation overhead.
            values = column.to_numpy() if isinstance(column.dtype, np.dtype) else column
            above = True if low is None else (values > low if strict_low else values >= low)
            below = True if high is None else (values < high if strict_high else values <= high)
            return above & below

        return between
    if kind == "expect_column_values_to_be_in_set":
        values = kwargs.get("value_set")
        if not isinstance(values, list) or not values or not all(_is_scalar(v) for v in values):
            return None
        return lambda column: column.isin(values)
    if kind == "expect_column_values_to_be_unique":
        return lambda column: ~column.duplicated(keep=False)
    if kind == "expect_column_values_to_match_regex":
        regex = kwargs.get("regex")
        if not isinstance(regex, str):
            return None
        return lambda column: column.astype(str).str.contains(regex)
    if kind == "expect_column_value_lengths_to_equal":
        value = kwargs.get("value")
        if not _is_number(value):
            return None
        return lambda column: column.astype(str).str.len() == value
    if kind == "expect_column_value_lengths_to_be_between":
        bounds = _bounds(kwargs, integers=False)
        if bounds is None:
            return None
        return _lengths_between(*bounds)
    if kind == "expect_column_values_to_be_in_type_list":
        return _type_condition(kwargs.get("type_list"), dtype)
    return None


def _lengths_between(low: Any, high: Any, strict_low: bool, strict_high: bool) -> Any:
    def test(column: Any) -> Any:
        lengths = column.astype(str).str.len()
        if low is not None and high is not None:
            inclusive = {(True, True): "neither", (True, False): "right", (False, True): "left"}
            return lengths.between(low, high, inclusive=inclusive.get((strict_low, strict_high), "both"))
        if low is not None:
            return lengths > low if strict_low else lengths >= low
        return lengths < high if strict_high else lengths <= high

    return test


def _type_condition(type_list: Any, dtype: Any) -> Any:
    """Object columns: GX checks each value's type; other dtypes are a table-level decision."""
    if not isinstance(type_list, list) or not all(isinstance(t, str) for t in type_list):
        return None
    if dtype.type.__name__ != "object_":
        return None  # decided on the dtype: see dtype_in_list
    types = tuple(_value_types(type_list))
    if not types:
        return None
    return lambda column: column.map(lambda value: isinstance(value, types))


def dtype_in_list(expectation: Expectation, columns: Columns) -> NativeResult | None:
    """``expect_column_values_to_be_in_type_list`` on a column that is not ``object``: GX decides on
    the dtype alone and reports its scalar type's name."""
    if expectation.type != "expect_column_values_to_be_in_type_list" or not covers(expectation):
        return None
    column, type_list = expectation.kwargs.get("column"), expectation.kwargs.get("type_list")
    frame = columns.frame
    if not isinstance(column, str) or column not in frame.columns or list(frame.columns).count(column) != 1:
        return None
    if not isinstance(type_list, list) or not all(isinstance(t, str) for t in type_list):
        return None
    dtype = frame[column].dtype
    if dtype.type.__name__ == "object_":
        return None
    return NativeResult(bool(dtype in _dtype_types(type_list)), {"observed_value": dtype.type.__name__})


def _dtype_types(type_list: list[str]) -> list[Any]:
    """The types and dtypes GX's pandas engine compares a column's dtype with (same order, same rules)."""
    import numpy as np
    import pandas as pd

    found: list[Any] = []
    for name in type_list:
        try:
            found.append(np.dtype(name).type)
            found.append(np.dtype(name))
        except TypeError:
            pd_type = getattr(pd, name, None)
            if isinstance(pd_type, type):
                found.append(pd_type)
                try:
                    if isinstance(pd_type(), pd.api.extensions.ExtensionDtype):
                        found.append(pd_type())
                except TypeError:
                    pass
            nested = getattr(pd.core.dtypes.dtypes, name, None)
            if isinstance(nested, type):
                found.append(nested)
        found.extend(_native_types(name))
    return found


def _value_types(type_list: list[str]) -> list[type]:
    """The types GX's pandas engine tests each value of an object column with."""
    import numpy as np
    import pandas as pd

    found: list[type] = []
    for name in type_list:
        try:
            found.append(np.dtype(name).type)
        except TypeError:
            pd_type = getattr(pd, name, None)
            if isinstance(pd_type, type):
                found.append(pd_type)
            nested = getattr(pd.core.dtypes.dtypes, name, None)
            if isinstance(nested, type):
                found.append(nested)
        found.extend(_native_types(name))
    return found


def _native_types(name: str) -> tuple[type, ...]:
    lowered = name.lower()
    table: dict[str, tuple[type, ...]] = {
        "none": (type(None),),
        "bool": (bool,),
        "int": (int,),
        "long": (int,),
        "float": (float,),
        "bytes": (bytes,),
        "complex": (complex,),
        "str": (str,),
        "string_types": (str,),
        "list": (list,),
        "dict": (dict,),
    }
    return table.get(lowered, ())


# -- aggregates -----------------------------------------------------------------------------


def _aggregate(kind: str, kwargs: Mapping[str, Any], domain: Any) -> NativeResult | None:
    if kind == "expect_column_quantile_values_to_be_between":
        return _quantiles(kwargs.get("quantile_ranges"), domain)
    bounds = _bounds(kwargs, integers=False)
    if bounds is None:
        return None
    if kind == "expect_column_mean_to_be_between":
        value = domain.mean()
    elif kind == "expect_column_min_to_be_between":
        value = domain.min()
    else:
        value = domain.max()
    return _metric_between(value, bounds)


def _metric_between(value: Any, bounds: tuple[Any, Any, bool, bool]) -> NativeResult:
    """GX's ``_validate_metric_value_between`` for a number."""
    import pandas as pd

    if value is None:
        return NativeResult(False, {"observed_value": None})
    if pd.isnull(value):
        return NativeResult(False, {"observed_value": None})
    low, high, strict_low, strict_high = bounds
    above = True if low is None else (value > low if strict_low else value >= low)
    below = True if high is None else (value < high if strict_high else value <= high)
    return NativeResult(bool(above and below), {"observed_value": value})


def _quantiles(ranges: Any, domain: Any) -> NativeResult | None:
    import numpy as np

    if not isinstance(ranges, Mapping) or set(ranges) != {"quantiles", "value_ranges"}:
        return None
    quantiles, value_ranges = ranges["quantiles"], ranges["value_ranges"]
    if not isinstance(quantiles, list) or not isinstance(value_ranges, list):
        return None
    if len(quantiles) != len(value_ranges) or not quantiles:
        return None
    if not all(_is_number(q) and 0 <= q <= 1 for q in quantiles):
        return None
    for pair in value_ranges:
        if not isinstance(pair, list) or len(pair) != 2 or not all(v is None or _is_number(v) for v in pair):
            return None
    values = domain.quantile(quantiles, interpolation="nearest").tolist()
    details = []
    for value, (low, high) in zip(values, value_ranges, strict=True):
        lower = -np.inf if low is None else low
        upper = np.inf if high is None else high
        close = bool(np.isclose(np.float64(value), np.float64(lower), rtol=1.0e-4, atol=1.0e-8)) or bool(
            np.isclose(np.float64(value), np.float64(upper), rtol=1.0e-4, atol=1.0e-8)
        )
        details.append(close or bool(lower <= value <= upper))
    return NativeResult(
        bool(np.all(details)),
        {
            "observed_value": {"quantiles": quantiles, "values": values},
            "details": {"success_details": details},
        },
    )


# -- arguments ------------------------------------------------------------------------------


def _bounds(kwargs: Mapping[str, Any], *, integers: bool) -> tuple[Any, Any, bool, bool] | None:
    """(min, max, strict_min, strict_max) when both bounds are plain numbers or absent, not both
    absent, and in order; None otherwise (GX then explains or decides)."""
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    strict_low, strict_high = kwargs.get("strict_min", False), kwargs.get("strict_max", False)
    if not isinstance(strict_low, bool) or not isinstance(strict_high, bool):
        return None
    for value in (low, high):
        if value is not None and not _is_number(value):
            return None
        if integers and value is not None and not isinstance(value, int):
            return None
    if low is None and high is None:
        return None
    if low is not None and high is not None and low > high:
        return None
    return low, high, strict_low, strict_high


#: Dtypes on which a vectorised comparison with a Python number decides what GX decides: GX
#: compares int64 and float64 columns vectorised and other dtypes value by value as Python
#: numbers, which float32 (compared in float32 when vectorised) and 64-bit integers beyond 2**53
#: in a nullable or unsigned column would not match.
_EXACT_COMPARISON = frozenset(
    {
        "int64", "float64", "int8", "int16", "int32", "uint8", "uint16", "uint32",
        "Int8", "Int16", "Int32", "UInt8", "UInt16", "UInt32", "Float64",
    }
)  # fmt: skip


def _plain_numeric(dtype: Any) -> bool:
    """Integers and floats, NumPy or pandas' nullable ones; not bool, not text, not dates."""
    import pandas as pd

    return bool(
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))
