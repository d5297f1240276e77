"""Reading the verdict a push or a promotion depends on, and refusing any it cannot trust.

Only a gate verdict (``mlci.gate-verdict``) or a pipeline verdict (``mlci.pipeline-verdict``)
lets a model through; a data-check result, a push result or any other file does not. The verdict
must agree with itself (its ``passed`` is decided again from its own rules or stages, see
:mod:`mlci_lib.report.verdicts`), and a pipeline verdict must hold a gate stage that passed. What it
was computed on (the candidate's model digest, the data fingerprint, the predictions file's
fingerprint) is read here so that push and promote can compare it with the model they handle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError
from mlci_lib.files import ERROR_SCHEMA, read_json

#: Longest verdict summary stored as a tag (MLflow accepts more; a tag is for reading at a glance).
SUMMARY_LIMIT = 480
GATE_SCHEMA = "mlci.gate-verdict"
PIPELINE_SCHEMA = "mlci.pipeline-verdict"
ACCEPTED_SCHEMAS = (GATE_SCHEMA, PIPELINE_SCHEMA)


@dataclasses.dataclass(frozen=True)
class VerdictInfo:
    #: The verdict passed, and (a pipeline verdict) its gate stage passed too.
    passed: bool
    schema: str
    summary: str
    metrics: dict[str, float]
    data: dict[str, Any]
    source: str  # the file, or "(in memory)"
    #: The candidate's model digest the gate recorded (None: the gate was not given the model).
    model_digest: str | None = None
    #: The fingerprint of the data the verdict was computed on, when it records one.
    data_fingerprint: str | None = None
    #: The fingerprint of the candidate's predictions file the gate read.
    predictions_fingerprint: str | None = None

    @property
    def digest(self) -> str:
        """The verdict's own content digest (what the registry tag ``mlci.verdict.digest`` holds)."""
        return verdict_digest(self.data)


def verdict_digest(data: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of a verdict's canonical JSON: the same content gives the same digest."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_verdict(
    verdict: str | os.PathLike[str] | Mapping[str, Any], *, option: str = "--verdict"
) -> VerdictInfo:
    """Load and check a gate or pipeline verdict (a file or a mapping); InputError otherwise."""
    from mlci_lib.report.verdicts import validate_verdict

    if isinstance(verdict, Mapping):
        data, source = dict(verdict), "(in memory)"
    else:
        source = str(verdict)
        data = read_json(Path(verdict), what="verdict file", option=option)
        if not isinstance(data, dict):
            raise InputError(
                f"verdict file {source} must hold a JSON object, found {type(data).__name__}",
                hint="pass the verdict JSON written by mlci gate or mlci run",
            )
    schema = data.get("schema")
    if schema == ERROR_SCHEMA:
        raise InputError(
            f"verdict file {source} holds no verdict: {data.get('command') or 'the command that writes it'} "
            f"did not finish ({data.get('error') or data.get('status')})",
            hint="fix that error and rerun the gate before pushing",
        )
    if schema not in ACCEPTED_SCHEMAS:
        what = (
            f"an {schema} file"
            if isinstance(schema, str) and schema.startswith("mlci.")
            else "no mlci verdict"
        )
        shown = f" (its schema is {schema!r})" if schema is not None else " (it has no top-level 'schema')"
        raise InputError(
            f"verdict file {source} is {what}{shown}, not a gate or pipeline verdict",
            hint="pass the verdict JSON written by mlci gate (mlci.gate-verdict) or mlci run "
            "(mlci.pipeline-verdict)",
        )
    validate_verdict(data, source=source)  # shape, and passed as its own rules/stages decide
    gate, why_not = _gate_part(data)
    passed = data["passed"] is True and why_not is None
    candidate = gate.get("candidate") if gate else None
    candidate = candidate if isinstance(candidate, Mapping) else {}
    fingerprint = (gate or {}).get("data_fingerprint") or data.get("data_fingerprint")
    return VerdictInfo(
        passed=passed,
        schema=str(schema),
        summary=_summary(data, str(schema), passed, why_not),
        metrics=_metrics(gate or {}),
        data=data,
        source=source,
        model_digest=_text(candidate.get("model_digest")),
        data_fingerprint=_text(fingerprint),
        predictions_fingerprint=_text(candidate.get("fingerprint")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _gate_part(data: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, str | None]:
    """The gate verdict inside ``data`` and, when it cannot let a model through, why not."""
    if data.get("schema") == GATE_SCHEMA:
        return data, None
    stage = next((s for s in data.get("stages") or () if s.get("name") == "gate"), None)
    if stage is None:
        return None, "it has no gate stage"
    embedded = stage.get("verdict")
    if not isinstance(embedded, Mapping) or embedded.get("schema") != GATE_SCHEMA:
        return None, "its gate stage holds no gate verdict"
    if stage.get("status") != "passed" or embedded.get("passed") is not True:
        return embedded, f"its gate stage {stage.get('status')}"
    return embedded, None


def _summary(data: Mapping[str, Any], schema: str, passed: bool, why_not: str | None) -> str:
    head = f"{schema}: {'passed' if passed else 'failed'}"
    parts: list[str] = []
    if isinstance(data.get("rules"), list):
        for rule in data["rules"]:
            if isinstance(rule, Mapping) and rule.get("rule"):
                parts.append(f"{rule['rule']}={rule.get('outcome', '?')}")
    if isinstance(data.get("stages"), list):
        if data.get("failed_stage"):
            head += f" at {data['failed_stage']}"
        elif why_not and data.get("passed") is True:
            head += f" ({why_not})"
        for stage in data["stages"]:
            if isinstance(stage, Mapping) and stage.get("name"):
                parts.append(f"{stage['name']}={stage.get('status', '?')}")
    text = head + ("; " + ", ".join(parts) if parts else "")
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 3] + "..."


def _metrics(gate: Mapping[str, Any]) -> dict[str, float]:
    """Candidate metrics of a gate verdict (also the one embedded in a pipeline verdict)."""
    candidate = gate.get("candidate")
    metrics = candidate.get("metrics") if isinstance(candidate, Mapping) else None
    out: dict[str, float] = {}
    if isinstance(metrics, Mapping):
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[str(key)] = float(value)
    return out
