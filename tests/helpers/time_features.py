"""A feature function of the kind users put in a FunctionTransformer (and trust by name)."""

from __future__ import annotations

import pandas as pd


def local_hour_and_weekday(frame: pd.DataFrame) -> pd.DataFrame:
    """Hour of day and day of week in the column's own time zone: wrong if the zone is lost."""
    out = {}
    for name in frame.columns:
        times = frame[name]
        out[f"{name}_hour"] = times.dt.hour.astype("float64")
        out[f"{name}_weekday"] = times.dt.day_of_week.astype("float64")
    return pd.DataFrame(out, index=frame.index)
