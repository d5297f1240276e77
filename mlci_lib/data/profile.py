"""Profile reference data into a starter suite (mlci's compact YAML, or GX JSON).

The profile is deterministic: the same data gives byte-for-byte the same file. Numbers are
rounded to 6 significant digits, value sets are sorted, and nothing depends on time or order
of hashing. It needs only pandas: Great Expectations is not imported.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError, UsageError

if TYPE_CHECKING:
    import pandas as pd


def _round(value: float, digits: int = 6, direction: int = 0) -> float | int:
    """Round to ``digits`` significant digits; down (-1) or up (+1) so a bound never shrinks."""
    if value == 0 or not math.isfinite(value):
        return 0 if value == 0 else value
    from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

    # 12 significant digits first drop float noise (8.5 + 0.8 is 9.3000000000000007).
    exact = Decimal(f"{value:.12g}")
    places = digits - 1 - math.floor(math.log10(abs(value)))
    mode = {-1: ROUND_FLOOR, 1: ROUND_CEILING}.get(direction, ROUND_HALF_EVEN)
    unit = Decimal(1).scaleb(-places)
    rounded = float(exact.quantize(unit, rounding=mode))
    if direction * (rounded - value) < 0:  # the noise went the wrong way: one more step out
        rounded = float(Decimal(repr(rounded)) + direction * unit)
    return int(rounded) if float(rounded).is_integer() and abs(rounded) < 2**53 else rounded


def _kind(series: "pd.Series") -> str:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(series, skipna=True) in (
        "date",
        "datetime",
    ):
        # Parquet's date32 columns reach pandas as datetime.date objects, not as datetime64.
        return "datetime"
    return "string"


#: A numeric column of whole numbers with at most this many distinct values gets a value set.
FEW_VALUES = 5


def _plain_number(value: float, kind: str) -> float | int:
    return int(value) if kind == "int" else float(value)


def profile_data(
    data: "str | os.PathLike[str] | pd.DataFrame",
    *,
    name: str | None = None,
    margin: float = 0.1,
    max_categories: int = 20,
    row_margin: float = 0.5,
) -> dict[str, Any]:
    """A compact suite describing ``data``: types, null shares, ranges, value sets, row counts.

    Numeric ranges are widened by ``margin`` times the observed range on each side (not below
    zero when the data has no negative values); string and bool columns with at most
    ``max_categories`` distinct values get an ``allowed`` set; the row-count bounds are the row
    count times ``1 - row_margin`` and ``1 + row_margin``.
    """
    import pandas as pd

    from mlci_lib.tables import read_table, require_uniform_types

    check_options(margin=margin, max_categories=max_categories, row_margin=row_margin)
    if isinstance(data, pd.DataFrame):
        frame, source = data, "data frame"
        if len(frame) == 0:
            raise InputError("data frame has no rows", hint="profile data that has rows")
    else:
        frame, source = read_table(data, what="data"), Path(data).name
    require_uniform_types(frame, file=source, what="data")
    rows = len(frame)
    columns: dict[str, Any] = {}
    for column in frame.columns:
        columns[str(column)] = column_spec(
            _summary(frame[column], rows, max_categories), rows, margin=margin, max_categories=max_categories
        )
    suite_name = name or (Path(str(data)).stem if not isinstance(data, pd.DataFrame) else "profile")
    return profile_document(suite_name, rows, [str(c) for c in frame.columns], columns, row_margin)


def check_options(*, margin: float, max_categories: int, row_margin: float) -> None:
    for option, value, floor, ceiling in (("margin", margin, 0, 10), ("row margin", row_margin, 0, 1)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and floor <= value <= ceiling):
            raise UsageError(
                f"option --{option.replace(' ', '-')} must be between {floor} and {ceiling}, got {value!r}"
            )
    if not isinstance(max_categories, int) or max_categories < 0:
        raise UsageError(f"option --max-categories must be 0 or more, got {max_categories!r}")


def profile_document(
    name: str, rows: int, names: list[str], columns: dict[str, Any], row_margin: float
) -> dict[str, Any]:
    """The compact suite: row-count bounds, the required columns, each column's entry."""
    return {
        "name": name,
        "table": {
            "rows": {
                "min": math.floor(rows * (1 - row_margin)),
                "max": math.ceil(rows * (1 + row_margin)),
            },
            "required_columns": names,
        },
        "columns": columns,
    }


@dataclasses.dataclass(frozen=True)
class ColumnSummary:
    """What a column's profile needs, computed by either engine (pandas here, Spark aggregates)."""

    kind: str
    nulls: int
    #: Non-missing values.
    values: int
    #: Finite values (numeric kinds) and their range, None when there is none.
    finite: int = 0
    low: float | None = None
    high: float | None = None
    #: The distinct finite numbers (sorted) when there are at most FEW_VALUES of them.
    few_numbers: tuple[float, ...] | None = None
    #: The distinct values (string and bool kinds) when there are at most max-categories of them.
    categories: tuple[Any, ...] | None = None
    #: Every non-missing value differs from the others.
    unique: bool = False


def _summary(series: "pd.Series", rows: int, max_categories: int) -> ColumnSummary:
    import numpy as np

    kind = _kind(series)
    nulls = int(series.isna().sum())
    values = series.dropna()
    # Uniqueness costs a hash of the column: only where a rule reads it.
    wanted = kind == "string" or (kind == "int" and nulls == 0 and rows > max_categories)
    unique = bool(values.is_unique) if wanted and len(values) >= 2 else False
    if kind in ("int", "float") and len(values):
        array = values.to_numpy(dtype=np.float64)
        finite = array[np.isfinite(array)]
        distinct_numbers = np.unique(finite)
        return ColumnSummary(
            kind, nulls, len(values), len(finite),
            float(finite.min()) if len(finite) else None,
            float(finite.max()) if len(finite) else None,
            tuple(float(v) for v in distinct_numbers) if len(distinct_numbers) <= FEW_VALUES else None,
            unique=unique,
        )  # fmt: skip
    if kind in ("string", "bool") and len(values):
        distinct = values.unique()
        limit = len(distinct) if kind == "bool" else max_categories
        categories = tuple(distinct) if len(distinct) <= limit else None
        return ColumnSummary(kind, nulls, len(values), categories=categories, unique=unique)
    return ColumnSummary(kind, nulls, len(values), unique=unique)


def column_spec(summary: ColumnSummary, rows: int, *, margin: float, max_categories: int) -> dict[str, Any]:
    """The compact suite entry of one column, from its summary (the same for both engines)."""
    kind = summary.kind
    spec: dict[str, Any] = {"type": kind}
    nulls = summary.nulls
    if nulls == 0:
        spec["nullable"] = False
    elif nulls < rows:
        share = nulls / rows
        # Slack a new sample of the same size needs: the margin, plus three standard errors of
        # a share at this row count (a fresh batch with the same missing rate stays below it).
        noise = 3 * math.sqrt(share * (1 - share) / rows) + 1 / rows
        spec["max_null_share"] = min(1.0, _round(share * (1 + margin) + noise, direction=1))
    if kind in ("int", "float") and summary.values:
        if summary.low is not None and summary.high is not None:
            low, high = summary.low, summary.high
            pad = (high - low) * margin if high > low else abs(high) * margin
            lo: float = low - pad
            hi: float = high + pad
            if low >= 0:
                lo = max(lo, 0.0)
            if kind == "int":
                lo, hi = math.floor(lo), math.ceil(hi)
            spec["min"], spec["max"] = _round(lo, direction=-1), _round(hi, direction=1)
        few = summary.few_numbers
        if few is not None and summary.finite >= 10 * len(few) and all(v == round(v) for v in few):
            # A flag or a small code (0/1, a 1-5 rating): its values are a set, not a range.
            spec["allowed"] = [_plain_number(v, kind) for v in few]
    elif kind in ("string", "bool") and summary.values:
        if kind == "bool":
            assert summary.categories is not None
            spec["allowed"] = sorted(bool(v) for v in summary.categories)
        elif summary.categories is not None:
            spec["allowed"] = sorted(str(v) for v in summary.categories)
        elif summary.unique and summary.values >= 2:
            spec["unique"] = True
    if kind == "int" and summary.values >= 2 and summary.unique and nulls == 0 and rows > max_categories:
        spec["unique"] = True
    return spec


def write_profile(profile: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a profile as compact YAML (``.yaml``/``.yml``) or as a GX 1.x suite (``.json``)."""
    import json

    import yaml

    from mlci_lib.data.suite import parse_suite
    from mlci_lib.files import write_text_atomic

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".json":
        suite = parse_suite(profile, source=str(target))
        return write_text_atomic(target, json.dumps(suite.to_gx_json(), indent=2, allow_nan=False) + "\n")
    if suffix in (".yaml", ".yml"):
        header = (
            "# mlci data suite, profiled from reference data. Review every bound before relying on it.\n"
            "# Check data with: mlci data check DATA --suite " + target.name + "\n"
        )
        body = yaml.safe_dump(profile, sort_keys=False, allow_unicode=True, width=100)
        return write_text_atomic(target, header + body)
    raise UsageError(
        f"option -o: {target} has extension {suffix or '(none)'!r}",
        hint="use .yaml for mlci's compact suite or .json for a Great Expectations suite",
    )
