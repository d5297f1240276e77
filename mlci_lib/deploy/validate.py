"""Offline checks of rendered manifests: Kubernetes' own schemas, and kustomize.

No cluster is needed: every built-in kind is validated, strictly (no unknown field), against the
OpenAPI schemas of the configured Kubernetes version bundled with ``kubernetes-validate``; and
when ``kubectl`` is on the PATH, ``kubectl kustomize`` builds the folder, which proves the
kustomization and its resource list hold together. Custom resources with a vendored CRD schema
(InferenceService, ServiceMonitor, PrometheusRule, MetricTemplate, Rollout, AnalysisTemplate: see
:mod:`mlci_lib.deploy.crds`)
are validated against it as strictly; the built-in parts of Argo's Rollout and AnalysisTemplate
(pod template, Job) are also validated as the built-in objects they are.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path
from typing import Any

from mlci_lib.errors import ConfigError, InputError

#: Kinds defined by custom resource definitions, which kubernetes-validate has no schema for
#: (those in crds.SCHEMA_FILES are validated against their CRD's schema instead).
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
    ("argoproj.io/v1alpha1", "Rollout"),
    ("argoproj.io/v1alpha1", "AnalysisTemplate"),
}


@dataclasses.dataclass(frozen=True)
class ValidationReport:
    kubernetes_version: str
    validated: tuple[str, ...]
    custom: tuple[str, ...]
    kustomize: str  # "built", or why it was not run


def validate_manifest(body: dict[str, Any], version: str, *, where: str) -> bool:
    """Validate one manifest strictly; False when it is a custom kind with no schema to validate against."""
    import jsonschema

    from mlci_lib.deploy import crds

    if (body.get("apiVersion"), body.get("kind")) in CUSTOM_KINDS:
        from mlci_lib.deploy.rollouts import embedded_objects

        # A custom resource's built-in parts (a Rollout's pod template, an analysis Job) are
        # validated as the built-in objects they are, against the Kubernetes version's own
        # schemas (an operator's CRD carries the pod spec of the release it was built with).
        for part in embedded_objects(body):
            validate_manifest(part, version, where=f"{where} ({part['kind']} inside {body.get('kind')})")
    if crds.has_schema(body):
        crds.validate_custom(body, where=where)
        return True
    if (body.get("apiVersion"), body.get("kind")) in CUSTOM_KINDS:
        return False

    try:
        import kubernetes_validate.utils as kv
    except ImportError:
        raise ConfigError(
            "validating manifests needs kubernetes-validate, which is not installed",
            hint="pip install 'mlci[deploy]' (or pip install kubernetes-validate)",
        ) from None
    try:
        kv.validate(body, version, strict=True)
    except jsonschema.ValidationError as exc:  # kubernetes-validate's own error subclasses it
        path = ".".join(str(part) for part in exc.absolute_path)
        message = " ".join(str(exc.message).split())[:300]
        raise InputError(
            f"{where}: {body.get('kind')} does not validate against Kubernetes {version}"
            f"{' at ' + path if path else ''}: {message}"
        ) from None
    except kv.VersionNotSupportedError:
        raise ConfigError(
            f"deploy.kubernetes-version {version} is newer than the bundled schemas",
            hint=f"use {kv.major_minor(kv.latest_version())} or older, or upgrade kubernetes-validate",
        ) from None
    except (kv.SchemaNotFoundError, kv.InvalidSchemaError) as exc:
        message = getattr(exc, "message", str(exc))
        raise InputError(f"{where}: {body.get('kind')} cannot be validated: {message}") from None
    return True


def validate_folder(folder: Path, bodies: dict[str, dict[str, Any]], version: str) -> ValidationReport:
    validated: list[str] = []
    custom: list[str] = []
    for name, body in sorted(bodies.items()):
        (validated if validate_manifest(body, version, where=str(folder / name)) else custom).append(name)
    return ValidationReport(version, tuple(validated), tuple(custom), _kustomize(folder))


def _kustomize(folder: Path) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "not run: kubectl is not on the PATH"
    try:
        done = subprocess.run(
            [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"not run: {exc}"
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split())[:300]
        raise InputError(f"kubectl kustomize {folder} failed: {detail}")
    return "built"
