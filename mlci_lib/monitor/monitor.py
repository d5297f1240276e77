"""The monitor verdict: a model's prediction logs over a window, compared with its training reference.

This first version checks drift: every logged input against the reference with the statistics
of the drift gate (:mod:`mlci_lib.drift.gate`), and the logged predictions against the model's
own predictions on the reference (the drift gate's prediction column). Data quality, realized
performance on late labels and estimated performance are not computed yet; the verdict says so
in ``not_checked`` rather than passing them silently.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from mlci_lib.drift.gate import DriftConfig, DriftVerdict
from mlci_lib.errors import InputError
from mlci_lib.results import Result

#: The column both frames carry the predictions in (a name no input of a model has).
PREDICTION_COLUMN = "mlci.prediction"
NOT_CHECKED = (
    "data quality of the logged inputs",
    "realized performance (no labels joined)",
    "estimated performance",
)


@dataclasses.dataclass(frozen=True)
class MonitorVerdict(Result):
    SCHEMA: ClassVar[str] = "mlci.monitor-verdict"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    model: dict[str, Any]
    files: tuple[str, ...]
    window: dict[str, Any]
    rows: int
    versions: tuple[str, ...]
    drift: DriftVerdict | None
    reasons: tuple[str, ...]
    not_checked: tuple[str, ...] = NOT_CHECKED

    def markdown(self) -> str:
        icon = "✅" if self.passed else "❌"
        lines = [
            f"## {icon} Monitor: {self.model.get('name')} over {self.rows:,} logged rows",
            "",
            f"Window {self.window.get('since') or 'start of the logs'} to {self.window.get('until')}, "
            f"{len(self.files)} log files, model digest `{self.model.get('digest')}`.",
            "",
        ]
        lines += [f"- {reason}" for reason in self.reasons]
        if self.reasons:
            lines.append("")
        if self.drift is not None:
            from mlci_lib.drift.render import drift_markdown

            lines.append(drift_markdown(self.drift, title="Drift"))
        lines.append("Not checked in this version: " + "; ".join(self.not_checked) + ".")
        return "\n".join(lines) + "\n"


def parse_window(text: str | None, option: str = "--window") -> datetime.timedelta | None:
    if not text:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        raise InputError(f"option {option} must be a duration like 90m, 24h or 7d, got {text!r}")
    return datetime.timedelta(seconds=int(number) * units[unit])


def monitor_logs(
    logs: Sequence[str | os.PathLike[str]],
    reference: str | os.PathLike[str],
    model: str | os.PathLike[str],
    *,
    window: str | None = None,
    until: datetime.datetime | None = None,
    drift_config: str | os.PathLike[str] | None = None,
    allow_pickle: bool = False,
    trusted_types: Iterable[str] = (),
) -> MonitorVerdict:
    """Drift of the rows logged for ``model`` in the window against ``reference``."""
    import numpy as np
    import pandas as pd

    from mlci_lib.drift.gate import detect_drift, load_drift_config
    from mlci_lib.models import load_model
    from mlci_lib.serving.prediction_log import log_files, read_prediction_logs
    from mlci_lib.tables import read_table

    span = parse_window(window)  # a bad option fails before anything is read
    loaded = load_model(model, allow_pickle=allow_pickle, trusted_types=trusted_types)
    digest = str(loaded.digest)
    name = str((loaded.metadata or {}).get("name") or os.path.basename(str(model)))
    files = log_files(logs)
    if not files:
        raise InputError(
            f"no closed prediction log file (.jsonl or .parquet) matches {', '.join(map(str, logs))}",
            hint="pass the folder given to mlci serve --log-dir, or a glob of its files",
        )
    frames = []
    for file in files:
        frame = read_prediction_logs([file])
        if frame.empty:
            continue
        for column in ("timestamp", "model.digest", "prediction"):
            if column not in frame.columns:
                raise InputError(f"prediction log {file} has no {column!r}: it is not a log of mlci serve")
        others = sorted(set(frame["model.digest"].astype(str)) - {digest})
        if others:
            raise InputError(
                f"prediction log {file} holds rows of another model (digest {others[0]}), not of "
                f"{model} ({digest})",
                hint="pass only the logs of this model, or the model that wrote them",
            )
        frames.append(frame)
    logged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    end = until or datetime.datetime.now(datetime.timezone.utc)
    since = end - span if span is not None else None
    if not logged.empty:
        stamps = pd.to_datetime(logged["timestamp"], utc=True, format="ISO8601")
        keep = stamps <= pd.Timestamp(end)
        if since is not None:
            keep &= stamps > pd.Timestamp(since)
        logged = logged[keep.to_numpy()]
    window_info = {"since": since.isoformat() if since else None, "until": end.isoformat()}
    model_info = {"name": name, "digest": digest, "path": str(model)}
    shown = tuple(str(f) for f in files)
    if logged.empty:
        return MonitorVerdict(
            passed=False,
            model=model_info,
            files=shown,
            window=window_info,
            rows=0,
            versions=(),
            drift=None,
            reasons=("no logged row in the window: no traffic, or the logs of another window",),
        )
    versions = tuple(
        sorted({str(v) for v in logged.get("model.version", pd.Series(dtype=object)) if v is not None})
    )
    inputs = [c for c in logged.columns if c.startswith("inputs.")]
    current = logged[inputs].rename(columns=lambda c: c.removeprefix("inputs."))
    current[PREDICTION_COLUMN] = logged["prediction"].to_numpy()
    ref = read_table(reference, what="reference data")
    missing = [c for c in current.columns if c != PREDICTION_COLUMN and c not in ref.columns]
    if missing:
        raise InputError(
            f"reference data {reference} has no column {missing[0]!r}, an input in the logs",
            hint="pass the model's training data as --reference",
        )
    ref = ref[[c for c in current.columns if c != PREDICTION_COLUMN]].copy()
    try:
        predictions = np.asarray(loaded.estimator.predict(loaded.prepare(ref, source="reference")))
    except InputError as exc:
        raise InputError(f"reference data {reference}: {exc.message}") from None
    ref[PREDICTION_COLUMN] = predictions
    if loaded.is_classifier:  # labels compare as levels on both sides, whatever their type
        ref[PREDICTION_COLUMN] = ref[PREDICTION_COLUMN].astype(str)
        current[PREDICTION_COLUMN] = current[PREDICTION_COLUMN].astype(str)
    config = load_drift_config(drift_config) if drift_config else DriftConfig()
    config = dataclasses.replace(config, prediction_column=PREDICTION_COLUMN, prediction_required=True)
    drift = detect_drift(ref, current, config=config)
    drift = dataclasses.replace(drift, reference=str(reference), current=f"{len(files)} prediction log files")
    return MonitorVerdict(
        passed=drift.passed,
        model=model_info,
        files=shown,
        window=window_info,
        rows=len(current),
        versions=versions,
        drift=drift,
        reasons=tuple(drift.reasons),
    )
