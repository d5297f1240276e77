"""``mlci deploy render``: the manifests of a released model, validated, written in one step.

Layout, fit for GitOps (Argo CD, Flux) and for users' own kustomize overlays::

    OUTPUT/base/kustomization.yaml     what mlci writes, and all it ever replaces
    OUTPUT/base/deployment.yaml ...    one file per manifest
    OUTPUT/base/.mlci-render.json      the render result (what was deployed, from which verdict)
    OUTPUT/overlays/...                yours: mlci never writes outside base/

Everything is rendered into a temporary folder beside the output and validated there; only then
does it replace ``OUTPUT/base`` (a rename), so a failed render leaves the previous manifests as
they were, and nothing is half-written.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlci_lib.deploy.config import DeployConfig
from mlci_lib.deploy.manifests import (
    Release,
    check_digest,
    check_image_reference,
    check_user,
    kustomization,
    manifests,
)
from mlci_lib.deploy.validate import validate_folder
from mlci_lib.errors import InputError
from mlci_lib.results import Result

RESULT_FILE = ".mlci-render.json"
LABEL_PREFIX = "io.mlci."


@dataclasses.dataclass(frozen=True)
class DeployRenderResult(Result):
    SCHEMA = "mlci.deploy-render"
    SCHEMA_VERSION = 1

    target: str
    name: str
    namespace: str
    image: str
    image_digest: str
    model_name: str
    model_version: str | None
    model_digest: str | None
    verdict_digest: str | None
    folder: str
    files: tuple[str, ...]
    kubernetes_version: str
    validated: tuple[str, ...]
    custom_kinds: tuple[str, ...]
    kustomize: str


def release_from_result(data: Mapping[str, Any], *, source: str) -> Release:
    """The release recorded by ``mlci image release`` (or ``actions/image-build``), or by a
    pipeline run that pushed its image (``mlci.pipeline-verdict``: its image stages' results)."""
    from mlci_lib.pipeline.verdict import PipelineVerdict, release_blocker, release_of

    schema = data.get("schema")
    if schema == PipelineVerdict.SCHEMA:
        stages = data.get("stages")
        records = [s for s in stages if isinstance(s, Mapping)] if isinstance(stages, list) else []
        blocker = release_blocker(records)
        if blocker is not None:
            raise InputError(
                f"{source}: the pipeline run's {blocker} stage did not pass",
                hint="deploy only what a run released whose stages up to image-push passed",
            )
        parts = release_of(records)
        for key, stage in (("build", "image-build"), ("smoke", "image-smoke"), ("push", "image-push")):
            if key not in parts:
                raise InputError(
                    f"{source}: the pipeline run has no passed {stage} stage: no released image to deploy",
                    hint="deploy after a run that built, smoke-tested and pushed its image",
                )
        return release_from_parts(parts["build"], parts["smoke"], parts["push"], source=source)
    if schema != "mlci.image-release":
        raise InputError(
            f"{source} is not an image release result (schema mlci.image-release) or a pipeline verdict",
            hint="pass the --output file of mlci image release, or the verdict of mlci run",
        )
    if not data.get("passed"):
        raise InputError(f"{source}: the release did not pass (failed at {data.get('failed_stage')})")
    return release_from_parts(
        data.get("build") or {}, data.get("smoke") or {}, data.get("push") or {}, source=source
    )


def release_from_parts(
    build: Mapping[str, Any], smoke: Mapping[str, Any], push: Mapping[str, Any], *, source: str
) -> Release:
    """The release of an image from its build, smoke and push results (an image release's parts)."""
    if not push.get("digest_reference"):
        raise InputError(f"{source}: the image was not pushed", hint="release with --push")
    if not smoke.get("passed"):
        raise InputError(
            f"{source}: the image has no passing smoke test", hint="release with the smoke test on"
        )
    labels = build.get("labels") or {}
    return make_release(
        image=str(push["digest_reference"]),
        model_name=str(labels.get(f"{LABEL_PREFIX}model.name") or ""),
        model_version=str(labels.get(f"{LABEL_PREFIX}model.version") or "") or None,
        model_digest=labels.get(f"{LABEL_PREFIX}model.digest") or build.get("model_digest"),
        verdict_digest=labels.get(f"{LABEL_PREFIX}verdict.digest") or None,
        user=str(smoke.get("user") or ""),
        option=source,
    )


def make_release(
    *,
    image: str,
    model_name: str,
    model_version: str | None,
    model_digest: str | None,
    verdict_digest: str | None,
    user: str,
    option: str = "--image",
) -> Release:
    reference = check_image_reference(image, option=option)
    if not model_name:
        raise InputError("the model name is unknown", hint="pass --model-name")
    uid, gid = check_user(user)
    return Release(
        image=reference,
        model_name=model_name,
        model_version=model_version,
        model_digest=check_digest(model_digest, "model digest"),
        verdict_digest=check_digest(verdict_digest, "verdict digest"),
        uid=uid,
        gid=gid,
    )


def _dump(body: Mapping[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(dict(body), sort_keys=False, default_flow_style=False, width=100))


def render_deployment(
    release: Release, config: DeployConfig, output: str | os.PathLike[str]
) -> DeployRenderResult:
    """Render, validate and write the manifests of ``release`` under ``output``/base."""
    from mlci_lib.files import write_json_atomic

    root = Path(output)
    if root.exists() and not root.is_dir():
        raise InputError(
            f"deploy output {root} is a file, not a folder", hint="choose a folder for deploy.output"
        )
    base = root / "base"
    if base.is_symlink():
        raise InputError(
            f"deploy output {base} is a symbolic link", hint="point deploy.output at a real folder"
        )
    if base.exists() and not (base / RESULT_FILE).is_file():
        raise InputError(
            f"{base} exists and was not written by mlci deploy render",
            hint="choose another deploy.output, or move that folder away",
        )
    root.mkdir(parents=True, exist_ok=True)
    bodies = manifests(config, release)
    scratch = Path(tempfile.mkdtemp(prefix=".base.", dir=root))
    try:
        for name, body in bodies.items():
            (scratch / name).write_text(_dump(body), encoding="utf-8")
        (scratch / "kustomization.yaml").write_text(
            _dump(kustomization(config, list(bodies))), encoding="utf-8"
        )
        report = validate_folder(scratch, bodies, config.kubernetes_version)
        result = DeployRenderResult(
            target=config.target,
            name=config.name,
            namespace=config.namespace,
            image=release.image,
            image_digest=release.image_digest,
            model_name=release.model_name,
            model_version=release.model_version,
            model_digest=release.model_digest,
            verdict_digest=release.verdict_digest,
            folder=str(base),
            files=(*sorted(bodies), "kustomization.yaml"),
            kubernetes_version=report.kubernetes_version,
            validated=report.validated,
            custom_kinds=report.custom,
            kustomize=report.kustomize,
        )
        write_json_atomic(scratch / RESULT_FILE, result.to_dict())
        # Manifests are read by GitOps agents and reviewers: the modes of ordinary files.
        os.chmod(scratch / RESULT_FILE, 0o644)
        os.chmod(scratch, 0o755)
        # Swap the folders: the old manifests stay whole until the new ones are in place.
        previous = None
        if base.exists():
            previous = root / f".base.old.{os.getpid()}"
            os.replace(base, previous)
        os.replace(scratch, base)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return result
