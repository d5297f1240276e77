"""The monitor verdict: a model's prediction logs over a window, judged per model version.

The rows logged in the window are grouped by model version (digest and version: a canary and its
stable release may share a log folder). For each version:

- **input drift** of every logged input against the training reference (the drift gate,
  :mod:`mlci_lib.drift.gate`);
- **prediction drift**: the logged predictions against the model's own predictions on the
  evaluation set (or on the reference, without one);
- **data quality**: the training data's expectation suite (the one ``mlci data check`` runs) on
  the logged inputs, its expectations on columns the model does not receive left out and listed;
- **realized performance** on the rows a labels file joins, with the gate's metrics, bootstrap
  intervals and rule checks (:mod:`mlci_lib.monitor.performance`);
- **estimated performance** from the logged probabilities, valid only when calibration on the
  evaluation set holds (:mod:`mlci_lib.monitor.performance`).

Rules come from a monitor config (:mod:`mlci_lib.monitor.config`) in the gate file's grammar.
Every rule ends as a gate rule does: pass, fail, inconclusive, undefined (never a pass) or skipped;
the verdict passes when no required rule fails or is undefined, and inconclusive ones pass only
under ``on-inconclusive: warn|pass``. A window without traffic never passes.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from mlci_lib.data.check import DataCheckResult
from mlci_lib.drift.gate import DriftConfig, DriftVerdict
from mlci_lib.errors import ConfigError, InputError
from mlci_lib.gate.results import (
    FAIL,
    INCONCLUSIVE,
    OUTCOMES,
    PASS,
    SKIPPED,
    UNDEFINED,
    Comparison,
    Outcome,
    RuleKind,
    RuleResult,
)
from mlci_lib.monitor.config import ESTIMATED_PREFIX, MonitorConfig
from mlci_lib.monitor.labels import JoinCounts
from mlci_lib.monitor.performance import EstimatedPerformance, RealizedPerformance
from mlci_lib.results import Result

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlci_lib.data.suite import Suite
    from mlci_lib.gate.bootstrap import BootstrapSettings
    from mlci_lib.gate.rules import MetricRule
    from mlci_lib.models.loaded import LoadedModel

#: The column both frames carry the predictions in (a name no input of a model has).
PREDICTION_COLUMN = "mlci.prediction"
#: A verdict's (and a version's) status; inconclusive never passes.
Status = Literal["pass", "warn", "fail", "inconclusive"]


@dataclasses.dataclass(frozen=True)
class VersionReport:
    """Everything computed for one model version over the window."""

    name: str
    version: str | None
    digest: str
    rows: int
    passed: bool
    status: Status
    rules: tuple[RuleResult, ...]
    drift: DriftVerdict | None
    data_quality: DataCheckResult | None
    #: Suite expectations not run on the logs, and why (a column the model does not receive).
    data_quality_skipped: tuple[str, ...]
    labelled_rows: int
    realized: RealizedPerformance | None
    estimated: EstimatedPerformance | None
    not_checked: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}" if self.version else f"{self.name} {self.digest[:19]}"


@dataclasses.dataclass(frozen=True)
class MonitorVerdict(Result):
    SCHEMA: ClassVar[str] = "mlci.monitor-verdict"
    SCHEMA_VERSION: ClassVar[int] = 2

    passed: bool
    #: pass | warn | fail | inconclusive (an empty window under on-no-traffic: inconclusive).
    status: Status
    model: dict[str, Any]
    models: tuple[dict[str, Any], ...]
    files: tuple[str, ...]
    window: dict[str, Any]
    rows: int
    versions: tuple[VersionReport, ...]
    #: The drift of the version with the most rows (as schema 1 carried it), or None.
    drift: DriftVerdict | None
    labels: JoinCounts | None
    reasons: tuple[str, ...]
    not_checked: tuple[str, ...]
    config: str = "(defaults)"
    on_inconclusive: str = "fail"
    confidence: float = 0.95
    counts: dict[str, int] = dataclasses.field(default_factory=dict)

    def markdown(self) -> str:
        from mlci_lib.report.monitor import monitor_section

        return monitor_section(self.to_dict()) + "\n"


def parse_window(text: str | None, option: str = "--window") -> datetime.timedelta | None:
    if not text:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        raise InputError(f"option {option} must be a duration like 90m, 24h or 7d, got {text!r}")
    return datetime.timedelta(seconds=int(number) * units[unit])


# -- one rule outcome built in one place -------------------------------------------------------


def _rule(
    rule: str,
    kind: "RuleKind",
    *,
    value: float | None,
    comparison: "Comparison",
    threshold: float,
    outcome: "Outcome",
    required: bool = True,
    message: str = "",
    metric: str = "",
    statistic: str = "value",
) -> RuleResult:
    return RuleResult(
        rule=rule, kind=kind, metric=metric or kind, check="max" if comparison == "<=" else "min",
        direction="lower" if comparison == "<=" else "higher", candidate=value, baseline=None, delta=None,
        statistic=statistic, value=value, interval=None, comparison=comparison, threshold=threshold,
        outcome=outcome, required=required, message=message,
    )  # fmt: skip


def decide(rules: Sequence[RuleResult], policy: str) -> tuple[bool, Status]:
    """(passed, status) of a set of rules under ``on-inconclusive``, as the gate decides."""
    failing = [r for r in rules if r.required and r.outcome in (FAIL, UNDEFINED)]
    unsure = [r for r in rules if r.required and r.outcome == INCONCLUSIVE]
    advisory = [r for r in rules if not r.required and r.outcome in (FAIL, INCONCLUSIVE, UNDEFINED)]
    if failing:
        return False, "fail"
    if unsure and policy == "fail":
        return False, "inconclusive"
    return True, "warn" if (unsure and policy == "warn") or advisory else "pass"


# -- reading ---------------------------------------------------------------------------------


@dataclasses.dataclass
class _Model:
    loaded: "LoadedModel"
    path: str
    name: str
    digest: str
    #: Computed once per model: predictions on the reference and on the evaluation set.
    cache: dict[str, Any] = dataclasses.field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "digest": self.digest, "path": self.path}


def _load_models(
    models: Sequence[str | os.PathLike[str]], allow_pickle: bool, trusted_types: Iterable[str]
) -> dict[str, _Model]:
    from mlci_lib.models import load_model

    out: dict[str, _Model] = {}
    trusted = list(trusted_types)
    for path in models:
        loaded = load_model(path, allow_pickle=allow_pickle, trusted_types=trusted)
        digest = str(loaded.digest)
        name = str((loaded.metadata or {}).get("name") or os.path.basename(os.path.normpath(str(path))))
        out.setdefault(digest, _Model(loaded, str(path), name, digest))
    return out


def _read_logs(files: Sequence[os.PathLike[str]], models: Mapping[str, _Model]) -> "pd.DataFrame":
    import pandas as pd

    from mlci_lib.serving.prediction_log import read_prediction_logs

    frames = []
    first = next(iter(models.values()))
    for file in files:
        frame = read_prediction_logs([file])  # type: ignore[list-item]
        if frame.empty:
            continue
        for column in ("timestamp", "model.digest", "prediction"):
            if column not in frame.columns:
                raise InputError(f"prediction log {file} has no {column!r}: it is not a log of mlci serve")
        others = sorted(set(frame["model.digest"].astype(str).unique()) - set(models))
        if others:
            given = first.path if len(models) == 1 else f"any of the {len(models)} models given"
            raise InputError(
                f"prediction log {file} holds rows of another model (digest {others[0]}), not of "
                f"{given} ({', '.join(models)})",
                hint="pass only the logs of this model, or every model that wrote them (--model, repeatable)",
            )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _in_window(
    logged: "pd.DataFrame", since: datetime.datetime | None, end: datetime.datetime
) -> "pd.DataFrame":
    import pandas as pd

    if logged.empty:
        return logged
    # The rows of one request share a time: parse each distinct time once.
    import numpy as np

    codes, distinct = pd.factorize(logged["timestamp"])
    try:
        stamps = pd.to_datetime(pd.Series(distinct), utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise InputError(
            f"a prediction log holds a timestamp that is not an ISO 8601 time ({exc})",
            hint="pass the logs mlci serve wrote",
        ) from None
    inside = (stamps <= pd.Timestamp(end)).to_numpy()
    if since is not None:
        inside = inside & (stamps > pd.Timestamp(since)).to_numpy()
    keep = np.where(codes >= 0, inside[codes], False)  # a row without a time is in no window
    if bool(keep.all()):
        return logged
    return logged[keep].reset_index(drop=True)


def _class_index(values: "np.ndarray", classes: Sequence[Any], what: str) -> "np.ndarray":
    """Each value's index among the model's classes; a value that is none of them is an input error."""
    import numpy as np
    import pandas as pd

    from mlci_lib.gate.predictions import _class_text

    numeric = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes)
    if numeric and values.dtype.kind in "iuf":
        index = pd.Index(np.asarray(classes, dtype=np.float64)).get_indexer(values.astype(np.float64))
    else:
        index = pd.Index([_class_text(c) for c in classes]).get_indexer(
            pd.Series(values).map(_class_text).to_numpy()
        )
    bad = index < 0
    if bad.any():
        from mlci_lib.values import shown

        raise InputError(
            f"{what} holds class {shown(values[np.flatnonzero(bad)[0]])}, which the model does not know "
            f"(classes {', '.join(map(str, classes[:8]))})",
            hint="pass the logs and labels of this model",
        )
    codes: np.ndarray = index.astype(np.int64)
    return codes


def _suite_for_inputs(suite: "Suite", inputs: Sequence[str]) -> tuple["Suite", tuple[str, ...]]:
    """The suite's expectations on the model's inputs; the rest (label, table-wide) left out."""
    names = set(inputs)
    kept, skipped = [], []
    for e in suite.expectations:
        named = [e.kwargs[k] for k in ("column", "column_A", "column_B") if e.kwargs.get(k) is not None]
        listed = e.kwargs.get("column_list") or e.kwargs.get("column_set") or []
        columns = [str(c) for c in [*named, *(listed if isinstance(listed, (list, tuple)) else [])]]
        if columns and all(c in names for c in columns):
            kept.append(e)
        elif columns:
            missing = next(c for c in columns if c not in names)
            skipped.append(f"{e.type} on {missing!r}: not an input the model receives")
        else:
            skipped.append(f"{e.type}: a table-wide expectation, not one of the logged rows")
    return dataclasses.replace(suite, expectations=tuple(kept)), tuple(skipped)


# -- the verdict -------------------------------------------------------------------------------


def monitor_logs(
    logs: Sequence[str | os.PathLike[str]],
    reference: str | os.PathLike[str],
    model: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    window: str | None = None,
    until: datetime.datetime | None = None,
    drift_config: str | os.PathLike[str] | None = None,
    allow_pickle: bool = False,
    trusted_types: Iterable[str] = (),
    labels: str | os.PathLike[str] | None = None,
    label_column: str = "label",
    label_id_column: str | None = None,
    evaluation: str | os.PathLike[str] | None = None,
    suite: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | MonitorConfig | None = None,
    rules: Iterable[str] = (),
) -> MonitorVerdict:
    """Judge the rows logged for ``model`` (one model or several versions) in the window."""
    from mlci_lib.monitor.config import load_monitor_config
    from mlci_lib.serving.prediction_log import log_files

    span = parse_window(window)  # a bad option fails before anything is read
    cfg = config if isinstance(config, MonitorConfig) else load_monitor_config(config, rules)
    if isinstance(config, MonitorConfig) and list(rules):
        raise ConfigError("give rules in the MonitorConfig or as inline rules, not both")
    if cfg.data_quality in ("pass", "warn") and not suite:
        raise ConfigError(
            f"{cfg.source}: data-quality: {cfg.data_quality} needs the training data's suite",
            hint="pass --suite (the suite mlci data check runs), or set data-quality: off",
        )
    needs_evaluation = [
        r for r in (*cfg.realized, *cfg.estimated) if any(k not in ("min", "max") for k in r.checks)
    ]
    if needs_evaluation and not evaluation:
        first = needs_evaluation[0]
        raise ConfigError(
            f"{cfg.source}: rule {first.metric} {next(k for k in first.checks if k not in ('min', 'max'))} "
            "compares with the evaluation set, but none was given",
            hint="pass --evaluation (labelled evaluation data), or use only min/max",
        )
    paths = [model] if isinstance(model, (str, os.PathLike)) else list(model)
    if not paths:
        raise InputError("no model given", hint="pass --model")
    models = _load_models(paths, allow_pickle, trusted_types)
    files = log_files(logs)
    if not files:
        raise InputError(
            f"no closed prediction log file (.jsonl or .parquet) matches {', '.join(map(str, logs))}",
            hint="pass the folder given to mlci serve --log-dir, or a glob of its files",
        )
    logged = _read_logs(files, models)
    end = until or datetime.datetime.now(datetime.timezone.utc)
    since = end - span if span is not None else None
    logged = _in_window(logged, since, end)
    window_info = {"since": since.isoformat() if since else None, "until": end.isoformat()}
    infos = tuple(m.info() for m in models.values())
    shown_files = tuple(str(f) for f in files)
    settings = _settings(cfg)
    common: dict[str, Any] = {
        "model": infos[0],
        "models": infos,
        "files": shown_files,
        "window": window_info,
        "config": cfg.source,
        "on_inconclusive": cfg.on_inconclusive,
        "confidence": settings.confidence,
    }
    if logged.empty:
        status: Status = "inconclusive" if cfg.on_no_traffic == "inconclusive" else "fail"
        return MonitorVerdict(
            passed=False, status=status, rows=0, versions=(), drift=None, labels=None,
            reasons=("no logged row in the window: no traffic, or the logs of another window",),
            not_checked=("everything: the window holds no logged row",), **common,
        )  # fmt: skip
    from mlci_lib.drift.gate import load_drift_config

    drift = cfg.drift or (load_drift_config(drift_config) if drift_config else DriftConfig())
    from mlci_lib.tables import read_table

    inputs = [c for c in logged.columns if c.startswith("inputs.")]
    names = [c.removeprefix("inputs.") for c in inputs]
    ref = read_table(reference, what="reference data")
    missing = [c for c in names if c not in ref.columns]
    if missing:
        raise InputError(
            f"reference data {reference} has no column {missing[0]!r}, an input in the logs",
            hint="pass the model's training data as --reference",
        )
    ref = ref[names]
    eval_frame = read_table(evaluation, what="evaluation data") if evaluation else None
    if eval_frame is not None:
        absent = [c for c in [*names, label_column] if c not in eval_frame.columns]
        if absent:
            raise InputError(
                f"evaluation data {evaluation} has no column {absent[0]!r}",
                hint="pass labelled evaluation data with the model's inputs and --label-column",
            )
    loaded_suite = None
    if suite and cfg.data_quality != "off":
        from mlci_lib.data.suite import load_suite

        loaded_suite = load_suite(suite)
    groups = _version_groups(logged)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        # Each version's input drift (numpy sorts of every logged input, which release the GIL)
        # runs on its own thread beside the labels join and the performance metrics.
        # The thread gets frames of its own (pandas objects are not shared between threads).
        input_drift = [
            pool.submit(_input_drift, _named_inputs(_rows_of(logged, rows), inputs), ref.copy(), drift)
            for _, rows in groups
        ]
        join = None
        if labels is not None and str(labels).strip():
            from mlci_lib.monitor.labels import join_labels

            join = join_labels(logged, labels, label_column=label_column, id_column=label_id_column)
        context = _Context(
            cfg=cfg, settings=settings, drift=drift, reference=ref, reference_name=str(reference),
            evaluation=eval_frame, evaluation_name=str(evaluation) if evaluation else None,
            label_column=label_column, suite=loaded_suite, join=join, inputs=inputs, names=names,
            labels_given=join is not None,
        )  # fmt: skip
        reports = [
            _judge_version(logged, rows, models[digest], version, context, inputs_drift.result)
            for ((digest, version), rows), inputs_drift in zip(groups, input_drift, strict=True)
        ]
    all_rules = [r for v in reports for r in v.rules]
    passed, status = decide(all_rules, cfg.on_inconclusive)
    reasons = tuple(
        f"{v.label}: {r.rule} {r.outcome}" + (f": {r.message}" if r.message else "")
        for v in reports
        for r in v.rules
        if r.outcome in (FAIL, UNDEFINED, INCONCLUSIVE) and (r.required or r.outcome != INCONCLUSIVE)
    )
    main = max(reports, key=lambda v: v.rows)
    not_checked = tuple(dict.fromkeys(n for v in reports for n in v.not_checked))
    return MonitorVerdict(
        passed=passed, status=status, rows=len(logged), versions=tuple(reports), drift=main.drift,
        labels=join.counts if join is not None else None, reasons=reasons, not_checked=not_checked,
        counts={k: sum(1 for r in all_rules if r.outcome == k) for k in OUTCOMES}, **common,
    )  # fmt: skip


def _settings(cfg: MonitorConfig) -> "BootstrapSettings":
    from mlci_lib.gate.bootstrap import BootstrapSettings

    return BootstrapSettings(
        resamples=cfg.resamples if cfg.resamples is not None else BootstrapSettings.resamples,
        confidence=cfg.confidence or BootstrapSettings.confidence,
        seed=cfg.seed or 0,
    )


def _one_value(series: "pd.Series") -> bool:
    """Whether every value of ``series`` is its first (all missing counts as one value)."""
    first = series.iloc[0]
    import pandas as pd

    if pd.isna(first):
        return bool(series.isna().all())
    return bool((series == first).all())


def _version_groups(logged: "pd.DataFrame") -> list[tuple[tuple[str, str | None], "np.ndarray"]]:
    """The rows of each (digest, version) in the logs, by version then digest."""
    import numpy as np
    import pandas as pd

    if len(logged) and _one_value(logged["model.digest"]):
        # The common case, one model's logs: one comparison a row, no hash table of a million keys.
        versions = logged["model.version"] if "model.version" in logged.columns else None
        if versions is None or _one_value(versions):
            first = None if versions is None or pd.isna(versions.iloc[0]) else str(versions.iloc[0])
            return [((str(logged["model.digest"].iloc[0]), first), np.arange(len(logged)))]
    digest_codes, digests = pd.factorize(logged["model.digest"].astype(str))
    if "model.version" in logged.columns:
        version_codes, versions = pd.factorize(logged["model.version"], use_na_sentinel=True)
    else:
        version_codes, versions = np.full(len(logged), -1), pd.Index([])
    # One code per pair: a million rows of one version are one group, found without a sort.
    combined = digest_codes.astype(np.int64) * (len(versions) + 1) + (version_codes + 1)
    present = np.unique(combined)
    out = []
    for code in present:
        digest = str(digests[code // (len(versions) + 1)])
        index = code % (len(versions) + 1) - 1
        version = None if index < 0 else str(versions[index])
        rows = np.arange(len(logged)) if len(present) == 1 else np.flatnonzero(combined == code)
        out.append(((digest, version), rows))
    return sorted(out, key=lambda item: (item[0][1] or "", item[0][0]))


@dataclasses.dataclass
class _Context:
    cfg: MonitorConfig
    settings: "BootstrapSettings"
    drift: DriftConfig
    reference: "pd.DataFrame"
    reference_name: str
    evaluation: "pd.DataFrame | None"
    evaluation_name: str | None
    label_column: str
    suite: "Suite | None"
    join: Any
    inputs: list[str]
    names: list[str]
    labels_given: bool


def _model_outputs(model: _Model, frame: "pd.DataFrame", what: str, name: str) -> tuple[Any, Any]:
    """The model's predictions and probabilities on a reference frame, computed once."""
    import numpy as np

    if what not in model.cache:
        try:
            ready = model.loaded.prepare(frame, source=what)
            predictions = np.asarray(model.loaded.estimator.predict(ready))
            proba = (
                np.asarray(model.loaded.estimator.predict_proba(ready), dtype=np.float64)
                if model.loaded.is_classifier
                else None
            )
        except InputError as exc:
            raise InputError(f"{what} {name}: {exc.message}") from None
        model.cache[what] = (predictions, proba)
    return model.cache[what]  # type: ignore[no-any-return]


def _rows_of(logged: "pd.DataFrame", rows: "np.ndarray") -> "pd.DataFrame":
    return logged.iloc[rows] if len(rows) != len(logged) else logged


def _named_inputs(frame: "pd.DataFrame", inputs: Sequence[str]) -> "pd.DataFrame":
    """The logged inputs, named as the model's columns."""
    return frame[list(inputs)].rename(columns=lambda c: c.removeprefix("inputs."))


def _input_drift(current: "pd.DataFrame", reference: "pd.DataFrame", drift: DriftConfig) -> DriftVerdict:
    """The logged inputs of one version against the reference (``mlci drift``'s statistics)."""
    from mlci_lib.drift.gate import detect_drift

    return detect_drift(reference, current, config=dataclasses.replace(drift, prediction_column=None))


def _judge_version(
    logged: "pd.DataFrame",
    rows: "np.ndarray",
    model: _Model,
    version: str | None,
    ctx: _Context,
    input_drift: Callable[[], DriftVerdict],
) -> VersionReport:
    import numpy as np

    cfg = ctx.cfg
    part = _rows_of(logged, rows)
    n = len(part)
    current = _named_inputs(part, ctx.inputs)
    rules: list[RuleResult] = []
    not_checked: list[str] = []
    rules.append(
        _rule(
            "min-rows", "rows", value=float(n), comparison=">=", threshold=float(cfg.min_rows),
            outcome=PASS if n >= cfg.min_rows else INCONCLUSIVE,
            message="" if n >= cfg.min_rows
            else f"{n:,} rows in the window, fewer than min-rows {cfg.min_rows:,}: too few to judge",
        )
    )  # fmt: skip
    drift = _drift(input_drift, part, model, ctx)
    rules += _drift_rules(drift)
    quality = None
    skipped: tuple[str, ...] = ()
    if ctx.suite is not None:
        from mlci_lib.data.check import check_data

        applied, skipped = _suite_for_inputs(ctx.suite, ctx.names)
        required = (cfg.data_quality or "pass") == "pass"
        if not applied.expectations:  # an empty suite passes anything: never a silent pass
            rules.append(
                _rule(
                    "data quality", "data-quality", value=None, comparison="<=", threshold=0.0,
                    outcome=UNDEFINED, required=required, statistic="failed expectations",
                    message=f"suite {ctx.suite.source} has no expectation on the model's inputs",
                )
            )  # fmt: skip
        else:
            quality = dataclasses.replace(check_data(current, applied), data="logged inputs")
            rules.append(
                _rule(
                    "data quality", "data-quality", value=float(quality.failed), comparison="<=",
                    threshold=0.0, outcome=PASS if quality.passed else FAIL, required=required,
                    message="" if quality.passed else "; ".join(
                        [*quality.problems, *(e.describe() for e in quality.failures[:3])]
                    ),
                    statistic="failed expectations",
                )
            )  # fmt: skip
    else:
        not_checked.append("data quality of the logged inputs (no --suite)")
    classes = model.loaded.classes if model.loaded.is_classifier else None
    proba = None
    predicted = None
    if classes is not None:
        columns = [f"probabilities.{c}" for c in classes]
        if all(c in part.columns for c in columns):
            proba = part[columns].to_numpy(dtype=np.float64)
        predicted = _class_index(part["prediction"].to_numpy(), classes, f"prediction log of {model.name}")
    pos_index = 1 if classes is not None and len(classes) == 2 else None
    evaluation = _evaluation(model, ctx, classes, pos_index)
    labelled = 0
    realized = None
    if ctx.join is not None:
        selected = np.zeros(len(logged), dtype=bool)
        selected[rows] = True
        has, values = ctx.join.labels_of(selected)
        labelled = int(has.sum())
        realized, realized_rules = _realized(part, has, values, classes, proba, pos_index, evaluation, ctx)
        rules += realized_rules
    else:
        not_checked.append("realized performance (no --labels)")
        for rule in cfg.realized:
            rules += [
                dataclasses.replace(r, outcome=SKIPPED, message="no labels given (--labels): realized "
                                    "performance waits for them")
                for r in _undefined(rule, "no labels", evaluation)
            ]  # fmt: skip
    estimated, estimated_rules = _estimated(proba, predicted, classes, pos_index, evaluation, ctx, n)
    rules += estimated_rules
    if estimated is None or not estimated.valid:
        not_checked.append(
            "estimated performance" + (f" ({estimated.message})" if estimated is not None else "")
        )
    passed, status = decide(rules, cfg.on_inconclusive)
    return VersionReport(
        name=model.name, version=version, digest=model.digest, rows=n, passed=passed, status=status,
        rules=tuple(rules), drift=drift, data_quality=quality, data_quality_skipped=tuple(skipped),
        labelled_rows=labelled, realized=realized, estimated=estimated, not_checked=tuple(not_checked),
    )  # fmt: skip


def _drift(
    input_drift: Callable[[], DriftVerdict], part: "pd.DataFrame", model: _Model, ctx: _Context
) -> DriftVerdict:
    """Input drift against the reference (``input_drift``: computed beside the rest, waited for
    here); prediction drift against the model's predictions on the evaluation set."""
    import pandas as pd

    from mlci_lib.drift.gate import column_drift

    basis = ctx.evaluation[ctx.names] if ctx.evaluation is not None else ctx.reference
    basis_name = ctx.evaluation_name or ctx.reference_name
    what = "evaluation data" if ctx.evaluation is not None else "reference data"
    predictions, _ = _model_outputs(model, basis, what, basis_name)
    reference = pd.Series(predictions)
    logged = part["prediction"].reset_index(drop=True)
    if model.loaded.is_classifier:  # labels compare as levels on both sides, whatever their type
        reference, logged = reference.astype(str), logged.astype(str)
    # The predictions alone: judged as detect_drift judges its prediction column, without judging
    # an input column again beside them.
    prediction = column_drift(PREDICTION_COLUMN, reference, logged, ctx.drift)
    inputs = input_drift()
    reasons = list(inputs.reasons)
    if prediction is not None and prediction.drifted:
        reasons.append(
            f"predictions drifted from the model's predictions on the {what} "
            f"({prediction.method} {prediction.value:.4g}, threshold {prediction.threshold:g})"
        )
    return dataclasses.replace(
        inputs,
        passed=not reasons,
        reference=ctx.reference_name,
        current="logged inputs",
        prediction=prediction,
        reasons=tuple(reasons),
    )


def _drift_rules(drift: DriftVerdict) -> list[RuleResult]:
    input_reasons = [r for r in drift.reasons if not r.startswith("predictions drifted")]
    out = [
        _rule(
            "input drift", "drift", value=drift.drift_share, comparison="<=", threshold=drift.max_drift_share,
            outcome=FAIL if input_reasons else PASS, message="; ".join(input_reasons),
            statistic="drifted share",
        )
    ]  # fmt: skip
    p = drift.prediction
    if p is not None:
        p_value = p.method in ("ks", "chi2")
        out.append(
            _rule(
                "prediction drift", "prediction-drift", value=p.value if math.isfinite(p.value) else None,
                comparison=">=" if p_value else "<=", threshold=p.threshold,
                outcome=FAIL if p.drifted else PASS, metric=p.method, statistic=p.method,
                message=f"{p.method} {p.value:.4g} against threshold {p.threshold:g}" if p.drifted else "",
            )
        )  # fmt: skip
    return out


@dataclasses.dataclass(frozen=True)
class _Evaluation:
    """The model on the labelled evaluation set: its metrics, and calibration for the estimate."""

    metrics: dict[str, float]
    proba: "np.ndarray | None"
    predicted: "np.ndarray | None"
    labels: "np.ndarray | None"


def _evaluation(model: _Model, ctx: _Context, classes: Any, pos_index: int | None) -> _Evaluation | None:
    if ctx.evaluation is None:
        return None
    key = "evaluation-summary"
    if key in model.cache:
        return model.cache[key]  # type: ignore[no-any-return]
    from mlci_lib.gate.predictions import compute_metrics

    frame = ctx.evaluation
    predictions, proba = _model_outputs(model, frame[ctx.names], "evaluation data", str(ctx.evaluation_name))
    truth = frame[ctx.label_column].to_numpy()
    metrics = compute_metrics(
        truth, predictions, scores=proba, classes=classes, task=_task(classes),
        pos_label=classes[pos_index] if classes is not None and pos_index is not None else None,
    )  # fmt: skip
    labels_index = predicted = None
    if classes is not None:
        labels_index = _class_index(
            truth, classes, f"evaluation data {ctx.evaluation_name} ({ctx.label_column})"
        )
        predicted = _class_index(predictions, classes, f"the model's predictions on {ctx.evaluation_name}")
    summary = _Evaluation(metrics, proba, predicted, labels_index)
    model.cache[key] = summary
    return summary


def _task(classes: Any) -> str:
    from mlci_lib.gate.metrics import BINARY, MULTICLASS, REGRESSION

    if classes is None:
        return REGRESSION
    return BINARY if len(classes) == 2 else MULTICLASS


def _undefined(rule: "MetricRule", why: str, evaluation: _Evaluation | None) -> list[RuleResult]:
    from mlci_lib.monitor.performance import check_metric_rule

    baseline = evaluation.metrics.get(rule.metric) if evaluation is not None else None
    return check_metric_rule(rule, math.nan, baseline=baseline, undefined=why)


def _realized(
    part: "pd.DataFrame",
    has: "np.ndarray",
    values: "np.ndarray",
    classes: Any,
    proba: "np.ndarray | None",
    pos_index: int | None,
    evaluation: _Evaluation | None,
    ctx: _Context,
) -> tuple[RealizedPerformance, list[RuleResult]]:
    """The gate's metrics, intervals and checks on the rows of this version that got a label."""
    from mlci_lib.gate.bootstrap import bootstrap_metrics
    from mlci_lib.gate.metrics import default_metrics, metric_for_task, point_metric, undefined_reason
    from mlci_lib.gate.predictions import encode_arrays
    from mlci_lib.monitor.performance import check_metric_rule, finite, interval_of

    cfg = ctx.cfg
    labelled = int(has.sum())
    if labelled == 0:
        why = "no label joined a row of this version in the window"
        undefined = [r for rule in cfg.realized for r in _undefined(rule, why, evaluation)]
        return RealizedPerformance(
            rows=len(part), labelled_rows=0, metrics={}, intervals={}, message=why
        ), undefined
    every = bool(has.all())  # every row labelled: no copy of a million rows to select them all
    predictions = part["prediction"].to_numpy() if every else part["prediction"].to_numpy()[has]
    scores = proba if every or proba is None else proba[has]
    rows = encode_arrays(
        values, predictions, scores=scores, classes=classes, task=_task(classes),
        pos_label=classes[pos_index] if classes is not None and pos_index is not None else None,
    )  # fmt: skip
    names = list(dict.fromkeys([*default_metrics(rows), *(r.metric for r in cfg.realized)]))
    for name in names:
        metric_for_task(name, rows.task, where=f"{cfg.source}: rule on {name!r}")
    points = {name: point_metric(name, rows) for name in names}
    ruled = list(dict.fromkeys(r.metric for r in cfg.realized))
    draws = bootstrap_metrics([rows], ruled, ctx.settings) if ruled and ctx.settings.resamples else {}
    results: list[RuleResult] = []
    for rule in cfg.realized:
        value = points[rule.metric]
        why = (
            ""
            if math.isfinite(value)
            else f"{rule.metric} is undefined on the labelled rows: " + undefined_reason(rule.metric, rows)
        )
        baseline = evaluation.metrics.get(rule.metric) if evaluation is not None else None
        results += check_metric_rule(
            rule, value, baseline=baseline, draws=draws.get(rule.metric), rows=labelled,
            confidence=ctx.settings.confidence, undefined=why,
        )  # fmt: skip
    intervals = {name: interval_of(points[name], draws.get(name), ctx.settings.confidence) for name in ruled}
    return (
        RealizedPerformance(
            rows=len(part), labelled_rows=labelled, metrics={k: finite(v) for k, v in points.items()},
            intervals=intervals,
        ),
        results,
    )  # fmt: skip


def _estimated(
    proba: "np.ndarray | None",
    predicted: "np.ndarray | None",
    classes: Any,
    pos_index: int | None,
    evaluation: _Evaluation | None,
    ctx: _Context,
    n: int,
) -> tuple[EstimatedPerformance | None, list[RuleResult]]:
    """Confidence-based performance estimation, valid only when calibration holds."""
    from mlci_lib.monitor.performance import (
        calibration_gaps,
        check_calibration,
        check_metric_rule,
        estimated_draws,
        expected_confusion,
        finite,
        interval_of,
    )

    cfg = ctx.cfg
    why = ""
    if classes is None:
        why = "a regressor gives no class probabilities to estimate from"
    elif proba is None:
        why = "the logs hold no class probabilities (probabilities.<class>)"
    elif evaluation is None or evaluation.proba is None:
        why = "needs --evaluation (labelled evaluation data) to check the model's calibration"
    if why:
        unknown = [r for rule in cfg.estimated for r in _undefined(rule, why, evaluation)]
        estimate = EstimatedPerformance(False, why, n, {}, {}, None) if classes is not None else None
        return estimate, [_estimated_name(r) for r in unknown]
    assert proba is not None and predicted is not None and evaluation is not None
    assert evaluation.proba is not None and evaluation.predicted is not None and evaluation.labels is not None
    bins = cfg.calibration_bins
    calibration = check_calibration(
        evaluation.proba, evaluation.predicted, evaluation.labels, bins=bins, max_ece=cfg.max_ece,
        source=f"evaluation data {ctx.evaluation_name}",
    )  # fmt: skip
    gap, se = calibration_gaps(evaluation.proba, evaluation.predicted, evaluation.labels, bins)
    names = list(dict.fromkeys(["accuracy", *(r.metric for r in cfg.estimated)]))
    if len(classes) == 2:
        names += [m for m in ("precision", "recall", "f1") if m not in names]
    else:
        names += [m for m in ("f1_macro",) if m not in names]
    summary = expected_confusion(proba, predicted, bins)
    points, draws = estimated_draws(summary, gap, se, names, ctx.settings, pos_index)
    results: list[RuleResult] = []
    for rule in cfg.estimated:
        undefined = "" if calibration.calibrated else calibration.message
        value = points[rule.metric]
        if not undefined and not math.isfinite(value):
            undefined = f"estimated {rule.metric} is undefined on this window"
        results += check_metric_rule(
            rule, value, baseline=evaluation.metrics.get(rule.metric), draws=draws[rule.metric], rows=n,
            confidence=ctx.settings.confidence, undefined=undefined,
        )  # fmt: skip
    estimate = EstimatedPerformance(
        valid=calibration.calibrated,
        message=calibration.message,
        rows=n,
        metrics={k: finite(v) for k, v in points.items()},
        intervals={k: interval_of(points[k], draws[k], ctx.settings.confidence) for k in names},
        calibration=calibration,
    )
    # The estimate's validity is a rule of its own, advisory: an uncalibrated model's verdict is
    # at best a warning, even with no rule on its estimate (a rule on it is undefined, and fails).
    valid = _rule(
        "calibration", "calibration", value=finite(calibration.ece), comparison="<=", threshold=cfg.max_ece,
        outcome=PASS if calibration.calibrated else FAIL, required=False, statistic="ECE",
        message="" if calibration.calibrated and not calibration.ece > cfg.max_ece else calibration.message,
    )  # fmt: skip
    return estimate, [valid, *(_estimated_name(r) for r in results)]


def _estimated_name(result: RuleResult) -> RuleResult:
    return dataclasses.replace(
        result, rule=ESTIMATED_PREFIX + result.rule, metric=ESTIMATED_PREFIX + result.metric, kind="estimated"
    )


def verdict_text(verdict: MonitorVerdict) -> str:
    """The verdict in a few lines for the log: one per version, then every rule that did not pass."""
    word = {
        "pass": "passed",
        "warn": "passed with warnings",
        "fail": "FAILED",
        "inconclusive": "INCONCLUSIVE",
    }
    status = word.get(verdict.status, verdict.status)
    lines = [f"monitor {status}: {verdict.rows:,} logged rows of {verdict.model['name']}"]
    if verdict.labels is not None:
        c = verdict.labels
        lines.append(
            f"  labels {c.source}: {c.joined_rows:,} of {c.logged_rows:,} logged rows joined on "
            f"{' and '.join(c.key)}; {c.unmatched_labels:,} of {c.label_rows:,} labels matched no row"
            + (f", {c.missing_labels:,} labels missing" if c.missing_labels else "")
        )
    for v in verdict.versions:
        parts = [f"{v.rows:,} rows"]
        if v.drift is not None:
            parts.append(f"{len(v.drift.drifted_features)} of {len(v.drift.features)} inputs drifted")
            if v.drift.prediction is not None and v.drift.prediction.drifted:
                parts.append("predictions drifted")
        if v.data_quality is not None:
            parts.append(f"data quality {v.data_quality.failed} of {v.data_quality.evaluated} failed")
        if v.realized is not None and v.realized.metrics.get("accuracy") is not None:
            parts.append(f"accuracy {v.realized.metrics['accuracy']:.4f} on {v.labelled_rows:,} labelled")
        if v.estimated is not None and v.estimated.metrics.get("accuracy") is not None:
            flag = "" if v.estimated.valid else " (NOT VALID: not calibrated)"
            parts.append(f"estimated accuracy {v.estimated.metrics['accuracy']:.4f}{flag}")
        lines.append(f"  {v.label} [{v.status}]: " + ", ".join(parts))
    lines += [f"  {reason}" for reason in verdict.reasons]
    if verdict.not_checked:
        lines.append("  not checked: " + "; ".join(verdict.not_checked))
    return "\n".join(lines)
