"""``mlci gate --engine spark``: the gate from counts of row types computed by Spark.

The paired bootstrap of confusion-matrix metrics needs only how many rows have each (label,
candidate prediction, baseline prediction) type: Spark joins the two predictions files on their
id, groups by those columns (and the slice columns) and counts; only the counts reach the
driver. They become a table of row types with weights, which :func:`run_gate` decides exactly
as it decides rows: the same class list, the same types in the same order, the same
multinomial draws, so the same verdict as the pandas engine on the same files.

Metrics that need each row's score or value (ROC AUC, log loss, regression errors) cannot be
recovered from counts: they are refused with a one-line error that names the pandas engine.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError, UsageError
from mlci_lib.gate.metrics import CONFUSION_METRICS, METRICS, canonical_name
from mlci_lib.gate.predictions import Columns, PredictionTable, is_metrics_file
from mlci_lib.spark.aggregates import column
from mlci_lib.spark.tables import read_table, spark_errors

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from mlci_lib.gate.results import GateVerdict

#: At most this many row types reach the driver; more means the columns are not classes.
MAX_TYPES = 200_000


def run_gate_spark(
    spark: SparkSession,
    candidate: str | os.PathLike[str],
    baseline: str | os.PathLike[str] | None = None,
    rules: Any = None,
    *,
    rule: Sequence[str] = (),
    id_column: str | None = None,
    label_column: str = "label",
    prediction_column: str = "prediction",
    proba_prefix: str = "proba_",
    columns: Columns | None = None,
    slice_column: Sequence[str] = (),
    **options: Any,
) -> GateVerdict:
    """:func:`mlci_lib.gate.verdict.run_gate` on per-row predictions read and counted by Spark.

    ``options`` are run_gate's other keyword arguments (task, pos_label, resamples, seed...).
    A metrics JSON candidate needs no Spark: it goes to run_gate as it is.
    """
    from mlci_lib.gate.verdict import _load_rules, run_gate

    if columns is not None:
        # The CLI's one Columns object: the same names as the separate arguments.
        id_column = columns.id if columns.id_explicit else None
        label_column, prediction_column, proba_prefix = (
            columns.label,
            columns.prediction,
            columns.proba_prefix,
        )
        options["score_column"] = columns.score

    given = [candidate, baseline] if baseline is not None and str(baseline).strip() else [candidate]
    if candidate is None or any(is_metrics_file(str(v)) for v in given):
        return run_gate(
            candidate, baseline, rules, rule=rule, id_column=id_column, label_column=label_column,
            prediction_column=prediction_column, proba_prefix=proba_prefix, slice_column=slice_column,
            **options,
        )  # fmt: skip
    gate_rules = _load_rules(rules, rule)
    for metric_rule in (*gate_rules.metrics, *gate_rules.slice_metrics):
        name = canonical_name(metric_rule.metric)
        if name in METRICS and name not in CONFUSION_METRICS:
            raise UsageError(
                f"rule on {name!r}: --engine spark gates confusion-matrix metrics from row-type counts, "
                f"and {name} needs every row's score or value",
                hint=f"use --engine pandas for it, or gate on {', '.join(CONFUSION_METRICS[:5])}...",
            )
    slices = list(dict.fromkeys([*gate_rules.slice_columns, *slice_column]))
    id_name = id_column or "id"
    cand_name = str(candidate)
    base_name = str(baseline) if len(given) == 2 else None
    cand = read_table(spark, cand_name, what="candidate predictions file")
    base = read_table(spark, base_name, what="baseline predictions file") if base_name else None
    _require(cand, cand_name, "candidate predictions file", [prediction_column, label_column, *slices])
    if base is not None and base_name is not None:
        _require(base, base_name, "baseline predictions file", [prediction_column])
        if id_column and id_name not in base.columns:
            raise InputError(
                f"baseline predictions file {base_name} has no id column {id_name!r}",
                hint="check --id-column",
            )
    if id_column and id_name not in cand.columns:
        raise InputError(
            f"candidate predictions file {cand_name} has no id column {id_name!r}", hint="check --id-column"
        )
    with spark_errors(f"candidate predictions file {cand_name}"):
        _check_values(cand, cand_name, "candidate predictions file", [label_column, prediction_column])
        if base is not None and base_name is not None:
            has_label = label_column in base.columns
            checked = [prediction_column, *([label_column] if has_label else [])]
            _check_values(base, base_name, "baseline predictions file", checked)
            joined = _join(
                cand, base, cand_name, base_name, id_name, label_column, prediction_column, has_label, slices
            )
        else:
            joined = cand.select(
                column(label_column).alias("label"),
                column(prediction_column).alias("cand"),
                column(prediction_column).alias("base"),  # one model: the types' third part is unused
                *[column(s).alias(f"s{i}") for i, s in enumerate(slices)],
            )
        keys = ["label", "cand", "base", *[f"s{i}" for i in range(len(slices))]]
        grouped = joined.groupBy(*keys).count().limit(MAX_TYPES + 1).collect()  # aggregates
    if len(grouped) > MAX_TYPES:
        raise InputError(
            f"{cand_name}: more than {MAX_TYPES:,} distinct (label, prediction, slice) combinations; a gate "
            "on row-type counts needs class labels and predictions",
            hint="for a regression or a continuous slice column use --engine pandas",
        )
    types = cand.schema
    numeric = {
        "label": _is_number(types[label_column].dataType),
        "cand": _is_number(types[prediction_column].dataType),
        "base": _is_number(base.schema[prediction_column].dataType) if base is not None else True,
    }
    import numpy as np

    def classes(key: str) -> np.ndarray:
        values = [row[key] for row in grouped]
        if numeric[key]:
            return np.asarray([float(v) for v in values], dtype=np.float64)
        return np.asarray([str(v) for v in values], dtype=object)

    weights = np.asarray([int(row["count"]) for row in grouped], dtype=np.int64)
    labels = classes("label")
    proba = {
        c[len(proba_prefix) :]: np.full(len(grouped), np.nan)
        for c in cand.columns
        if c.startswith(proba_prefix)
    }
    # Probability columns name the model's classes (a class the rows never show still counts,
    # and three of them make the task multiclass, as the pandas engine reads them); their values
    # are not read: confusion-matrix metrics do not use them.
    proba = {k: v for k, v in proba.items() if k}
    cand_table = PredictionTable(
        source=cand_name,
        labels=labels,
        predictions=classes("cand"),
        proba=proba,
        slices={s: np.asarray([row[f"s{i}"] for row in grouped], dtype=object) for i, s in enumerate(slices)},
        weights=weights,
    )
    base_table = None
    if base is not None and base_name is not None:
        base_table = PredictionTable(
            source=base_name, labels=labels, predictions=classes("base"), weights=weights
        )
    verdict = run_gate(
        cand_table, base_table, rules, rule=rule, label_column=label_column,
        prediction_column=prediction_column, proba_prefix=proba_prefix, slice_column=slice_column, **options,
    )  # fmt: skip
    info = dict(verdict.candidate)
    if Path(cand_name).exists():
        from mlci_lib.fingerprint import fingerprint_path

        info["fingerprint"] = fingerprint_path(cand_name)
    note = (
        f"engine spark: {int(weights.sum()):,} rows counted into {len(grouped):,} row types on Spark; "
        "only the counts reached the driver"
    )
    return dataclasses.replace(verdict, candidate=info, notes=(*verdict.notes, note))


def _is_number(data_type: Any) -> bool:
    from pyspark.sql import types as T

    return isinstance(data_type, (T.NumericType, T.BooleanType))


def _require(frame: DataFrame, name: str, what: str, wanted: Sequence[str]) -> None:
    available = list(frame.columns)
    for c in wanted:
        if c not in available:
            shown = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
            raise InputError(f"{what} {name} has no column {c!r}", hint=f"its columns are: {shown}")


def _check_values(frame: DataFrame, name: str, what: str, columns: Sequence[str]) -> None:
    """No missing or infinite label or prediction: counted in one aggregate, refused in one line."""
    from pyspark.sql import functions as F, types as T

    checks = []
    for c in columns:
        value = column(c)
        bad = value.isNull()
        if isinstance(frame.schema[c].dataType, (T.FloatType, T.DoubleType)):
            bad = bad | F.isnan(value) | (F.abs(value) == float("inf"))
        checks.append(F.sum(F.when(bad, 1).otherwise(0)).alias(c))
    checks.append(F.count(F.lit(1)).alias("__rows"))
    row = frame.agg(*checks).first()
    assert row is not None
    if int(row["__rows"]) == 0:
        raise InputError(f"{what} {name} has no rows", hint="check the step that writes it")
    for c in columns:
        if row[c]:
            raise InputError(
                f"{what} {name}: column {c!r} has {int(row[c]):,} missing or infinite values",
                hint="drop or fill those rows before the gate",
            )


def _join(
    cand: DataFrame,
    base: DataFrame,
    cand_name: str,
    base_name: str,
    id_name: str,
    label: str,
    prediction: str,
    base_has_label: bool,
    slices: Sequence[str],
) -> DataFrame:
    """Candidate rows with the baseline's prediction, joined on the id; every mismatch refused."""
    from pyspark.sql import functions as F

    has = [id_name in cand.columns, id_name in base.columns]
    if not all(has):
        if any(has):
            with_id, without = (cand_name, base_name) if has[0] else (base_name, cand_name)
            raise InputError(
                f"{with_id} has a row id column but {without} has none, so rows cannot be joined",
                hint="write the id column in both files",
            )
        raise InputError(
            f"--engine spark joins candidate and baseline on their id column, and neither {cand_name} nor "
            f"{base_name} has one ({id_name!r})",
            hint="write a row id column in both files (or set --id-column), or use --engine pandas",
        )
    for frame, name in ((cand, cand_name), (base, base_name)):
        dup = frame.groupBy(column(id_name)).count().where(F.col("count") > 1).limit(1).collect()
        if dup:
            raise InputError(
                f"{name}: row id {dup[0][0]!r} appears twice",
                hint="row ids must be unique to join candidate and baseline",
            )
    b = base.select(
        column(id_name).alias("__id"),
        column(prediction).alias("__base"),
        *([column(label).alias("__base_label")] if base_has_label else []),
    )
    joined = cand.join(b, cand[id_name] == b["__id"], "full_outer")
    summary = joined.agg(
        F.sum(F.when(F.col("__id").isNull(), 1).otherwise(0)).alias("no_base"),
        F.sum(F.when(column(id_name).isNull(), 1).otherwise(0)).alias("no_cand"),
        *(
            [F.sum(F.when(column(label) != F.col("__base_label"), 1).otherwise(0)).alias("labels")]
            if base_has_label
            else []
        ),
    ).first()
    assert summary is not None
    if summary["no_base"]:
        raise InputError(
            f"{int(summary['no_base'])} candidate rows have no baseline row in {base_name}",
            hint="evaluate both models on the same rows",
        )
    if summary["no_cand"]:
        raise InputError(
            f"{int(summary['no_cand'])} baseline rows in {base_name} have no candidate row",
            hint="evaluate both models on the same rows",
        )
    if base_has_label and summary["labels"]:
        raise InputError(
            f"candidate and baseline {base_name} disagree on the label of {int(summary['labels'])} rows",
            hint="both files must score the same evaluation rows",
        )
    return joined.select(
        cand[label].alias("label"),
        cand[prediction].alias("cand"),
        F.col("__base").alias("base"),
        *[cand[s].alias(f"s{i}") for i, s in enumerate(slices)],
    )
