"""``mlci data profile --engine spark``: the starter suite from Spark aggregates.

Every number of the profile is exact (counts, minimum and maximum, distinct counts), so the
same data gives the same suite as the pandas engine: each column's :class:`ColumnSummary` is
computed by Spark and turned into its suite entry by the same :func:`column_spec`. Two
aggregate jobs: the counts and ranges, then the value sets of the columns that have few values.

A column's kind is its Parquet type: an integer column with nulls is ``int`` (pandas reads it as
``Int64`` when the file carries pandas' metadata, as float otherwise; the Spark engine does not
guess which).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.data.profile import (
    FEW_VALUES,
    ColumnSummary,
    check_options,
    column_spec,
    profile_document,
)
from mlci_lib.errors import InputError
from mlci_lib.spark.aggregates import column, profile_kind
from mlci_lib.spark.tables import read_table, spark_errors

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession


def profile_data_spark(
    spark: SparkSession,
    data: str | os.PathLike[str],
    *,
    name: str | None = None,
    margin: float = 0.1,
    max_categories: int = 20,
    row_margin: float = 0.5,
) -> dict[str, Any]:
    """A compact suite describing ``data`` (Parquet, Delta, a table), as :func:`profile_data`."""
    from pyspark.sql import functions as F

    check_options(margin=margin, max_categories=max_categories, row_margin=row_margin)
    source = str(data)
    frame = read_table(spark, source, what="data")
    fields = [(f.name, f.dataType) for f in frame.schema.fields]
    kinds = {n: profile_kind(t) for n, t in fields}
    aggregates = [F.count(F.lit(1)).alias("rows")]
    for i, (n, t) in enumerate(fields):
        kind = kinds[n]
        present = _present(n, t)
        aggregates.append(F.sum(F.when(present, 0).otherwise(1)).alias(f"nulls{i}"))
        aggregates.append(F.count_distinct(F.when(present, _comparable(n, t))).alias(f"distinct{i}"))
        if kind in ("int", "float"):
            finite = _finite(n, t)
            aggregates += [
                F.count(finite).alias(f"finite{i}"),
                F.min(finite).alias(f"low{i}"),
                F.max(finite).alias(f"high{i}"),
                F.count_distinct(finite).alias(f"numbers{i}"),
            ]
    with spark_errors(f"data {source}"):
        first = frame.agg(*aggregates).first()
    assert first is not None  # a global aggregate has one row
    rows = int(first["rows"])
    if rows == 0:
        raise InputError(f"data {source} has no rows", hint="profile data that has rows")
    # The value sets, only where there are few values: a bounded collect_set.
    sets = []
    for i, (n, t) in enumerate(fields):
        kind = kinds[n]
        if kind in ("int", "float") and int(first[f"numbers{i}"]) <= FEW_VALUES:
            sets.append(F.collect_set(_finite(n, t)).alias(f"set{i}"))
        elif kind == "bool" or (kind == "string" and int(first[f"distinct{i}"]) <= max_categories):
            sets.append(F.collect_set(F.when(_present(n, t), column(n))).alias(f"set{i}"))
    second = None
    if sets:
        with spark_errors(f"data {source}"):
            second = frame.agg(*sets).first()
    columns: dict[str, Any] = {}
    for i, (n, _) in enumerate(fields):
        kind = kinds[n]
        nulls = int(first[f"nulls{i}"] or 0)

        values = rows - nulls
        unique = values >= 2 and int(first[f"distinct{i}"]) == values
        found = second[f"set{i}"] if second is not None and f"set{i}" in second.asDict() else None
        if kind in ("int", "float") and values:
            finite_count = int(first[f"finite{i}"])
            summary = ColumnSummary(
                kind, nulls, values, finite_count,
                None if first[f"low{i}"] is None else float(first[f"low{i}"]),
                None if first[f"high{i}"] is None else float(first[f"high{i}"]),
                tuple(sorted(float(v) for v in found)) if found is not None else None,
                unique=unique,
            )  # fmt: skip
        elif kind in ("string", "bool") and values:
            summary = ColumnSummary(
                kind, nulls, values, categories=tuple(found) if found is not None else None, unique=unique
            )
        else:
            summary = ColumnSummary(kind, nulls, values, unique=unique)
        columns[n] = column_spec(summary, rows, margin=margin, max_categories=max_categories)
    return profile_document(name or Path(source).stem, rows, [n for n, _ in fields], columns, row_margin)


def _present(name: str, data_type: Any) -> Column:
    """Not missing, as pandas counts it: not null, and not NaN in a floating column."""
    from pyspark.sql import functions as F, types as T

    value = column(name)
    present = value.isNotNull()
    if isinstance(data_type, (T.FloatType, T.DoubleType)):
        present = present & ~F.isnan(value)
    return present


def _comparable(name: str, data_type: Any) -> Column:
    # count_distinct needs an orderable value: nested values are compared as their text.
    from pyspark.sql import types as T

    value = column(name)
    if isinstance(data_type, (T.ArrayType, T.MapType, T.StructType)):
        return value.cast("string")
    return value


def _finite(name: str, data_type: Any) -> Column:
    """The value as a double where it is finite, else null."""
    from pyspark.sql import functions as F

    value = column(name).cast("double")
    finite = ~F.isnan(value) & (value != float("inf")) & (value != float("-inf"))
    return F.when(finite, value)
