"""The pipeline verdict (``mlci.pipeline-verdict``): one file that links commit, data, model, image
and, with a ``deploy`` stage, the deployment of that image.

It is rewritten atomically after every stage, so a crash leaves the last good state on disk. While
stages are still running, ``status`` is ``running`` and ``passed`` is false: a verdict only says
``passed: true`` once every stage it ran has passed (fail closed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

from mlci_lib.results import Result

StageStatus = Literal["passed", "failed", "skipped", "error"]
PipelineStatus = Literal["running", "passed", "failed"]
PASSED: StageStatus = "passed"
FAILED: StageStatus = "failed"
SKIPPED: StageStatus = "skipped"
ERROR: StageStatus = "error"
STATUSES: tuple[StageStatus, ...] = (PASSED, FAILED, SKIPPED, ERROR)


def stage_status(value: object) -> StageStatus:
    for status in STATUSES:
        if value == status:
            return status
    raise ValueError(f"stage status must be one of {STATUSES}, not {value!r}")


def _pipeline_status(value: object) -> PipelineStatus:
    for status in ("running", "passed", "failed"):
        if value == status:
            return status
    raise ValueError(f"pipeline status must be running, passed or failed, not {value!r}")


#: The stages whose results make a release, by the names an image release result
#: (``mlci.image-release``) gives the same results: the image's build, its smoke test, its push.
RELEASE_STAGES = {"image-build": "build", "image-smoke": "smoke", "image-push": "push"}


@dataclasses.dataclass(frozen=True)
class StageRecord:
    name: str
    status: StageStatus
    message: str
    duration_s: float
    verdict_file: str | None = None
    verdict: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"stage status must be one of {STATUSES}, not {self.status!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageRecord:
        return cls(
            name=str(data["name"]),
            status=stage_status(data["status"]),
            message=str(data.get("message", "")),
            duration_s=float(data.get("duration_s") or 0.0),
            verdict_file=data.get("verdict_file"),
            verdict=data.get("verdict"),
        )


@dataclasses.dataclass(frozen=True)
class PipelineVerdict(Result):
    """Every stage's outcome, with the provenance that ties them together."""

    SCHEMA: ClassVar[str] = "mlci.pipeline-verdict"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    status: PipelineStatus
    failed_stage: str | None
    git: Mapping[str, Any]
    data_fingerprint: str | None
    stages: tuple[StageRecord, ...]
    model: Mapping[str, Any] | None = None
    image: Mapping[str, Any] | None = None
    config: str | None = None
    #: Where the image went (the deploy stage): target, namespace, name, mode, revision, commit, time.
    deployment: Mapping[str, Any] | None = None

    def stage(self, name: str) -> StageRecord | None:
        for record in self.stages:
            if record.name == name:
                return record
        return None

    def text(self) -> str:
        icon = {PASSED: "ok  ", FAILED: "FAIL", SKIPPED: "skip", ERROR: "ERR "}
        head = (
            "mlci run PASSED"
            if self.passed
            else f"mlci run FAILED at {self.failed_stage}"
            if self.failed_stage
            else f"mlci run {self.status.upper()}"
        )
        lines = [head]
        for r in self.stages:
            lines.append(f"  {icon[r.status]}  {r.name:<12} {r.duration_s:6.1f}s  {r.message}")
        if self.model and self.model.get("version"):
            lines.append(f"  model: {self.model.get('name')} version {self.model.get('version')}")
        if self.image:
            lines.append(f"  image: {self.image.get('reference')}")
        if self.deployment:
            lines.append(f"  deployment: {deployment_line(self.deployment)}")
        return "\n".join(lines)


def verdict_from_dict(data: Mapping[str, Any]) -> PipelineVerdict:
    """Rebuild a verdict read from a file (for resuming with ``--stage``)."""
    return PipelineVerdict(
        passed=bool(data.get("passed")),
        status=_pipeline_status(data.get("status") or ("passed" if data.get("passed") else "failed")),
        failed_stage=data.get("failed_stage"),
        git=dict(data.get("git") or {}),
        data_fingerprint=data.get("data_fingerprint"),
        stages=tuple(StageRecord.from_dict(s) for s in data.get("stages") or ()),
        model=data.get("model"),
        image=data.get("image"),
        config=data.get("config"),
        deployment=data.get("deployment"),
    )


def release_of(stages: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The build, smoke and push results a pipeline run recorded, keyed as an image release result
    keys them (``build``, ``smoke``, ``push``); a stage that did not pass, or did not run, is absent.

    ``stages`` are the verdict's stage records (as dicts). One function reads a release out of a
    pipeline run, for ``mlci deploy render --release`` and the pipeline's own deploy stage alike.
    """
    found: dict[str, Mapping[str, Any]] = {}
    for stage in stages:
        key = RELEASE_STAGES.get(str(stage.get("name")))
        verdict = stage.get("verdict")
        if key is not None and stage.get("status") == PASSED and isinstance(verdict, Mapping):
            found[key] = verdict
    return found


def release_blocker(stages: Iterable[Mapping[str, Any]]) -> str | None:
    """The first stage up to image-push that failed or errored, or None: a release is deployable
    only when nothing that led to it failed (a later ``--stage gate`` run that failed counts).
    A stage after the push (deploy itself, promote) does not make the pushed image another one.
    """
    from mlci_lib.pipeline.config import STAGES

    leading = STAGES[: STAGES.index("image-push") + 1]
    for stage in stages:
        if stage.get("name") in leading and stage.get("status") in (FAILED, ERROR):
            return str(stage.get("name"))
    return None


def deployment_line(deployment: Mapping[str, Any]) -> str:
    """``kubernetes ml/churn (render) revision abc123 at 2026-...`` for the text summary."""
    where = f"{deployment.get('target')} {deployment.get('namespace')}/{deployment.get('name')}"
    revision = deployment.get("revision") or deployment.get("commit")
    parts = [where, f"({deployment.get('mode')})"]
    if revision:
        parts.append(f"revision {str(revision)[:12]}")
    if deployment.get("time"):
        parts.append(f"at {deployment.get('time')}")
    if deployment.get("url"):
        verified = "verified" if deployment.get("verified") else "not verified"
        parts.append(f"{verified} at {deployment.get('url')}")
    return " ".join(parts)
