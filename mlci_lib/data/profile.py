"""Profile reference data into a starter suite (mlci's compact YAML, or GX JSON).

The profile is deterministic: the same data gives byte-for-byte the same file. Numbers are
rounded to 6 significant digits, value sets are sorted, and nothing depends on time or order
of hashing. It needs only pandas: Great Expectations is not imported.
"""

from __future__ import annotations

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
    import numpy as np
    import pandas as pd

    from mlci_lib.tables import read_table, require_uniform_types

    for option, value, floor, ceiling in (("margin", margin, 0, 10), ("row margin", row_margin, 0, 1)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and floor <= value <= ceiling):
            raise UsageError(
                f"option --{option.replace(' ', '-')} must be between {floor} and {ceiling}, got {value!r}"
            )
    if not isinstance(max_categories, int) or max_categories < 0:
        raise UsageError(f"option --max-categories must be 0 or more, got {max_categories!r}")
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
        series = frame[column]
        kind = _kind(series)
        spec: dict[str, Any] = {"type": kind}
        nulls = int(series.isna().sum())
        if nulls == 0:
            spec["nullable"] = False
        elif nulls < rows:
            share = nulls / rows
            # Slack a new sample of the same size needs: the margin, plus three standard errors of
            # a share at this row count (a fresh batch with the same missing rate stays below it).
            noise = 3 * math.sqrt(share * (1 - share) / rows) + 1 / rows
            spec["max_null_share"] = min(1.0, _round(share * (1 + margin) + noise, direction=1))
        values = series.dropna()
        if kind in ("int", "float") and len(values):
            array = values.to_numpy(dtype=np.float64)
            finite = array[np.isfinite(array)]
            if len(finite):
                low, high = float(finite.min()), float(finite.max())
                pad = (high - low) * margin if high > low else abs(high) * margin
                lo: float = low - pad
                hi: float = high + pad
                if low >= 0:
                    lo = max(lo, 0.0)
                if kind == "int":
                    lo, hi = math.floor(lo), math.ceil(hi)
                spec["min"], spec["max"] = _round(lo, direction=-1), _round(hi, direction=1)
            distinct_numbers = np.unique(finite)
            if (
                len(distinct_numbers) <= FEW_VALUES
                and len(finite) >= 10 * len(distinct_numbers)
                and bool(np.all(distinct_numbers == np.round(distinct_numbers)))
            ):
                # A flag or a small code (0/1, a 1-5 rating): its values are a set, not a range.
                spec["allowed"] = [_plain_number(v, kind) for v in distinct_numbers]
        elif kind in ("string", "bool") and len(values):
            distinct = values.unique()
            if kind == "bool":
                spec["allowed"] = sorted(bool(v) for v in distinct)
            elif len(distinct) <= max_categories:
                spec["allowed"] = sorted(str(v) for v in distinct)
            elif values.is_unique and len(values) >= 2:
                spec["unique"] = True
        if kind == "int" and len(values) >= 2 and values.is_unique and nulls == 0 and rows > max_categories:
            spec["unique"] = True
        columns[str(column)] = spec
    suite_name = name or (Path(str(data)).stem if not isinstance(data, pd.DataFrame) else "profile")
    return {
        "name": suite_name,
        "table": {
            "rows": {
                "min": math.floor(rows * (1 - row_margin)),
                "max": math.ceil(rows * (1 + row_margin)),
            },
            "required_columns": [str(c) for c in frame.columns],
        },
        "columns": columns,
    }


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
