"""Reading the verdict a push depends on: passed or not, a one-line summary, and its metrics."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError
from mlci_lib.files import read_json

#: Longest verdict summary stored as a tag (MLflow accepts more; a tag is for reading at a glance).
SUMMARY_LIMIT = 480


@dataclasses.dataclass(frozen=True)
class VerdictInfo:
    passed: bool
    schema: str
    summary: str
    metrics: dict[str, float]
    data: dict[str, Any]
    source: str  # the file, or "(in memory)"

    @property
    def data_fingerprint(self) -> str | None:
        value = self.data.get("data_fingerprint")
        return value if isinstance(value, str) and value else None


def read_verdict(verdict: str | os.PathLike[str] | Mapping[str, Any]) -> VerdictInfo:
    """Load a verdict (a file or a mapping) whose top level has ``schema`` and ``passed``."""
    if isinstance(verdict, Mapping):
        data, source = dict(verdict), "(in memory)"
    else:
        source = str(verdict)
        data = read_json(Path(verdict), what="verdict file", option="--verdict")
        if not isinstance(data, dict):
            raise InputError(
                f"verdict file {source} must hold a JSON object, found {type(data).__name__}",
                hint="pass the verdict JSON written by mlci gate or mlci run",
            )
    schema = data.get("schema")
    if not isinstance(schema, str) or not schema.startswith("mlci."):
        raise InputError(
            f"verdict file {source} has no mlci schema (top-level 'schema' is {schema!r})",
            hint="pass the verdict JSON written by mlci gate (mlci.gate-verdict) or mlci run",
        )
    if "passed" not in data:
        raise InputError(f"verdict file {source} has no top-level 'passed'", hint="regenerate the verdict")
    passed = data["passed"] is True  # exactly true: "true", 1 or null do not count
    return VerdictInfo(
        passed=passed,
        schema=schema,
        summary=_summary(data, schema, passed),
        metrics=_metrics(data),
        data=data,
        source=source,
    )


def _summary(data: Mapping[str, Any], schema: str, passed: bool) -> str:
    head = f"{schema}: {'passed' if passed else 'failed'}"
    parts: list[str] = []
    if isinstance(data.get("rules"), list):
        for rule in data["rules"]:
            if isinstance(rule, Mapping) and rule.get("rule"):
                parts.append(f"{rule['rule']}={rule.get('outcome', '?')}")
    if isinstance(data.get("stages"), list):
        if data.get("failed_stage"):
            head += f" at {data['failed_stage']}"
        for stage in data["stages"]:
            if isinstance(stage, Mapping) and stage.get("name"):
                parts.append(f"{stage['name']}={stage.get('status', '?')}")
    text = head + ("; " + ", ".join(parts) if parts else "")
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 3] + "..."


def _metrics(data: Mapping[str, Any]) -> dict[str, float]:
    """Candidate metrics of a gate verdict, also when embedded in a pipeline verdict."""
    gate = data
    if isinstance(data.get("stages"), list):
        gate = next(
            (
                s["verdict"]
                for s in data["stages"]
                if isinstance(s, Mapping)
                and s.get("name") == "gate"
                and isinstance(s.get("verdict"), Mapping)
            ),
            {},
        )
    candidate = gate.get("candidate")
    metrics = candidate.get("metrics") if isinstance(candidate, Mapping) else None
    out: dict[str, float] = {}
    if isinstance(metrics, Mapping):
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[str(key)] = float(value)
    return out
