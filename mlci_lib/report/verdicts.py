"""Reading the verdict files a report is made of, and refusing malformed ones.

A report reads the pipeline verdict (``mlci.pipeline-verdict``) with its embedded stage verdicts,
or individual verdict files: the gate (``mlci.gate-verdict``), the data check (``mlci.data-check``)
and drift (``mlci.drift-verdict``). A section that is absent is fine (a pipeline without a drift
stage has no drift table); a field that is present but of the wrong shape is an InputError that
names the file and the field, so a broken verdict never renders as a quiet, half-empty report.

A verdict must also agree with itself: its ``passed`` is decided again from its own rules (a gate,
under the ``on_inconclusive`` it records) or stages (a pipeline), so an edited ``passed: true``
over failed rules is refused wherever mlci reads a verdict (the report, a push, a promotion).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError

PIPELINE = "mlci.pipeline-verdict"
GATE = "mlci.gate-verdict"
DATA_CHECK = "mlci.data-check"
DRIFT = "mlci.drift-verdict"
#: Schema -> the newest schema_version this release reads.
SUPPORTED: dict[str, int] = {PIPELINE: 1, GATE: 1, DATA_CHECK: 1, DRIFT: 1}
#: Schema -> short kind used in section names.
KINDS = {PIPELINE: "pipeline", GATE: "gate", DATA_CHECK: "data-check", DRIFT: "drift"}
STAGE_STATUSES = ("passed", "failed", "skipped", "error")
RULE_OUTCOMES = ("pass", "fail", "inconclusive", "undefined", "skipped")
#: What an inconclusive rule does to a gate verdict (its ``on_inconclusive``).
INCONCLUSIVE_POLICIES = ("fail", "warn", "pass")

_NUMBER = "number"
_TYPE_NAMES = {str: "text", bool: "true/false", int: "a whole number", dict: "a mapping", list: "a list"}


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One validated verdict: its kind, where it came from, and its JSON content."""

    kind: str  # pipeline | gate | data-check | drift
    source: str
    data: Mapping[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.data["passed"])


class _Checker:
    """Type checks that name the file and the JSON path of the first bad field."""

    def __init__(self, source: str, tool: str) -> None:
        self.source = source
        self.tool = tool

    def fail(self, where: str, problem: str) -> InputError:
        return InputError(
            f"verdict file {self.source}: {where} {problem}",
            hint=f"the file is malformed; write it again with {self.tool}",
        )

    def value(self, data: Mapping[str, Any], key: str, kind: Any, where: str, *, required: bool) -> Any:
        path = f"{where}.{key}" if where else key
        if key not in data:
            if required:
                raise self.fail(path, "is missing")
            return None
        value = data[key]
        if value is None:
            if required:
                raise self.fail(path, "is null")
            return None
        if kind == _NUMBER:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self.fail(path, f"must be a number, found {_shown(value)}")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(path, f"must be a whole number, found {_shown(value)}")
        elif not isinstance(value, kind):
            raise self.fail(path, f"must be {_TYPE_NAMES.get(kind, kind.__name__)}, found {_shown(value)}")
        return value

    def req(self, data: Mapping[str, Any], key: str, kind: Any, where: str = "") -> Any:
        return self.value(data, key, kind, where, required=True)

    def opt(self, data: Mapping[str, Any], key: str, kind: Any, where: str = "") -> Any:
        return self.value(data, key, kind, where, required=False)

    def items(
        self, data: Mapping[str, Any], key: str, where: str = "", *, required: bool = False
    ) -> list[Any]:
        values = self.value(data, key, list, where, required=required)
        return [] if values is None else list(values)

    def mappings(
        self, data: Mapping[str, Any], key: str, where: str = "", *, required: bool = False
    ) -> list[tuple[str, Mapping[str, Any]]]:
        out: list[tuple[str, Mapping[str, Any]]] = []
        base = f"{where}.{key}" if where else key
        for i, item in enumerate(self.items(data, key, where, required=required)):
            if not isinstance(item, dict):
                raise self.fail(f"{base}[{i}]", f"must be a mapping, found {_shown(item)}")
            out.append((f"{base}[{i}]", item))
        return out

    def choice(self, data: Mapping[str, Any], key: str, choices: Sequence[str], where: str) -> str:
        value = self.req(data, key, str, where)
        if value not in choices:
            raise self.fail(f"{where}.{key}", f"must be one of {', '.join(choices)}, found {_shown(value)}")
        return str(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_TOOLS = {
    PIPELINE: "'mlci run'",
    GATE: "'mlci gate'",
    DATA_CHECK: "'mlci data check'",
    DRIFT: "'mlci drift'",
}


def validate_verdict(data: Any, *, source: str, where: str = "") -> Verdict:
    """Check ``data`` against its schema and return it as a :class:`Verdict`."""
    check = _Checker(source, "the mlci command that wrote it")
    prefix = f"{where} " if where else ""
    if not isinstance(data, dict):
        raise check.fail(where or "the top level", f"must be a JSON object, found {_shown(data)}")
    schema = data.get("schema")
    if schema not in SUPPORTED:
        known = ", ".join(sorted(SUPPORTED))
        raise InputError(
            f"verdict file {source}: {prefix}schema {_shown(schema)} is not a verdict mlci can report",
            hint=f"pass a file with schema {known}",
        )
    check.tool = _TOOLS[schema]
    version = check.req(data, "schema_version", int, where)
    if version < 1 or version > SUPPORTED[schema]:
        raise InputError(
            f"verdict file {source}: {prefix}schema_version {version} of {schema} is not supported "
            f"(this mlci reads up to {SUPPORTED[schema]})",
            hint="use the mlci release that wrote it, or upgrade mlci",
        )
    check.req(data, "passed", bool, where)
    {PIPELINE: _pipeline, GATE: _gate, DATA_CHECK: _data_check, DRIFT: _drift}[schema](check, data, where)
    decided = {PIPELINE: _pipeline_decision, GATE: _gate_decision}.get(schema)
    if decided is not None:
        should, why = decided(data)
        if data["passed"] is not should:
            raise InputError(
                f"verdict file {source}: {prefix}says passed: {str(data['passed']).lower()}, but {why}",
                hint=f"the verdict was edited or is damaged; write it again with {check.tool}",
            )
    return Verdict(kind=KINDS[schema], source=source, data=data)


def _gate_decision(d: Mapping[str, Any]) -> tuple[bool, str]:
    """What a gate verdict's own rules decide: (passed, the reason in words)."""
    policy = d["on_inconclusive"]
    required = [r for r in d["rules"] if r.get("required", True) is not False]
    # Anything but pass, skipped and (by the policy) inconclusive fails a required rule: an
    # undefined metric, or an outcome this release does not know.
    failing = [r for r in required if r["outcome"] not in ("pass", "skipped", "inconclusive")]
    unsure = [r for r in required if r["outcome"] == "inconclusive"]
    if failing:
        return False, f"its required rule {failing[0]['rule']!r} is {failing[0]['outcome']}"
    if unsure and policy == "fail":
        return False, f"its required rule {unsure[0]['rule']!r} is inconclusive under on_inconclusive: fail"
    status = d.get("status")
    if status is not None and status not in ("pass", "warn"):
        return False, f"its status is {status!r}"
    return True, "every required rule passed" + (f" (inconclusive ones under {policy})" if unsure else "")


def _pipeline_decision(d: Mapping[str, Any]) -> tuple[bool, str]:
    """What a pipeline verdict's own stages decide: (passed, the reason in words)."""
    stages = d["stages"]
    bad = [s for s in stages if s["status"] in ("failed", "error")]
    if bad:
        return False, f"its stage {bad[0]['name']} {bad[0]['status']}"
    if d.get("status") == "running":
        return False, "it is still running"
    if not any(s["status"] == "passed" for s in stages):
        return False, "none of its stages passed"
    for s in stages:
        embedded = s.get("verdict")
        if isinstance(embedded, Mapping) and embedded.get("passed") is False and s["status"] == "passed":
            return False, f"its stage {s['name']} is marked passed over a verdict that did not pass"
    return True, "every stage it ran passed"


def load_verdict(path: str | os.PathLike[str]) -> Verdict:
    """Read and validate one verdict file."""
    from mlci_lib.files import read_json

    data = read_json(path, what="verdict file")
    return validate_verdict(data, source=str(path))


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _gate(c: _Checker, d: Mapping[str, Any], where: str) -> None:
    c.opt(d, "status", str, where)
    c.opt(d, "data_fingerprint", str, where)
    c.opt(d, "method", str, where)
    c.opt(d, "confidence", _NUMBER, where)
    c.opt(d, "rows", int, where)
    for side in ("candidate", "baseline"):
        info = c.opt(d, side, dict, where)
        if info is not None:
            for key in ("source", "kind", "fingerprint", "model_digest"):
                c.opt(info, key, str, _join(where, side))
            metrics = c.opt(info, "metrics", dict, _join(where, side))
            for name in metrics or {}:
                c.opt(metrics, name, _NUMBER, _join(_join(where, side), "metrics"))
    rules = c.mappings(d, "rules", where, required=True)
    if not rules:
        raise c.fail(_join(where, "rules"), "is empty: a gate without rules decides nothing")
    for path, rule in rules:
        c.req(rule, "rule", str, path)
        c.req(rule, "kind", str, path)
        c.opt(rule, "metric", str, path)
        c.choice(rule, "outcome", RULE_OUTCOMES, path)
        for key in ("candidate", "baseline", "delta", "value", "threshold"):
            c.opt(rule, key, _NUMBER, path)
        for key in ("statistic", "comparison", "direction", "slice", "message", "check"):
            c.opt(rule, key, str, path)
        c.opt(rule, "required", bool, path)
        interval = c.opt(rule, "interval", list, path)
        if interval is not None:
            ok = len(interval) == 2 and all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in interval
            )
            if not ok:
                raise c.fail(f"{path}.interval", f"must be [low, high], found {_shown(interval)}")
    c.choice(d, "on_inconclusive", INCONCLUSIVE_POLICIES, where)
    for path, row in c.mappings(d, "slices", where):
        c.req(row, "column", str, path)
        c.req(row, "value", str, path)
        c.opt(row, "rows", int, path)
        c.opt(row, "gated", bool, path)
        metrics = c.opt(row, "metrics", dict, path) or {}
        for name in metrics:
            c.opt(metrics, name, _NUMBER, f"{path}.metrics")
    for i, note in enumerate(c.items(d, "notes", where)):
        if not isinstance(note, str):
            raise c.fail(f"{_join(where, 'notes')}[{i}]", f"must be text, found {_shown(note)}")


def _data_check(c: _Checker, d: Mapping[str, Any], where: str) -> None:
    c.opt(d, "data", str, where)
    c.opt(d, "suite", str, where)
    for key in ("rows", "columns", "evaluated", "failed"):
        c.opt(d, key, int, where)
    for path, e in c.mappings(d, "expectations", where, required=True):
        c.req(e, "type", str, path)
        c.req(e, "success", bool, path)
        c.opt(e, "column", str, path)
        c.opt(e, "unexpected_count", int, path)
        c.opt(e, "unexpected_share", _NUMBER, path)
        c.opt(e, "sample_unexpected", list, path)
        c.opt(e, "exception", str, path)
    for i, problem in enumerate(c.items(d, "problems", where)):
        if not isinstance(problem, str):
            raise c.fail(f"{_join(where, 'problems')}[{i}]", f"must be text, found {_shown(problem)}")


def _feature(c: _Checker, f: Mapping[str, Any], path: str) -> None:
    c.req(f, "name", str, path)
    c.req(f, "drifted", bool, path)
    c.opt(f, "kind", str, path)
    c.opt(f, "method", str, path)
    for key in ("value", "threshold", "severity", "psi", "js_distance"):
        c.opt(f, key, _NUMBER, path)
    c.opt(f, "critical", bool, path)
    c.opt(f, "unseen_levels", list, path)


def _drift(c: _Checker, d: Mapping[str, Any], where: str) -> None:
    c.opt(d, "reference", str, where)
    c.opt(d, "current", str, where)
    c.opt(d, "drift_share", _NUMBER, where)
    c.opt(d, "max_drift_share", _NUMBER, where)
    for path, feature in c.mappings(d, "features", where, required=True):
        _feature(c, feature, path)
    prediction = c.opt(d, "prediction", dict, where)
    if prediction is not None:
        _feature(c, prediction, _join(where, "prediction"))
    for i, reason in enumerate(c.items(d, "reasons", where)):
        if not isinstance(reason, str):
            raise c.fail(f"{_join(where, 'reasons')}[{i}]", f"must be text, found {_shown(reason)}")


def _pipeline(c: _Checker, d: Mapping[str, Any], where: str) -> None:
    c.opt(d, "failed_stage", str, where)
    c.opt(d, "data_fingerprint", str, where)
    for key, fields in (
        ("git", ("commit", "ref", "branch", "repository", "run_url")),
        ("model", ("name", "uri", "run_id", "digest")),
        ("image", ("reference", "digest", "id")),
    ):
        block = c.opt(d, key, dict, where)
        for name in fields if block is not None else ():
            c.opt(block, name, str, _join(where, key))
    model = d.get("model")
    if isinstance(model, dict) and model.get("version") is not None:
        version = model["version"]
        if isinstance(version, bool) or not isinstance(version, (str, int)):
            raise c.fail(_join(where, "model.version"), f"must be text or a number, found {_shown(version)}")
    image = d.get("image")
    if isinstance(image, dict):
        for i, tag in enumerate(c.items(image, "tags", _join(where, "image"))):
            if not isinstance(tag, str):
                raise c.fail(f"{_join(where, 'image.tags')}[{i}]", f"must be text, found {_shown(tag)}")
    for path, stage in c.mappings(d, "stages", where, required=True):
        c.req(stage, "name", str, path)
        c.choice(stage, "status", STAGE_STATUSES, path)
        c.opt(stage, "message", str, path)
        c.opt(stage, "duration_s", _NUMBER, path)
        c.opt(stage, "verdict_file", str, path)
        embedded = c.opt(stage, "verdict", dict, path)
        if embedded is not None and embedded.get("schema") in SUPPORTED and embedded["schema"] != PIPELINE:
            validate_verdict(embedded, source=c.source, where=f"{path}.verdict")


def stage_verdicts(pipeline: Verdict, *, base: str | os.PathLike[str] = ".") -> list[tuple[str, Verdict]]:
    """The verdicts of a pipeline's stages that a report has a section for, in stage order.

    A stage's embedded verdict is used when present; else its ``verdict_file`` when that file
    exists (relative paths from ``base``) and lies inside ``base``, the workspace: a verdict is
    data, and a path in it must not make the report read (and show) a file from elsewhere.
    A stage verdict of a schema the report does not
    render (a model push, an image smoke) is left out.
    """
    out: list[tuple[str, Verdict]] = []
    for stage in pipeline.data.get("stages") or []:
        embedded = stage.get("verdict")
        name = str(stage["name"])
        if isinstance(embedded, dict):
            if embedded.get("schema") in SUPPORTED and embedded["schema"] != PIPELINE:
                out.append((name, Verdict(KINDS[embedded["schema"]], pipeline.source, embedded)))
            continue
        file = stage.get("verdict_file")
        path = _inside(base, file) if file else None
        if path is not None and path.is_file():
            from mlci_lib.files import read_json

            data = read_json(path, what="verdict file")
            if isinstance(data, dict) and data.get("schema") in SUPPORTED and data["schema"] != PIPELINE:
                out.append((name, validate_verdict(data, source=str(path))))
    return out


def check_predictions(predictions: str | os.PathLike[str], verdicts: Sequence[Verdict]) -> None:
    """Refuse a predictions file that no gate verdict of the report was computed on.

    Plots drawn from another model's predictions (a stale file, the wrong path) would sit beside
    a verdict they do not belong to; the gate records its candidate file's fingerprint, and the
    plots are drawn only from that file.
    """
    from mlci_lib.fingerprint import fingerprint_path

    file = Path(predictions)
    if not file.is_file():
        return  # reading it reports the missing file, naming the option
    recorded = {
        str(candidate["fingerprint"])
        for v in verdicts
        if v.kind == "gate"
        and isinstance(candidate := v.data.get("candidate"), Mapping)
        and candidate.get("fingerprint")
    }
    if not recorded:
        raise InputError(
            f"predictions file {file} (option --predictions): no gate verdict in the report records "
            "which predictions it was computed on, so the plots could show another model",
            hint="pass the gate verdict written for these predictions, or leave out --predictions",
        )
    actual = fingerprint_path(file)
    if actual not in recorded:
        expected = ", ".join(sorted(f[:19] + "..." for f in recorded))
        raise InputError(
            f"predictions file {file} (option --predictions, {actual[:19]}...) is not the file the gate "
            f"verdict was computed on ({expected})",
            hint="pass the candidate predictions the gate read, or gate these predictions first",
        )


def _inside(base: str | os.PathLike[str], file: str) -> Path | None:
    """``file`` (relative to ``base``) when it resolves, links followed, to a file inside ``base``."""
    root = Path(base).resolve()
    try:
        real = Path(root, file).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # missing, a link loop, a NUL byte
        return None
    return real if real.is_relative_to(root) else None
