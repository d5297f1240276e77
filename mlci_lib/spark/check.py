"""``mlci data check --engine spark``: the same suite on Great Expectations' Spark execution engine.

GX computes every metric as a Spark aggregate; the result is the pandas engine's
:class:`DataCheckResult`, expectation by expectation, with the same fail-closed rules (no rows
fails, an expectation that raised fails). The one translation: type expectations name pandas
dtypes (``int64``, ``str``...), which on Spark are Spark types (``LongType``, ``StringType``...),
so their type lists are translated before GX sees them; the result still shows the suite's own
arguments.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

from mlci_lib.data.check import (
    DataCheckResult,
    ExpectationOutcome,
    _gx_context,
    _jsonable,
    _match_results,
    _outcome,
    gx_suite,
)
from mlci_lib.data.suite import Expectation, Suite, load_suite
from mlci_lib.spark.tables import read_table, spark_errors

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_TYPE_EXPECTATIONS = {"expect_column_values_to_be_in_type_list", "expect_column_values_to_be_of_type"}

#: The Spark types a pandas dtype name in a type list stands for (GX on Spark compares class names).
SPARK_TYPES: dict[str, tuple[str, ...]] = {
    **{f"int{b}": ("ByteType", "ShortType", "IntegerType", "LongType") for b in (8, 16, 32, 64)},
    **{f"Int{b}Dtype": ("ByteType", "ShortType", "IntegerType", "LongType") for b in (8, 16, 32, 64)},
    # Unsigned Parquet integers reach Spark as the next wider signed type.
    **{f"uint{b}": ("ShortType", "IntegerType", "LongType", "DecimalType") for b in (8, 16, 32, 64)},
    **{f"UInt{b}Dtype": ("ShortType", "IntegerType", "LongType", "DecimalType") for b in (8, 16, 32, 64)},
    **{
        name: ("FloatType", "DoubleType")
        for name in ("float16", "float32", "float64", "Float32Dtype", "Float64Dtype")
    },
    **{name: ("StringType", "VarcharType", "CharType") for name in ("object", "str", "StringDtype")},
    **{name: ("BooleanType",) for name in ("bool", "BooleanDtype")},
    **{
        name: ("TimestampType", "TimestampNTZType")
        for name in ("datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]", "DatetimeTZDtype")
    },
    "date": ("DateType",),
}


def spark_suite(suite: Suite) -> Suite:
    """The suite with pandas dtype names in type expectations replaced by Spark type names."""

    def translate(expectation: Expectation) -> Expectation:
        if expectation.type not in _TYPE_EXPECTATIONS:
            return expectation
        kwargs = dict(expectation.kwargs)
        if "type_list" in kwargs and isinstance(kwargs["type_list"], (list, tuple)):
            names: list[str] = []
            for name in kwargs["type_list"]:
                for spark_name in SPARK_TYPES.get(str(name), (str(name),)):
                    if spark_name not in names:
                        names.append(spark_name)
            kwargs["type_list"] = names
        elif "type_" in kwargs and str(kwargs["type_"]) in SPARK_TYPES:
            # of_type takes one name: the widest Spark type of that pandas dtype.
            kwargs["type_"] = SPARK_TYPES[str(kwargs["type_"])][-1]
        return dataclasses.replace(expectation, kwargs=kwargs)

    return dataclasses.replace(suite, expectations=tuple(translate(e) for e in suite.expectations))


def check_data_spark(
    spark: SparkSession,
    data: str | os.PathLike[str],
    suite: str | os.PathLike[str] | Suite | dict[str, Any],
    *,
    sample_size: int = 5,
) -> DataCheckResult:
    """Validate ``data`` (Parquet, Delta, a table) against ``suite`` with GX on Spark."""
    import great_expectations as gx
    import pyspark

    from mlci_lib.errors import InputError, ServiceError
    from mlci_lib.spark.session import STOPPED_HINT, session_stopped

    loaded = load_suite(suite)
    if sample_size < 0:
        raise InputError(f"sample size must be 0 or more, got {sample_size}")
    translated = spark_suite(loaded)
    gx_expectations = gx_suite(translated)  # unknown types fail before any data is touched
    data_name = str(data)
    frame = read_table(spark, data_name, what="data")
    with spark_errors(f"data {data_name}"):
        rows = frame.count()
    engine = f"Great Expectations {gx.__version__} on Spark {pyspark.__version__}"
    columns = len(frame.schema.fields)
    if rows == 0:
        outcomes = tuple(
            ExpectationOutcome(
                i, e.type, e.column, _jsonable(dict(e.kwargs)), False, exception="not evaluated: no rows"
            )
            for i, e in enumerate(loaded.expectations)
        )
        return DataCheckResult(
            passed=False, data=data_name, suite=loaded.name, suite_source=loaded.source, rows=0,
            columns=columns, evaluated=len(outcomes), failed=len(outcomes), expectations=outcomes,
            problems=("the data has no rows (an empty table passes no check)",), engine=engine,
        )  # fmt: skip
    context = _gx_context()
    # Not persisted: GX caches the frame by default, and caching builds each partition in the
    # heap first; a partition of a million rows of 20 columns ran a 1 GB driver out of memory,
    # which killed the session midway. Parquet is columnar: each of GX's metric passes reads
    # the columns it needs again, in bounded memory.
    asset = context.data_sources.add_spark("mlci", persist=False).add_dataframe_asset("data")
    definition = asset.add_batch_definition_whole_dataframe("whole")
    # As the pandas engine: GX's validator, without a validation definition that stores results.
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(
        batch_definition=definition,
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "BASIC", "partial_unexpected_count": max(sample_size, 1)},
    )
    with spark_errors(f"data {data_name}"):
        validation = validator.validate_expectation_suite(context.suites.add(gx_expectations))
    by_position = _match_results(translated, validation.results)
    outcomes = tuple(_outcome(i, e, by_position[i], sample_size) for i, e in enumerate(loaded.expectations))
    not_evaluated = [o for o in outcomes if o.exception]
    if not_evaluated and session_stopped(spark):
        # Not a verdict on the data: the engine died under the check (the first expectation that
        # could not be evaluated carries the cause; the later ones only that the session is gone).
        raise ServiceError(
            f"the Spark session stopped while checking data {data_name}: {len(not_evaluated)} of "
            f"{len(outcomes)} expectations not evaluated (first: {not_evaluated[0].exception})",
            hint=STOPPED_HINT,
        )
    failed = sum(1 for o in outcomes if not o.success)
    return DataCheckResult(
        passed=failed == 0, data=data_name, suite=loaded.name, suite_source=loaded.source, rows=rows,
        columns=columns, evaluated=len(outcomes), failed=failed, expectations=outcomes, problems=(),
        engine=engine,
    )  # fmt: skip
