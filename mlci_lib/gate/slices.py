"""Slice rules: each metric on each slice of a column, and the largest gap between slices."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlci_lib.gate.checks import decide
from mlci_lib.gate.metrics import (
    EncodedRows,
    point_metric,
    undefined_reason,
)
from mlci_lib.gate.predictions import (
    PredictionTable,
)
from mlci_lib.gate.results import (
    SKIPPED,
    UNDEFINED,
    Comparison,
    RuleResult,
    SliceRow,
)
from mlci_lib.gate.rules import (
    MetricRule,
)

if TYPE_CHECKING:
    import numpy as np


# -- slices ---------------------------------------------------------------------------------------------


def _slice_labels(values: "np.ndarray") -> "np.ndarray":
    import numpy as np
    import pandas as pd

    series = pd.Series(values)
    text = series.map(lambda v: str(int(v)) if isinstance(v, float) and float(v).is_integer() else str(v))
    return np.where(series.isna().to_numpy(), "(missing)", text.to_numpy(dtype=object))


def slice_checks(
    rules: Sequence[MetricRule],
    table: PredictionTable,
    rows: EncodedRows,
    columns: Sequence[str],
    min_size: int,
) -> tuple[list[RuleResult], list[SliceRow]]:
    import numpy as np

    results: list[RuleResult] = []
    table_rows: list[SliceRow] = []
    for column in columns:
        labels = _slice_labels(table.slices[column])
        values_seen, inverse = np.unique(labels.astype(str), return_inverse=True)
        per_metric: dict[str, list[tuple[str, float]]] = {r.metric: [] for r in rules}
        undefined_slices: dict[str, list[str]] = {r.metric: [] for r in rules}
        for i, value in enumerate(values_seen):
            index = np.flatnonzero(inverse == i)
            sub = rows.take(index)
            size = len(sub)  # rows, also when the entries are counted row types
            gated = size >= min_size
            with np.errstate(all="ignore"):
                metrics = {r.metric: point_metric(r.metric, sub) for r in rules}
            table_rows.append(
                SliceRow(
                    column, str(value), size, gated,
                    {k: (v if math.isfinite(v) else None) for k, v in metrics.items()},
                )
            )  # fmt: skip
            for rule in rules:
                v = metrics[rule.metric]
                for check, threshold in rule.checks.items():
                    if check == "max-gap":
                        continue
                    slice_op: Comparison = ">=" if check == "min" else "<="
                    if not gated:
                        outcome, message = (
                            SKIPPED,
                            f"{size} rows, below the minimum slice size {min_size}",
                        )
                    elif not math.isfinite(v):
                        outcome, message = UNDEFINED, undefined_reason(rule.metric, sub)
                    else:
                        outcome, message = decide(v, None, slice_op, threshold), ""
                    results.append(
                        RuleResult(
                            rule=f"{rule.metric} {check} [{column}={value}]", kind="slice",
                            metric=rule.metric, check=check, direction=rule.direction,
                            candidate=v if math.isfinite(v) else None, baseline=None, delta=None,
                            statistic="value", value=v if math.isfinite(v) else None, interval=None,
                            comparison=slice_op, threshold=threshold, outcome=outcome, required=rule.required,
                            slice=f"{column}={value}", message=message,
                        )
                    )  # fmt: skip
                if gated and math.isfinite(v):
                    per_metric[rule.metric].append((str(value), v))
                elif gated:
                    undefined_slices[rule.metric].append(str(value))
        for rule in rules:
            if "max-gap" not in rule.checks:
                continue
            threshold = rule.checks["max-gap"]
            found = per_metric[rule.metric]
            if undefined_slices[rule.metric]:
                # The slice without a value may be the worst: a gap over the others proves nothing.
                first = undefined_slices[rule.metric][0]
                outcome, gap, message = (
                    UNDEFINED,
                    None,
                    f"{rule.metric} is undefined on {column}={first}, so the gap cannot be measured",
                )
                best = worst = None
            elif len(found) < 2:
                outcome, gap, message = (
                    SKIPPED,
                    None,
                    f"fewer than two slices of {column} have {min_size}+ rows",
                )
                best = worst = None
            else:
                ordered = sorted(found, key=lambda item: item[1], reverse=rule.higher_is_better)
                best, worst = ordered[0], ordered[-1]
                gap = abs(best[1] - worst[1])
                outcome = decide(gap, None, "<=", threshold)
                message = (
                    f"best {column}={best[0]} ({best[1]:.4g}), worst {column}={worst[0]} ({worst[1]:.4g})"
                )
            results.append(
                RuleResult(
                    rule=f"{rule.metric} max-gap [{column}]", kind="slice-gap", metric=rule.metric,
                    check="max-gap", direction=rule.direction, candidate=None, baseline=None, delta=None,
                    statistic="gap", value=gap, interval=None, comparison="<=", threshold=threshold,
                    outcome=outcome, required=rule.required, slice=column, message=message,
                )
            )  # fmt: skip
    return results, table_rows
