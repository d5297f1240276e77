"""``mlci drift --engine spark``: the drift gate from aggregates Spark computes on the executors.

The same verdict as the pandas engine from the same kind of evidence: per feature, counts of
the reference and current rows in the same buckets, then :func:`mlci_lib.drift.gate.judge_feature`
and the same gate. What differs is only where the numbers come from:

- numeric bin edges are ``percentile_approx`` quantiles of the reference (rank error at most
  rows / accuracy), the counts in those bins exact (``Bucketizer``): given the same edges, the
  PSI and JS distance equal the pandas engine's to the last bit;
- KS is the largest gap of the two CDFs at a grid of quantiles of both samples, both limits at
  each grid point counted exactly; the exact statistic lies in ``[D, D + bound]`` where the bound
  (stated per feature) is the largest share of a side strictly between two grid points;
- categorical levels, chi-square and JS are exact: Spark counts every level and keeps the
  reference's top levels, the rest as ``(other)`` and levels new in current as ``(unseen)``;
- row and missing counts are exact.

Only aggregates reach the driver: a few numbers per bucket, the kept levels, five unseen ones.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlci_lib.drift.gate import (
    DriftConfig,
    DriftVerdict,
    FeatureDrift,
    FeatureRule,
    assemble_verdict,
    judge_feature,
    select_columns,
)
from mlci_lib.errors import InputError
from mlci_lib.spark.aggregates import (
    DEFAULT_ACCURACY,
    KS_GRID,
    bucket_counts,
    check_accuracy,
    column,
    doubles,
    drift_kind,
    numeric_value,
    strictly_increasing,
)
from mlci_lib.spark.tables import read_table, spark_errors

if TYPE_CHECKING:
    import numpy as np
    from pyspark.sql import Column, DataFrame, SparkSession

    from mlci_lib.drift.stats import Binned


def conventions(accuracy: int) -> dict[str, str]:
    """The pandas engine's conventions, with the Spark engine's bins and KS stated."""
    import pyspark

    from mlci_lib.drift import stats

    out = dict(stats.CONVENTIONS)
    out["engine"] = (
        f"Spark {pyspark.__version__}: counts aggregated on the executors; only aggregates reach the driver"
    )
    out["numeric_bin_edges"] = (
        f"the reference's quantiles k / bins, k = 1 .. bins - 1, from percentile_approx with accuracy "
        f"{accuracy}: each edge is a reference value whose rank is within rows / {accuracy} (relative "
        f"error {1 / accuracy:g}) of the exact quantile's; equal edges merged. The counts in the bins "
        "are exact, so the PSI and JS on the same edges equal the pandas engine's"
    )
    out["ks"] = (
        f"two-sample Kolmogorov-Smirnov on the non-missing values: the largest CDF gap at both limits "
        f"of every point of a grid of {KS_GRID} percentile_approx quantiles a side (accuracy {accuracy}), "
        "counted exactly; the exact statistic lies in [ks_statistic, ks_statistic + ks_error_bound], "
        "the bound being the largest share of a side strictly between two grid points; asymptotic "
        "p-value (Kolmogorov distribution), as the pandas engine uses above its exact-test size"
    )
    return out


def detect_drift_spark(
    spark: SparkSession,
    reference: str | os.PathLike[str],
    current: str | os.PathLike[str],
    *,
    config: DriftConfig | None = None,
    columns: Sequence[str] | None = None,
    accuracy: int = DEFAULT_ACCURACY,
    bin_edges: Mapping[str, Sequence[float]] | None = None,
) -> DriftVerdict:
    """Compare ``current`` with ``reference`` on Spark and apply the drift gate.

    ``reference`` and ``current`` are Parquet files or folders, Delta tables, storage URLs or
    catalog tables. ``bin_edges`` replaces the reference quantiles of the named numeric
    features by given edges (the parity tests give both engines the same edges).
    """
    accuracy = check_accuracy(accuracy)
    config = config or DriftConfig()
    ref_name, cur_name = str(reference), str(current)
    ref = read_table(spark, ref_name, what="reference")
    cur = read_table(spark, cur_name, what="current")
    ref_types = {f.name: f.dataType for f in ref.schema.fields}
    cur_types = {f.name: f.dataType for f in cur.schema.fields}
    wanted, prediction = select_columns(list(ref_types), list(cur_types), config, columns, ref_name, cur_name)
    features_only = [name for name in wanted if name != prediction]
    if not features_only:
        raise InputError("no features left to compare for drift", hint="check --columns and --ignore")
    psi_probs = [k / config.bins for k in range(1, config.bins)]
    grid_probs = [j / KS_GRID for j in range(KS_GRID + 1)]
    # One aggregate a side: rows, missing values, and the quantiles of every numeric column.
    with spark_errors(f"reference {ref_name}"):
        ref_rows, ref_missing, ref_q = _summary(ref, ref_types, wanted, [*psi_probs, *grid_probs], accuracy)
    with spark_errors(f"current {cur_name}"):
        cur_rows, cur_missing, cur_q = _summary(cur, cur_types, wanted, grid_probs, accuracy)
    for rows, label, name in ((ref_rows, "reference", ref_name), (cur_rows, "current", cur_name)):
        if rows == 0:
            raise InputError(f"{label} {name} has no rows", hint="check the step that writes it")
    kinds = _kinds(
        wanted, ref_types, cur_types, ref_missing, cur_missing, ref_rows, cur_rows, ref_name, cur_name
    )
    numeric = [name for name in wanted if kinds[name] == "numeric"]
    categorical = [name for name in wanted if kinds[name] == "categorical"]
    edges: dict[str, list[float]] = {}
    grids: dict[str, list[float]] = {}
    for name in numeric:
        found = ref_q.get(name, [])
        given = (bin_edges or {}).get(name)
        edges[name] = strictly_increasing(given if given is not None else found[: len(psi_probs)])
        grids[name] = strictly_increasing([*found[len(psi_probs) :], *cur_q.get(name, [])])
    with spark_errors(f"reference {ref_name} and current {cur_name}"):
        binned_numeric = _numeric(ref, cur, ref_types, cur_types, edges, grids)
        binned_categorical = _categorical(
            ref, cur, ref_types, cur_types, categorical, config.max_levels,
            {n: ref_rows - ref_missing[n] for n in categorical},
            {n: cur_rows - cur_missing[n] for n in categorical},
        )  # fmt: skip
    by_name: dict[str, FeatureDrift] = {}
    from mlci_lib.drift import stats

    for name in wanted:
        rule = config.features.get(name, FeatureRule())
        if name in binned_numeric:
            binned, ks, bound = binned_numeric[name]
            binned = _with_missing(binned, ref_missing[name], cur_missing[name])
            by_name[name] = judge_feature(
                name,
                "numeric",
                rule,
                config,
                binned,
                ks,
                (None, None),
                ref_rows,
                cur_rows,
                ks_error_bound=bound,
            )
        else:
            binned = _with_missing(binned_categorical[name], ref_missing[name], cur_missing[name])
            by_name[name] = judge_feature(
                name,
                "categorical",
                rule,
                config,
                binned,
                (None, None),
                stats.chi_square(binned),
                ref_rows,
                cur_rows,
            )
    return assemble_verdict(
        by_name,
        features_only,
        prediction,
        config,
        (ref_name, ref_rows),
        (cur_name, cur_rows),
        conventions(accuracy),
    )


# -- counts and kinds -------------------------------------------------------------------------------


def _missing(name: str, data_type: Any) -> Column:
    """1 where the value is missing as pandas counts it: null, or NaN in a floating column."""
    from pyspark.sql import functions as F, types as T

    value = column(name)
    missing = value.isNull()
    if isinstance(data_type, (T.FloatType, T.DoubleType)):
        missing = missing | F.isnan(value)
    return F.when(missing, 1).otherwise(0)


def _summary(
    frame: DataFrame,
    types: Mapping[str, Any],
    names: Sequence[str],
    probabilities: Sequence[float],
    accuracy: int,
) -> tuple[int, dict[str, int], dict[str, list[float]]]:
    """Rows, missing values per column and quantiles per numeric column, in one aggregate."""
    from pyspark.sql import functions as F

    numeric = [name for name in names if drift_kind(types[name]) == "numeric"]
    probs = [float(p) for p in probabilities]
    aggregates = [F.count(F.lit(1)).alias("rows")]
    aggregates += [F.sum(_missing(name, types[name])).alias(f"m{i}") for i, name in enumerate(names)]
    aggregates += [
        F.percentile_approx(numeric_value(name, types[name]), doubles(probs), accuracy).alias(f"q{i}")
        for i, name in enumerate(numeric)
    ]
    row = frame.agg(*aggregates).first()
    assert row is not None  # a global aggregate has one row
    missing = {name: int(row[f"m{i}"] or 0) for i, name in enumerate(names)}
    found = {name: [float(v) for v in (row[f"q{i}"] or [])] for i, name in enumerate(numeric)}
    return int(row["rows"]), missing, found


def _kinds(
    names: Sequence[str],
    ref_types: Mapping[str, Any],
    cur_types: Mapping[str, Any],
    ref_missing: Mapping[str, int],
    cur_missing: Mapping[str, int],
    ref_rows: int,
    cur_rows: int,
    ref_name: str,
    cur_name: str,
) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for name in names:
        ref_kind, cur_kind = drift_kind(ref_types[name]), drift_kind(cur_types[name])
        # As the pandas engine: an all-missing column takes the other side's kind.
        if ref_missing[name] == ref_rows:
            ref_kind = cur_kind
        elif cur_missing[name] == cur_rows:
            cur_kind = ref_kind
        if ref_kind != cur_kind:
            raise InputError(
                f"column {name!r} is {ref_kind} ({ref_types[name].simpleString()}) in reference {ref_name} "
                f"but {cur_kind} ({cur_types[name].simpleString()}) in current {cur_name}",
                hint="export both with the same column types",
            )
        kinds[name] = ref_kind
    return kinds


def _with_missing(binned: Binned, ref_missing: int, cur_missing: int) -> Binned:
    import dataclasses

    import numpy as np

    from mlci_lib.drift.stats import MISSING

    return dataclasses.replace(
        binned,
        labels=(*binned.labels, MISSING),
        reference=np.append(binned.reference, ref_missing),
        current=np.append(binned.current, cur_missing),
    )


# -- numeric features ----------------------------------------------------------------------------------


def _numeric(
    ref: DataFrame,
    cur: DataFrame,
    ref_types: Mapping[str, Any],
    cur_types: Mapping[str, Any],
    edges: Mapping[str, list[float]],
    grids: Mapping[str, list[float]],
) -> dict[str, tuple[Binned, tuple[float, float], float]]:
    """Per numeric feature: its bins (without the missing bucket), (KS statistic, p-value), KS bound."""

    from mlci_lib.drift.stats import Binned

    if not edges:
        return {}
    ref_values = {name: numeric_value(name, ref_types[name]) for name in edges}
    cur_values = {name: numeric_value(name, cur_types[name]) for name in edges}
    # One Bucketizer pass a side: the PSI bins, and both limits at every KS grid point.
    layout = {name: [("left", edges[name]), ("left", grids[name]), ("right", grids[name])] for name in edges}
    ref_counts = bucket_counts(ref, ref_values, layout)
    cur_counts = bucket_counts(cur, cur_values, layout)
    out: dict[str, tuple[Binned, tuple[float, float], float]] = {}
    for name, e in edges.items():
        ref_bins, ref_left, ref_right = ref_counts[name]
        cur_bins, cur_left, cur_right = cur_counts[name]
        out[name] = (
            Binned(_numeric_labels(e), ref_bins, cur_bins),
            *_ks(ref_left, ref_right, cur_left, cur_right),
        )
    return out


def _numeric_labels(edges: Sequence[float]) -> tuple[str, ...]:
    # The pandas engine's bin labels (mlci_lib.drift.stats.bin_numeric), for the same edges.
    def fmt(value: float) -> str:
        return f"{float(value):.6g}"

    labels = [f"< {fmt(edges[0])}"] if len(edges) else ["all values"]
    labels += [f"[{fmt(lo)}, {fmt(hi)})" for lo, hi in itertools.pairwise(edges)]
    if len(edges):
        labels.append(f">= {fmt(edges[-1])}")
    return tuple(labels)


def _ks(
    ref_left: np.ndarray, ref_right: np.ndarray, cur_left: np.ndarray, cur_right: np.ndarray
) -> tuple[tuple[float, float], float]:
    """(KS statistic, p-value) and its error bound, from exact counts on both sides of a grid.

    ``*_left`` count values in ``(-inf, g0), [g0, g1), ...``: their running sums are the CDF
    just below each grid point; ``*_right`` count ``(-inf, g0], (g0, g1], ...``: the CDF at it.
    Between two grid points a CDF moves by at most the share of its side strictly between them,
    so the exact statistic exceeds the grid's largest gap by at most the largest such share.
    """
    import numpy as np
    from scipy import stats

    n1, n2 = int(ref_left.sum()), int(cur_left.sum())
    if n1 == 0 or n2 == 0:
        return ((0.0, 1.0) if n1 == n2 else (1.0, 0.0)), 0.0
    below_1 = np.cumsum(ref_left)[:-1] / n1
    below_2 = np.cumsum(cur_left)[:-1] / n2
    at_1 = np.cumsum(ref_right)[:-1] / n1
    at_2 = np.cumsum(cur_right)[:-1] / n2
    statistic = float(max(np.max(np.abs(below_1 - below_2)), np.max(np.abs(at_1 - at_2))))

    def open_shares(below: np.ndarray, at: np.ndarray) -> np.ndarray:
        # (-inf, g0), (g_i, g_i+1) and (g_last, inf): below the next point minus at this one.
        return np.concatenate([[below[0]], below[1:] - at[:-1], [1.0 - at[-1]]])

    bound = float(max(np.max(open_shares(below_1, at_1)), np.max(open_shares(below_2, at_2)), 0.0))
    effective = math.sqrt(n1 * n2 / (n1 + n2))
    p_value = float(stats.kstwobign.sf(effective * statistic))
    return (statistic, min(max(p_value, 0.0), 1.0)), bound


# -- categorical features --------------------------------------------------------------------------------


def _categorical(
    ref: DataFrame,
    cur: DataFrame,
    ref_types: Mapping[str, Any],
    cur_types: Mapping[str, Any],
    names: Sequence[str],
    max_levels: int,
    ref_present: Mapping[str, int],
    cur_present: Mapping[str, int],
) -> dict[str, Binned]:
    """Per categorical feature: the reference's top levels, (other), (unseen); without missing.

    One Spark job: every level counted on both sides, the reference's levels ranked by count
    (ties by name, as the pandas engine), and only the kept levels and the five most frequent
    unseen ones (with the unseen total) collected.
    """
    import numpy as np
    from pyspark.sql import Window, functions as F

    from mlci_lib.drift.stats import OTHER, UNSEEN, Binned

    if not names:
        return {}

    def levels(frame: DataFrame, types: Mapping[str, Any], count: str) -> DataFrame:
        # A level is the value as text; missing values (null, or NaN in an all-missing float
        # column that the other side types as categorical) are no level.
        texts = [F.when(_missing(n, types[n]) == 0, column(n).cast("string")) for n in names]
        pairs = F.explode(
            F.array(*[F.struct(F.lit(i).alias("k"), text.alias("level")) for i, text in enumerate(texts)])
        ).alias("p")
        return (
            frame.select(pairs)
            .select("p.k", "p.level")
            .where(F.col("level").isNotNull())
            .groupBy("k", "level")
            .agg(F.count(F.lit(1)).alias(count))
        )

    by_count = Window.partitionBy("k").orderBy(F.col("ref").desc(), F.col("level").asc())
    ranked = levels(ref, ref_types, "ref").withColumn("rank", F.row_number().over(by_count))
    joined = ranked.join(levels(cur, cur_types, "cur"), on=["k", "level"], how="full_outer")
    unseen = F.col("ref").isNull()
    by_unseen = Window.partitionBy("k", unseen).orderBy(F.col("cur").desc(), F.col("level").asc())
    rows = (
        joined.withColumn("top", F.row_number().over(by_unseen))
        .withColumn("unseen_total", F.sum(F.when(unseen, F.col("cur"))).over(Window.partitionBy("k")))
        .where((F.col("rank") <= max_levels) | (unseen & (F.col("top") <= 5)))
        .select("k", "level", "ref", "cur", "rank", "top", "unseen_total")
        .collect()  # aggregates: the kept levels and five unseen ones per feature
    )
    booleans = {
        i for i, n in enumerate(names) if "boolean" in (ref_types[n].typeName(), cur_types[n].typeName())
    }

    def shown(k: int, level: str) -> str:
        # pandas names a boolean level True/False, Spark's cast true/false; the order is the same.
        return {"true": "True", "false": "False"}.get(level, level) if k in booleans else level

    kept: dict[int, list[tuple[int, str, int, int]]] = {}
    top_unseen: dict[int, list[tuple[int, str]]] = {}
    unseen_totals: dict[int, int] = {}
    for r in rows:
        k = int(r["k"])
        if r["ref"] is None:
            top_unseen.setdefault(k, []).append((int(r["top"]), shown(k, r["level"])))
        else:
            kept.setdefault(k, []).append((int(r["rank"]), r["level"], int(r["ref"]), int(r["cur"] or 0)))
        if r["unseen_total"] is not None:
            unseen_totals[k] = int(r["unseen_total"])
    out: dict[str, Binned] = {}
    for k, name in enumerate(names):
        levels_kept = sorted(kept.get(k, []))
        ref_values = [ref_count for _, _, ref_count, _ in levels_kept]
        cur_values = [cur_count for _, _, _, cur_count in levels_kept]
        unseen_count = unseen_totals.get(k, 0)
        out[name] = Binned(
            (*[shown(k, level) for _, level, _, _ in levels_kept], OTHER, UNSEEN),
            np.asarray([*ref_values, ref_present[name] - sum(ref_values), 0], dtype=np.int64),
            np.asarray(
                [*cur_values, cur_present[name] - sum(cur_values) - unseen_count, unseen_count],
                dtype=np.int64,
            ),
            unseen_levels=tuple(level for _, level in sorted(top_unseen.get(k, []))),
            unseen_count=unseen_count,
        )
    return out
