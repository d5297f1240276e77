"""Aggregations the Spark engine computes on the executors: column kinds, quantiles, bucket counts.

Every function here returns aggregates only (a few numbers per column): no row reaches the
driver. Quantiles come from ``percentile_approx``, whose rank error is at most
``rows / accuracy``; bucket counts come from Spark's ``Bucketizer`` (a binary search per value,
buckets closed on the left like the pandas engine's bins) and are exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    from pyspark.sql import Column, DataFrame

#: percentile_approx's accuracy: rank error at most rows / accuracy (Spark's default is 10000).
DEFAULT_ACCURACY = 10_000
ACCURACY_RANGE = (100, 10_000_000)
#: Quantiles per side on which the Spark engine evaluates the two CDFs of the KS statistic.
KS_GRID = 4096


def check_accuracy(accuracy: Any) -> int:
    """The quantile accuracy, or a one-line error naming the option and its range."""
    low, high = ACCURACY_RANGE
    if isinstance(accuracy, bool) or not isinstance(accuracy, int) or not low <= accuracy <= high:
        raise UsageError(
            f"option --spark-quantile-accuracy must be a whole number from {low} to {high}, got {accuracy!r}",
            hint="10000 (rank error at most rows/10000) is Spark's default",
        )
    return accuracy


# -- column kinds -----------------------------------------------------------------------------


def profile_kind(data_type: Any) -> str:
    """The profile's kind of a Spark column type: bool, int, float, datetime or string.

    As the pandas engine sees the same Parquet column: dates and timestamps are datetime,
    decimals are floats (pandas reads them as numbers only when cast; mlci's profile treats
    them as floats), everything else (strings, binary, nested) is a string.
    """
    from pyspark.sql import types as T

    if isinstance(data_type, T.BooleanType):
        return "bool"
    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return "int"
    if isinstance(data_type, (T.FloatType, T.DoubleType, T.DecimalType)):
        return "float"
    if isinstance(data_type, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        return "datetime"
    return "string"


def drift_kind(data_type: Any) -> str:
    """numeric or categorical, as the pandas engine decides for the same Parquet column.

    Numbers and timestamps are numeric; booleans, strings and dates (which pandas reads from
    Parquet as ``datetime.date`` objects) are categorical.
    """
    from pyspark.sql import types as T

    if isinstance(data_type, (T.TimestampType, T.TimestampNTZType)):
        return "numeric"
    if isinstance(data_type, T.NumericType):
        return "numeric"
    return "categorical"


def numeric_value(name: str, data_type: Any) -> Column:
    """The column as a double, NaN as null (missing, as pandas counts it); timestamps in ns."""
    from pyspark.sql import functions as F, types as T

    column = F.col(_quoted(name))
    if isinstance(data_type, T.TimestampNTZType):
        column = column.cast("timestamp")
    if isinstance(data_type, (T.TimestampType, T.TimestampNTZType)):
        # pandas turns datetime64[ns] into int64 nanoseconds, then float64: the same numbers.
        return F.unix_micros(column).cast("double") * F.lit(1000.0)
    value = column.cast("double")
    # + 0.0 turns -0.0 into 0.0: Spark's bucketing orders -0.0 below 0.0, pandas' bins do not.
    return F.when(~F.isnan(value), value + F.lit(0.0))


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def column(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(_quoted(name))


def doubles(values: Sequence[float]) -> Column:
    """An ``array<double>`` literal of finite ``values``, parsed by Spark from one JSON string.

    ``F.lit(list)`` makes one JVM call per element on a classic session, and an ``array(...)`` of
    literals is a plan node per element that every optimizer rule walks: seconds per run for a KS
    grid of thousands of quantiles. ``from_json`` of a constant is one node, folded to one
    literal; JSON numbers read back as the same doubles.
    """
    from pyspark.sql import functions as F

    text = json.dumps([float(v) for v in values], allow_nan=False)
    return F.expr(f"from_json('{text}', 'array<double>')")


# -- quantiles ----------------------------------------------------------------------------------


def quantiles(
    frame: DataFrame, values: Mapping[str, Column], probabilities: Sequence[float], accuracy: int
) -> dict[str, list[float]]:
    """``percentile_approx`` of each column at ``probabilities``, in one Spark job (aggregates)."""
    from pyspark.sql import functions as F

    if not values:
        return {}
    names = list(values)
    probs = [float(p) for p in probabilities]
    aggregates = [
        F.percentile_approx(values[name], doubles(probs), accuracy).alias(f"q{i}")
        for i, name in enumerate(names)
    ]
    row = frame.agg(*aggregates).first()
    assert row is not None  # a global aggregate has exactly one row
    return {name: [float(v) for v in (row[f"q{i}"] or [])] for i, name in enumerate(names)}


def strictly_increasing(values: Sequence[float]) -> list[float]:
    """The distinct finite values, ascending (Bucketizer splits must increase strictly); no -0.0."""
    return sorted({float(v) + 0.0 for v in values if math.isfinite(float(v))})


# -- bucket counts ------------------------------------------------------------------------------


def bucket_counts(
    frame: DataFrame,
    values: Mapping[str, Column],
    edges: Mapping[str, Sequence[tuple[str, Sequence[float]]]],
) -> dict[str, list["np.ndarray"]]:
    """Exact counts per bucket of each column, for each of its edge lists, in one Spark job.

    ``edges[name]`` holds one or more ``(side, e)`` pairs, e strictly increasing. ``"left"``
    buckets are ``(-inf, e0), [e0, e1), ..., [e_last, inf)`` (closed on the left: a value equal
    to an edge counts in the bucket above it, as the pandas engine's bins); ``"right"`` buckets
    are ``(-inf, e0], (e0, e1], ..., (e_last, inf)``. m edges give m + 1 counts. Missing values
    (null) are in no bucket.

    Spark counts each column once, in the fine buckets of all its lists' edges together (a
    right-closed edge e as the next double above it: ``v <= e`` exactly when
    ``v < nextafter(e)``); every list's counts are sums of those, on the driver.
    """
    import numpy as np
    from pyspark.sql import functions as F

    inputs: list[str] = []
    outputs: list[str] = []
    splits: list[list[float]] = []
    cuts_of: list[np.ndarray] = []  # per column: its fine buckets' inner edges, ascending
    projected = []
    names = [name for name in values if edges.get(name)]
    for c, name in enumerate(names):
        cuts = {_cut(side, float(e)) for side, given in edges[name] for e in given}
        # Bucketizer needs an edge; a column whose lists have none is one bucket around any.
        inner = sorted(x for x in cuts if math.isfinite(x)) or [0.0]
        projected.append(values[name].alias(f"v{c}"))
        inputs.append(f"v{c}")
        outputs.append(f"b{c}")
        splits.append([-math.inf, *inner, math.inf])
        cuts_of.append(np.asarray(inner, dtype=np.float64))
    if not inputs:
        return {}
    bucketed = _bucketizer(frame, splits, inputs, outputs).transform(frame.select(*projected))
    pairs = F.explode(
        F.array(*[F.struct(F.lit(i).alias("k"), F.col(out).alias("b")) for i, out in enumerate(outputs)])
    ).alias("p")
    grouped = (
        bucketed.select(pairs)
        .select("p.k", "p.b")
        .where(F.col("b").isNotNull())
        .groupBy("k", "b")
        .count()
        .collect()  # aggregates: at most (edges + 2) rows per column
    )
    fine = [np.zeros(len(cuts) + 1, dtype=np.int64) for cuts in cuts_of]
    for row in grouped:
        index, bucket = int(row["k"]), int(row["b"])
        if 0 <= bucket < len(fine[index]):  # Bucketizer's extra bucket holds NaN: already null here
            fine[index][bucket] += int(row["count"])
    out: dict[str, list[np.ndarray]] = {}
    for c, name in enumerate(names):
        # below[j]: values under cuts[j]; the fine bucket j is [cuts[j - 1], cuts[j]).
        below = np.concatenate([[0], np.cumsum(fine[c])])
        total = int(below[-1])
        for side, given in edges[name]:
            at = [_cut(side, float(e)) for e in given]
            # (A cut past the largest double, inf, sorts after every cut: all values are under it.)
            under = [int(below[int(np.searchsorted(cuts_of[c], x, side="left")) + 1]) for x in at]
            out.setdefault(name, []).append(np.diff(np.asarray([0, *under, total], dtype=np.int64)))
    return out


def _cut(side: str, edge: float) -> float:
    """Where a left-closed bucketing cuts for an edge: the edge, or the double above a right one."""
    edge += 0.0  # -0.0 as 0.0, as the values are
    return math.nextafter(edge, math.inf) if side == "right" else edge


def _bucketizer(frame: DataFrame, splits: list[list[float]], inputs: list[str], outputs: list[str]) -> Any:
    """A ``Bucketizer`` over ``splits``, handed to the JVM as one JSON string on a classic session.

    Classic pyspark copies a list parameter to the JVM one element per call: the KS grids of a
    20-column table are a few hundred thousand calls, minutes of a run that counts in seconds.
    The JVM's own decoder of the parameter (``DoubleArrayArrayParam.jsonDecode``, the format
    Spark saves models in) reads the same doubles from one string. Spark Connect sends the
    parameter in one message already; so does the public path, taken when the fast one is not
    there (another pyspark version).
    """
    from pyspark.ml.feature import Bucketizer

    from mlci_lib.spark.session import is_connect_session

    if not is_connect_session(frame.sparkSession):
        bucketizer = Bucketizer(inputCols=inputs, outputCols=outputs, handleInvalid="keep")
        try:
            java: Any = bucketizer._java_obj
            param = java.getParam("splitsArray")
            java.set(param.w(param.jsonDecode(json.dumps([[_json_double(v) for v in s] for s in splits]))))
            return bucketizer
        except Exception:  # not the JVM object this pyspark version was written against
            pass
    return Bucketizer(splitsArray=splits, inputCols=inputs, outputCols=outputs, handleInvalid="keep")


def _json_double(value: float) -> float | str:
    # Spark's JSON form of a double parameter names the infinities (DoubleParam.jValueEncode).
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return float(value)
