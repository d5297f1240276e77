"""The pipeline ran its gate with no champion to compare with: say so wherever the verdict is shown.

On a repository's first model, or when the workflow does not reach the team's registry (no
``MLFLOW_TRACKING_URI``: the embedded store is empty on every runner), the baseline stage finds
no champion and the gate checks its absolute rules only. That is allowed, but it must not pass
quietly: the job summary, an annotation and the report all carry :func:`no_champion_message`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

BASELINE_SCHEMA = "mlci.model-baseline"
GATE_SCHEMA = "mlci.gate-verdict"
TITLE = "No champion: the gate checked absolute rules only"


def missing_champion(pipeline: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """When the pipeline's gate ran with no champion: the baseline stage's result (``{}`` when
    there is no baseline stage), else None."""
    stages = [s for s in pipeline.get("stages") or [] if isinstance(s, Mapping)]
    gate = next((s for s in stages if s.get("name") == "gate"), None)
    verdict = gate.get("verdict") if gate is not None else None
    if (
        gate is None
        or gate.get("status") not in ("passed", "failed")
        or not isinstance(verdict, Mapping)
        or verdict.get("schema") != GATE_SCHEMA
        or verdict.get("baseline") is not None
    ):
        return None
    for stage in stages:
        result = stage.get("verdict")
        named = stage.get("name") == "baseline"
        if named and isinstance(result, Mapping) and result.get("schema") == BASELINE_SCHEMA:
            return result
    return {}


def _shown_uri(uri: Any) -> str:
    """The tracking URI without any user name or password in it."""
    if not isinstance(uri, str) or not uri:
        return "(none)"
    parts = urllib.parse.urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return uri


def no_champion_message(baseline: Mapping[str, Any]) -> str:
    """One line: what happened, why it matters, and how to point the workflow at the registry."""
    consequence = (
        "so the gate checked its absolute rules only and did not compare the candidate with the "
        "model in production."
    )
    if not baseline.get("model_ref"):
        return (
            f"mlci.yaml has no baseline stage, {consequence} Add stages.baseline (the evaluation "
            "data the champion predicts on) to gate against the champion in the registry"
        )
    uri = _shown_uri(baseline.get("tracking_uri"))
    embedded = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    where = "in the embedded store this job started with" if embedded else f"in the registry at {uri}"
    return (
        f"no model behind {baseline['model_ref']} {where}, {consequence} If your team's registry "
        "holds the champion, point the workflow at it: set the repository variable "
        "MLFLOW_TRACKING_URI (and MLFLOW_TRACKING_USERNAME, with the password as a secret), or "
        "registry.tracking-uri in mlci.yaml"
    )


def no_champion_markdown(baseline: Mapping[str, Any]) -> str:
    """The warning as a GitHub alert block, for the job summary and the report."""
    from mlci_lib.report.escape import text

    return f"> [!WARNING]\n> **{TITLE}**: {text(no_champion_message(baseline), 1200)}"
