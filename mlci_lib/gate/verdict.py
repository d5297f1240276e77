"""The gate itself: :func:`run_gate` reads inputs, evaluates every rule and returns a verdict.

Each rule ends ``pass``, ``fail``, ``inconclusive`` (its confidence interval straddles the
threshold), ``undefined`` (the metric has no value on these rows, e.g. ROC AUC with one class in
the labels: a required undefined rule fails the gate whatever ``on-inconclusive`` says) or
``skipped`` (a slice below the minimum size). With per-row predictions the gate
bootstraps; with metrics files it compares point estimates, says so, and decides exactly as
MLflow's ``validate_evaluation_results`` does on the same numbers.

The gate is split by job: the result types are in :mod:`.results`, the settings merge in
:mod:`.settings`, row-type encoding and metrics in :mod:`.predictions` and :mod:`.metrics`, the
checks of one rule in :mod:`.checks` and :mod:`.slices`; this module reads and aligns the inputs
and puts the verdict together.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError, UsageError
from mlci_lib.gate.bootstrap import BootstrapSettings, Draws, bootstrap_metrics
from mlci_lib.gate.checks import (
    POWER,
    MetricEvidence,
    detectable_multiplier,
    finite,
    latency_checks,
    metric_checks,
)
from mlci_lib.gate.metrics import (
    BINARY,
    METRICS,
    EncodedRows,
    canonical_name,
    metric_for_task,
    needs_scores,
    point_metric,
    presort_scores,
    undefined_reason,
)
from mlci_lib.gate.predictions import (
    Columns,
    PredictionTable,
    align_baseline,
    encode_tables,
    is_metrics_file,
    load_metrics_json,
    read_predictions,
    validate_metrics_mapping,
)
from mlci_lib.gate.results import (
    FAIL,
    INCONCLUSIVE,
    OUTCOMES,
    UNDEFINED,
    GateVerdict,
    Method,
    RuleResult,
    SliceRow,
    Status,
)
from mlci_lib.gate.rules import (
    GateRules,
    InconclusivePolicy,
    load_gate_rules,
    merge_inline_rules,
    parse_rules,
)
from mlci_lib.gate.settings import GateSettings
from mlci_lib.gate.slices import slice_checks

if TYPE_CHECKING:
    pass


# -- inputs ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Side:
    """One model's evidence: per-row predictions, or metric values only."""

    source: str
    table: PredictionTable | None = None
    metrics: dict[str, float] | None = None
    rows: EncodedRows | None = None


def _load_side(
    value: Any, *, what: str, columns: Columns, slice_columns: Sequence[str], need_labels: bool
) -> _Side:
    import pandas as pd

    if isinstance(value, PredictionTable):
        return _Side(value.source, table=value)
    if isinstance(value, pd.DataFrame):
        return _Side(f"{what} (DataFrame)", table=_table_from_frame(value, what, columns, slice_columns))
    if isinstance(value, Mapping):
        return _Side(f"{what} (metrics)", metrics=validate_metrics_mapping(value, where=what))
    if isinstance(value, (str, os.PathLike)):
        if str(value).strip() == "":
            raise UsageError(
                f"the {what} file name is empty", hint=f"give the {what} predictions or metrics file"
            )
        if is_metrics_file(value):
            return _Side(str(value), metrics=load_metrics_json(value, what=f"{what} metrics file"))
        table = read_predictions(
            value,
            what=f"{what} predictions file",
            columns=columns,
            slice_columns=slice_columns,
            need_labels=need_labels,
        )
        return _Side(str(value), table=table)
    raise UsageError(
        f"{what} must be a file path, a DataFrame or a mapping of metrics, not {type(value).__name__}"
    )


def _table_from_frame(
    frame: Any, what: str, columns: Columns, slice_columns: Sequence[str]
) -> PredictionTable:
    import tempfile
    from pathlib import Path

    # One code path for files and frames: a DataFrame goes through the same checks as a file.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{what}.parquet"
        frame.to_parquet(path, index=False)
        table = read_predictions(path, what=what, columns=columns, slice_columns=slice_columns)
    return dataclasses.replace(table, source=f"{what} (DataFrame)")


def _load_rules(rules: Any, inline: Sequence[str]) -> GateRules:
    base: GateRules | None
    if rules is None or (isinstance(rules, str) and rules.strip() == ""):
        base = None
    elif isinstance(rules, GateRules):
        base = rules
    elif isinstance(rules, Mapping):
        base = parse_rules(rules)
    else:
        base = load_gate_rules(rules)
    merged = merge_inline_rules(base, inline)
    if merged.empty:
        raise UsageError(
            "the gate has no rules, so it cannot pass or fail anything",
            hint="give a gate file with --rules, or a rule with --rule 'accuracy max-drop=0.01'",
        )
    return merged


# -- the gate ---------------------------------------------------------------------------------------------


def run_gate(
    candidate: Any,
    baseline: Any = None,
    rules: Any = None,
    *,
    rule: Sequence[str] = (),
    candidate_latency: Any = None,
    baseline_latency: Any = None,
    id_column: str | None = None,
    label_column: str = "label",
    prediction_column: str = "prediction",
    score_column: str = "score",
    proba_prefix: str = "proba_",
    columns: Columns | None = None,
    pos_label: str | None = None,
    task: str | None = None,
    slice_column: Sequence[str] = (),
    slice_min_size: int | None = None,
    resamples: int | None = None,
    confidence: float | None = None,
    seed: int | None = None,
    on_inconclusive: str | None = None,
    model: str | os.PathLike[str] | None = None,
    data_fingerprint: str | None = None,
) -> GateVerdict:
    """Gate ``candidate`` against ``baseline`` under ``rules`` (and inline ``rule`` strings).

    ``candidate`` and ``baseline`` are each a predictions file (CSV, Parquet, JSON Lines), a
    metrics JSON file, a DataFrame of predictions, or a mapping of metric values; ``baseline``
    may be None (absolute rules only). ``rules`` is a gate file path, a mapping of the same
    shape, or :class:`GateRules`. Options given here override the gate file's settings.
    The column names are the single ``*_column`` keywords, or all at once as ``columns`` (the
    CLI's parameter object), not both.

    The verdict records what it was computed on, so that a push or a promotion can refuse it for
    another model: the candidate predictions file's fingerprint, the digest of ``model`` (the
    candidate model itself, when given) and ``data_fingerprint`` (of the evaluation data).
    """
    # Hashed on a thread while the gate reads and computes (hashlib releases the GIL on large
    # buffers); a gate that stops early leaves the daemon thread to finish on its own.
    fingerprint = _start_fingerprint(candidate)
    gate_rules = _load_rules(rules, rule)
    resolved = GateSettings.resolve(
        gate_rules,
        resamples=resamples,
        confidence=confidence,
        seed=seed,
        on_inconclusive=on_inconclusive,
        slice_column=slice_column,
        slice_min_size=slice_min_size,
    )
    settings, policy = resolved.bootstrap, resolved.on_inconclusive
    slice_columns, min_size = list(resolved.slice_columns), resolved.slice_min_size
    single = Columns(
        id=id_column or "id",
        label=label_column,
        prediction=prediction_column,
        score=score_column,
        proba_prefix=proba_prefix,
        id_explicit=bool(id_column),
    )
    if columns is None:
        columns = single
    elif single != Columns():
        raise UsageError(
            "run_gate takes the column names as columns= or as the *_column keywords, not both",
            hint="put every column name into the Columns object",
        )
    notes: list[str] = []
    has_metric_rules = bool(gate_rules.metrics or gate_rules.slice_metrics)
    cand = base = None
    if has_metric_rules:
        if candidate is None:
            raise UsageError("metric rules need the candidate", hint="pass --candidate")
        cand = _load_side(
            candidate, what="candidate", columns=columns, slice_columns=slice_columns, need_labels=True
        )
        if baseline is not None and not (isinstance(baseline, str) and not baseline.strip()):
            base = _load_side(baseline, what="baseline", columns=columns, slice_columns=(), need_labels=False)
    needs_baseline = [r for r in gate_rules.metrics if any(k not in ("min", "max") for k in r.checks)]
    if needs_baseline and base is None:
        first = needs_baseline[0]
        raise UsageError(
            f"rule {first.metric} compares with the baseline, but no baseline was given",
            hint="pass --baseline (predictions or metrics of the current model), or use only min/max",
        )
    results: list[RuleResult] = []
    slice_rows: list[SliceRow] = []
    task_name: str | None = None
    n_rows: int | None = None
    method: Method = "point"
    if cand is not None and base is not None and cand.table is not None and base.table is not None:
        base.table = align_baseline(cand.table, base.table)
    # Encode per-row sides together so both share one class list.
    tables = [s.table for s in (cand, base) if s is not None and s.table is not None]
    if tables:
        encoded, _ = encode_tables(tables, task=task, pos_label=pos_label)
        task_name = encoded[0].task
        it = iter(encoded)
        for side in (cand, base):
            if side is not None and side.table is not None:
                side.rows = next(it)
    metric_names = list(dict.fromkeys(r.metric for r in (*gate_rules.metrics, *gate_rules.slice_metrics)))
    if tables and task_name == BINARY and any(METRICS[m].family == "ranking" for m in metric_names):
        presort_scores(encoded, metric_names)
    values = {}
    # side -> metric -> why its value is undefined on that side's rows
    undefined_reasons: dict[str, dict[str, str]] = {"candidate": {}, "baseline": {}}
    for label, side in (("candidate", cand), ("baseline", base)):
        if side is None:
            continue
        values[label] = _side_metrics(
            side, metric_names, gate_rules, label, task_name, columns, undefined_reasons[label]
        )
    if cand is not None and cand.rows is not None:
        n_rows = len(cand.rows)
    # Bootstrap where the candidate has rows, paired when the baseline has the same rows.
    draws: dict[str, Draws] = {}
    paired = base is not None and base.rows is not None
    if cand is not None and cand.rows is not None and settings.resamples > 0 and gate_rules.metrics:
        models = [cand.rows] + ([base.rows] if paired and base is not None and base.rows is not None else [])
        names = list(dict.fromkeys(r.metric for r in gate_rules.metrics))
        draws = bootstrap_metrics(models, names, settings)
        method = "bootstrap"
        if not paired and base is not None:
            notes.append("the baseline has metric values only: intervals hold the baseline fixed")
    else:
        if cand is not None and cand.rows is None:
            notes.append(
                "the candidate has metric values only, not per-row predictions: point estimates, no intervals"
            )
        elif settings.resamples == 0:
            notes.append("resamples is 0: point estimates, no intervals")
    for metric_rule in gate_rules.metrics:
        assert cand is not None
        evidence = MetricEvidence(
            candidate=values["candidate"][metric_rule.metric],
            baseline=values.get("baseline", {}).get(metric_rule.metric),
            draws=draws.get(metric_rule.metric),
            paired=paired,
            rows=n_rows,
            candidate_undefined=undefined_reasons["candidate"].get(metric_rule.metric, ""),
            baseline_undefined=undefined_reasons["baseline"].get(metric_rule.metric, ""),
        )
        results.extend(metric_checks(metric_rule, evidence, settings.confidence))
    if any(r.mde is not None for r in results):
        notes.append(
            f"detectable = minimum detectable effect = (z_{{1-α/2}} + z_{{{POWER:g}}}) × SE = "
            f"{detectable_multiplier(settings.confidence):.3f} × SE, SE the standard deviation of the "
            f"rule's bootstrap distribution: the smallest distance from the threshold that "
            f"{n_rows:,} rows decide with {POWER:.0%} power; rows needed = n × (detectable / "
            "|observed − threshold|)², as SE scales with 1/√n"
        )
    if gate_rules.slice_metrics:
        assert cand is not None
        if cand.table is None or cand.rows is None:
            raise InputError(
                f"slice rules need per-row predictions, but the candidate {cand.source} holds metric values",
                hint="pass the candidate's predictions file",
            )
        slice_results, slice_rows = slice_checks(
            gate_rules.slice_metrics, cand.table, cand.rows, slice_columns, min_size
        )
        results.extend(slice_results)
        notes.append(f"slice rules use point estimates; slices under {min_size} rows are reported, not gated")
    results.extend(latency_checks(gate_rules, candidate_latency, baseline_latency))
    verdict = _verdict(
        results, slice_rows, policy, settings, method, task_name, n_rows, cand, base, values, notes
    )
    return _record_provenance(verdict, candidate, model, data_fingerprint, fingerprint)


def _start_fingerprint(candidate: Any) -> "Future[str] | None":
    """The candidate predictions file's fingerprint, being computed on a thread."""
    if not (isinstance(candidate, (str, os.PathLike)) and str(candidate).strip()):
        return None
    if not os.path.exists(candidate):
        return None  # reading it names the missing file
    from mlci_lib.fingerprint import fingerprint_path

    future: Future[str] = Future()

    def work() -> None:
        try:
            future.set_result(fingerprint_path(candidate))
        except BaseException as exc:  # raised where the verdict takes the result
            future.set_exception(exc)

    threading.Thread(target=work, name="mlci-fingerprint", daemon=True).start()
    return future


def _record_provenance(
    verdict: GateVerdict,
    candidate: Any,
    model: Any,
    data_fingerprint: str | None,
    fingerprint: "Future[str] | None" = None,
) -> GateVerdict:
    """What the verdict was computed on: the predictions file, the model, the data."""
    from mlci_lib.fingerprint import fingerprint_path
    from mlci_lib.models.digest import model_digest

    info = dict(verdict.candidate)
    if isinstance(candidate, (str, os.PathLike)) and str(candidate).strip():
        info["fingerprint"] = fingerprint.result() if fingerprint is not None else fingerprint_path(candidate)
    if model is not None and str(model).strip():
        if not os.path.exists(model):
            raise InputError(f"model {model} (option --model) does not exist", hint="check the path")
        info["model_digest"] = model_digest(model)
    return dataclasses.replace(verdict, candidate=info, data_fingerprint=data_fingerprint or None)


def _side_metrics(
    side: _Side,
    names: Sequence[str],
    rules: GateRules,
    label: str,
    task: str | None,
    columns: Columns,
    undefined: dict[str, str],
) -> dict[str, float]:
    """Each metric's value on one side (NaN when undefined, with the reason put in ``undefined``)."""
    import numpy as np

    out: dict[str, float] = {}
    if side.metrics is not None:
        available = {canonical_name(k): v for k, v in side.metrics.items()}
        for name in names:
            if name not in available:
                shown = ", ".join(sorted(side.metrics)) or "(none)"
                raise InputError(
                    f"{label} metrics file {side.source} has no metric {name!r} that a rule needs",
                    hint=f"it has: {shown}",
                )
            out[name] = available[name]
        return out
    assert side.rows is not None and task is not None
    for name in names:
        if name not in METRICS:
            raise InputError(
                f"rule on {name!r}: mlci cannot compute this metric from the {label} predictions",
                hint="give metrics JSON files for custom metrics, or check the metric name",
            )
        metric_for_task(name, task, where=f"rule on {name!r}")
        if needs_scores(name):
            if side.rows.scores is None:
                raise InputError(
                    f"metric {name!r} needs scores, but {label} predictions {side.source} have no "
                    f"{columns.score!r} column and no {columns.proba_prefix}<class> columns",
                    hint="write the predicted probabilities, or set --score-column / --proba-prefix",
                )
            if METRICS[name].family == "proba":
                scores = np.asarray(side.rows.scores)
                if scores.min() < 0 or scores.max() > 1:
                    raise InputError(
                        f"metric {name!r} needs probabilities, but {label} scores in {side.source} "
                        f"range from {scores.min():.4g} to {scores.max():.4g}",
                        hint="write probabilities in [0, 1], or drop this metric",
                    )
        value = point_metric(name, side.rows)
        if not math.isfinite(value):
            undefined[name] = (
                f"{name} is undefined on the {label}'s rows: {undefined_reason(name, side.rows)}"
            )
        out[name] = value
    return out


def _verdict(
    results: list[RuleResult],
    slice_rows: list[SliceRow],
    policy: InconclusivePolicy,
    settings: BootstrapSettings,
    method: Method,
    task: str | None,
    n_rows: int | None,
    cand: _Side | None,
    base: _Side | None,
    values: Mapping[str, Mapping[str, float]],
    notes: list[str],
) -> GateVerdict:
    failing = [r for r in results if r.required and r.outcome in (FAIL, UNDEFINED)]
    unsure = [r for r in results if r.required and r.outcome == INCONCLUSIVE]
    advisory = [r for r in results if not r.required and r.outcome in (FAIL, INCONCLUSIVE, UNDEFINED)]
    passed = not failing and (not unsure or policy != "fail")
    if not passed:
        status: Status = "fail"
    elif (unsure and policy == "warn") or advisory:
        status = "warn"
    else:
        status = "pass"
    if unsure and policy == "pass":
        notes.append(f"{len(unsure)} inconclusive rule(s) pass under on-inconclusive: pass")
    counts: dict[str, int] = {k: sum(1 for r in results if r.outcome == k) for k in OUTCOMES}

    def side_info(side: _Side | None, label: str) -> dict[str, Any] | None:
        if side is None:
            return None
        return {
            "source": side.source,
            "kind": "predictions" if side.table is not None else "metrics",
            # JSON has no NaN: an undefined metric is null, its reason in the rule's message.
            "metrics": {k: finite(v) for k, v in values.get(label, {}).items()},
        }

    return GateVerdict(
        passed=passed,
        status=status,
        method=method,
        on_inconclusive=policy,
        confidence=settings.confidence,
        resamples=settings.resamples if method == "bootstrap" else 0,
        seed=settings.seed,
        task=task,
        rows=n_rows,
        candidate=side_info(cand, "candidate") or {"source": None, "kind": "none", "metrics": {}},
        baseline=side_info(base, "baseline"),
        rules=tuple(results),
        slices=tuple(slice_rows),
        counts=counts,
        notes=tuple(notes),
    )
