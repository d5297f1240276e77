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
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError

PIPELINE = "mlci.pipeline-verdict"
GATE = "mlci.gate-verdict"
DATA_CHECK = "mlci.data-check"
DRIFT = "mlci.drift-verdict"
MONITOR = "mlci.monitor-verdict"
#: Schema -> the newest schema_version this release reads.
SUPPORTED: dict[str, int] = {PIPELINE: 1, GATE: 1, DATA_CHECK: 1, DRIFT: 1, MONITOR: 2}
#: Schema -> short kind used in section names.
KINDS = {PIPELINE: "pipeline", GATE: "gate", DATA_CHECK: "data-check", DRIFT: "drift", MONITOR: "monitor"}
STAGE_STATUSES = ("passed", "failed", "skipped", "error")
RULE_OUTCOMES = ("pass", "fail", "inconclusive", "undefined", "skipped")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One validated verdict: its kind, where it came from, and its JSON content."""

    kind: str  # pipeline | gate | data-check | drift
    source: str
    data: Mapping[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.data["passed"])


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_TOOLS = {
    PIPELINE: "'mlci run'",
    GATE: "'mlci gate'",
    DATA_CHECK: "'mlci data check'",
    DRIFT: "'mlci drift'",
    MONITOR: "'mlci monitor check'",
}


def validate_verdict(data: Any, *, source: str, where: str = "") -> Verdict:
    """Check ``data`` against its schema and return it as a :class:`Verdict`.

    The shape is the JSON Schema of its kind (mlci_lib/schemas/, derived from the result class),
    the same one every writer checks; on top of it, what a schema cannot say: a gate with no rules
    decides nothing, and ``passed`` must be what the verdict's own rules or stages decide.
    """
    from mlci_lib import result_schemas

    prefix = f"{where} " if where else ""
    if not isinstance(data, dict):
        raise InputError(
            f"verdict file {source}: {prefix or 'the top level '}must be a JSON object, found {_shown(data)}",
            hint="pass a verdict file an mlci command wrote",
        )
    schema = data.get("schema")
    if schema not in SUPPORTED:
        known = ", ".join(sorted(SUPPORTED))
        raise InputError(
            f"verdict file {source}: {prefix}schema {_shown(schema)} is not a verdict mlci can report",
            hint=f"pass a file with schema {known}",
        )
    tool = _TOOLS[schema]
    version = data.get("schema_version")
    if (
        isinstance(version, int)
        and not isinstance(version, bool)
        and (version < 1 or version > SUPPORTED[schema])
    ):
        raise InputError(
            f"verdict file {source}: {prefix}schema_version {version} of {schema} is not supported "
            f"(this mlci reads up to {SUPPORTED[schema]})",
            hint="use the mlci release that wrote it, or upgrade mlci",
        )
    found = result_schemas.problems(data)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise InputError(
            f"verdict file {source}: {where + '.' if where else ''}{found[0][:300]}{more}",
            hint=f"the file is malformed or was edited; write it again with {tool}",
        )
    if schema == GATE and not data["rules"]:
        raise InputError(
            f"verdict file {source}: {prefix}rules is empty: a gate without rules decides nothing",
            hint=f"write it again with {tool}, with at least one rule",
        )
    if schema == PIPELINE:
        for i, stage in enumerate(data["stages"]):
            embedded = stage.get("verdict")
            if (
                isinstance(embedded, dict)
                and embedded.get("schema") in SUPPORTED
                and embedded["schema"] != PIPELINE
            ):
                validate_verdict(embedded, source=source, where=f"{prefix}stages[{i}].verdict".strip())
    decided = {PIPELINE: _pipeline_decision, GATE: _gate_decision, MONITOR: _monitor_decision}.get(schema)
    if decided is not None:
        should, why = decided(data)
        if data["passed"] is not should:
            raise InputError(
                f"verdict file {source}: {prefix}says passed: {str(data['passed']).lower()}, but {why}",
                hint=f"the verdict was edited or is damaged; write it again with {tool}",
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


def _monitor_decision(d: Mapping[str, Any]) -> tuple[bool, str]:
    """What a monitor verdict's own rules decide: a gate's decision over every version's rules."""
    versions = d["versions"]
    if not versions:
        return False, "it holds no logged row (an empty window never passes)"
    rules = [r for v in versions for r in v["rules"]]
    should, why = _gate_decision({"on_inconclusive": d["on_inconclusive"], "rules": rules})
    if should and d.get("status") not in ("pass", "warn"):
        return False, f"its status is {d.get('status')!r}"
    return should, why


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
