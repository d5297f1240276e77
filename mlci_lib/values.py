"""Single data values as people read them: what counts as missing, and how a value is shown.

Messages quote values taken from the user's data (a cell, a row id, a label). Formatting them with
``repr`` leaks the library types they happen to have in memory (``np.int64(7)``, ``np.str_('x')``,
``<NA>``, ``Timestamp('2024-01-01 00:00:00')``): every message renders such values through
:func:`shown` instead, so a value reads the same whether it came from CSV, Parquet or JSON.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

MISSING_TEXT = "missing"


def is_missing(value: Any) -> bool:
    """True for the missing markers of Python, NumPy and pandas: None, NaN, NaT and ``pd.NA``."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    kind = type(value)
    module = kind.__module__
    if module.startswith("numpy"):
        if kind.__name__.startswith(("float", "complex")) or kind.__name__ in (
            "longdouble",
            "half",
            "single",
        ):
            return bool(value != value)
        if kind.__name__ in ("datetime64", "timedelta64"):
            return str(value) == "NaT"
        return False
    if module.startswith("pandas"):
        # pd.NA and pd.NaT; checked by name so that values of other kinds never import pandas.
        return kind.__name__ in ("NAType", "NaTType")
    return False


def plain(value: Any) -> Any:
    """``value`` as a plain Python value: NumPy scalars unwrapped, missing markers as None."""
    if is_missing(value):
        return None
    if type(value).__module__.startswith("numpy") and hasattr(value, "item"):
        return value.item()
    return value


def shown(value: Any, limit: int = 60) -> str:
    """``value`` as a message shows it: 7, 2.5, True, 'x', missing, 2024-01-01T00:00:00.

    Text is quoted (so that spaces and empty strings stay visible) and cut at ``limit``
    characters; numbers, booleans and times are written as they would be in a table.
    """
    if type(value).__name__ in ("datetime64", "timedelta64") and not is_missing(value):
        return str(value)  # .item() of a nanosecond datetime64 is an int, not a time
    value = plain(value)
    if value is None:
        return MISSING_TEXT
    if isinstance(value, str):
        text = str.__str__(value)  # a str subclass (np.str_) must not show its own repr
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        return repr(text)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        # pandas' Timestamp is a datetime subclass; isoformat is plain text for both.
        return value.isoformat()
    if isinstance(value, bytes):
        return repr(value[:limit])
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
