"""Kubernetes and KServe manifests of a released model, as plain dictionaries.

The container is described once (:func:`container_spec`) and used by every manifest and by the
test that runs the very same spec on a Docker engine: the image by digest, never a tag; the
image's numeric non-root user; a read-only root file system with a memory-backed ``/tmp``; all
capabilities dropped; no privilege escalation; seccomp ``RuntimeDefault``; resource requests and
limits; and probes on the serving runtime's own endpoints. Labels and annotations carry the model
name, version and digest, the verdict digest and the image digest, so what runs in a cluster can
be traced to the verdict that let it through.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from mlci_lib.deploy.config import DeployConfig
from mlci_lib.errors import InputError

#: ``registry/repository@sha256:<64 hex>``, optionally with a tag before the digest.
_DIGEST_REFERENCE = re.compile(
    r"^(?P<repository>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@(?P<digest>sha256:[0-9a-f]{64})$"
)
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
_USER = re.compile(r"^(?P<uid>[0-9]+)(:(?P<gid>[0-9]+))?$")

CONTAINER_NAME = "model"
TMP_VOLUME = "tmp"
TMP_SIZE = "64Mi"
#: What the serving runtime answers: 200 as soon as the process serves HTTP (liveness), and 200
#: only once the model has loaded and answered its warm-up request (startup and readiness).
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
MANAGED_BY = "mlci"


@dataclasses.dataclass(frozen=True)
class Release:
    """What is deployed: the image by digest and the model and verdict it carries."""

    image: str
    model_name: str
    model_version: str | None
    model_digest: str | None
    verdict_digest: str | None
    uid: int
    gid: int

    @property
    def image_digest(self) -> str:
        match = _DIGEST_REFERENCE.match(self.image)
        assert match is not None
        return match.group("digest")


def check_image_reference(image: str, *, option: str = "--image") -> str:
    """``image`` if it names its digest; a tag alone can point at another image tomorrow."""
    if not isinstance(image, str) or not _DIGEST_REFERENCE.match(image.strip()):
        raise InputError(
            f"option {option}: {image!r} is not an image reference by digest",
            hint="deploy what was pushed and verified: REGISTRY/REPOSITORY@sha256:<digest> "
            "(the digest_reference of mlci image push)",
        )
    return image.strip()


def check_user(user: str) -> tuple[int, int]:
    match = _USER.match(user or "")
    if match is None or int(match.group("uid")) == 0:
        raise InputError(
            f"the image's user {user or '(none)'!r} is not a numeric non-root uid[:gid]",
            hint="build the image with mlci image build (USER 10001:10001) or set USER uid:gid",
        )
    uid = int(match.group("uid"))
    return uid, int(match.group("gid") or uid)


def check_digest(value: str | None, what: str) -> str | None:
    if value in (None, ""):
        return None
    if not _SHA256.match(str(value)):
        raise InputError(f"{what} {value!r} is not a sha256 digest (sha256:<64 hex digits>)")
    return str(value)


def release_labels(config: DeployConfig, release: Release) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": config.name,
        "app.kubernetes.io/instance": config.name,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        **config.labels,
    }
    if release.model_version and re.fullmatch(
        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", release.model_version
    ):
        out["app.kubernetes.io/version"] = release.model_version
    return out


def selector(config: DeployConfig) -> dict[str, str]:
    return {"app.kubernetes.io/name": config.name, "app.kubernetes.io/instance": config.name}


def release_annotations(config: DeployConfig, release: Release) -> dict[str, str]:
    out = {
        "mlci.io/model-name": release.model_name,
        "mlci.io/model-version": release.model_version or "",
        "mlci.io/model-digest": release.model_digest or "",
        "mlci.io/verdict-digest": release.verdict_digest or "",
        "mlci.io/image-digest": release.image_digest,
        **config.annotations,
    }
    return {key: value for key, value in out.items() if value}


def _probe(path: str, port: int, *, period: int, failures: int, timeout: int = 2) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
        "successThreshold": 1,
    }


def security_context(release: Release) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": release.uid,
        "runAsGroup": release.gid,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_spec(config: DeployConfig, release: Release, *, name: str = CONTAINER_NAME) -> dict[str, Any]:
    """The serving container, exactly as the smoke test ran it."""
    return {
        "name": name,
        "image": release.image,
        # Pulled by digest: the same bytes every time, so the registry is asked only once a node.
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": config.port, "protocol": "TCP"}],
        "env": [
            {"name": "MLCI_SERVE_HOST", "value": "0.0.0.0"},
            {"name": "MLCI_SERVE_PORT", "value": str(config.port)},
        ],
        "resources": {kind: dict(values) for kind, values in config.resources.items()},
        "securityContext": security_context(release),
        # Loading a large model can take a while: the startup probe allows up to 5 minutes, then
        # liveness (the process answers) and readiness (the model answers) take over.
        "startupProbe": _probe(READY_PATH, config.port, period=5, failures=60),
        "livenessProbe": _probe(LIVE_PATH, config.port, period=10, failures=3),
        "readinessProbe": _probe(READY_PATH, config.port, period=5, failures=2),
        "volumeMounts": [{"name": TMP_VOLUME, "mountPath": "/tmp"}],
    }


def _pod_spec(config: DeployConfig, release: Release, container_name: str = CONTAINER_NAME) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": release.uid,
            "runAsGroup": release.gid,
            "fsGroup": release.gid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container_spec(config, release, name=container_name)],
        "volumes": [{"name": TMP_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": TMP_SIZE}}],
        "terminationGracePeriodSeconds": 30,
    }
    if config.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": secret} for secret in config.image_pull_secrets]
    return spec


def _metadata(config: DeployConfig, release: Release, name: str | None = None) -> dict[str, Any]:
    return {
        "name": name or config.name,
        "namespace": config.namespace,
        "labels": release_labels(config, release),
        "annotations": release_annotations(config, release),
    }


def deployment(config: DeployConfig, release: Release) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "revisionHistoryLimit": 5,
        "selector": {"matchLabels": selector(config)},
        # A new version comes up beside the old one: never fewer ready pods than asked for.
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {
                "labels": release_labels(config, release),
                "annotations": release_annotations(config, release),
            },
            "spec": _pod_spec(config, release),
        },
    }
    if config.autoscaling is None:
        spec["replicas"] = config.replicas  # with an autoscaler, it owns the replica count
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(config, release),
        "spec": spec,
    }


def service(config: DeployConfig, release: Release) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(config, release),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(config),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler(config: DeployConfig, release: Release) -> dict[str, Any] | None:
    if config.autoscaling is None:
        return None
    scaling = config.autoscaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(config, release),
        "spec": {
            "scaleTargetRef": (
                {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": config.name}
                if config.rollout
                else {"apiVersion": "apps/v1", "kind": "Deployment", "name": config.name}
            ),
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": scaling.cpu_utilization},
                    },
                }
            ],
        },
    }


def disruption_budget(config: DeployConfig, release: Release) -> dict[str, Any] | None:
    if config.min_available is None:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(config, release),
        "spec": {"minAvailable": config.min_available, "selector": {"matchLabels": selector(config)}},
    }


def network_policy(config: DeployConfig, release: Release) -> dict[str, Any]:
    """Only the serving port is reachable, and the model server opens no connection itself."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(config, release),
        "spec": {
            "podSelector": {"matchLabels": selector(config)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"port": config.port, "protocol": "TCP"}]}],
            "egress": [],
        },
    }


def service_monitor(config: DeployConfig, release: Release) -> dict[str, Any] | None:
    if config.service_monitor_interval is None:
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _metadata(config, release),
        "spec": {
            "selector": {"matchLabels": selector(config)},
            "namespaceSelector": {"matchNames": [config.namespace]},
            "endpoints": [
                {"port": "http", "path": METRICS_PATH, "interval": config.service_monitor_interval}
            ],
            # A canary's series carry its track (stable or canary), for mlci deploy analyze.
            **({"podTargetLabels": ["mlci.io/track"]} if config.rollout else {}),
        },
    }


def prometheus_rule(config: DeployConfig, release: Release) -> dict[str, Any] | None:
    """The alert rules of ``mlci monitor render``, for the Prometheus Operator to load."""
    if config.alert_rules is None:
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _metadata(config, release),
        "spec": {"groups": [dict(group) for group in config.alert_rules["groups"]]},
    }


def inference_service(config: DeployConfig, release: Release) -> dict[str, Any]:
    """A KServe InferenceService running the image as a custom predictor."""
    pod = _pod_spec(config, release, container_name="kserve-container")
    predictor: dict[str, Any] = {
        "minReplicas": config.autoscaling.min_replicas if config.autoscaling else config.replicas,
        "maxReplicas": config.autoscaling.max_replicas if config.autoscaling else config.replicas,
        **pod,
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": _metadata(config, release),
        "spec": {"predictor": predictor},
    }


def manifests(config: DeployConfig, release: Release) -> dict[str, dict[str, Any]]:
    """File name -> manifest, for the configured target."""
    if config.target == "kserve":
        found: dict[str, dict[str, Any] | None] = {
            "inferenceservice.yaml": inference_service(config, release),
            "networkpolicy.yaml": network_policy(config, release),
            "prometheusrule.yaml": prometheus_rule(config, release),
        }
    elif config.rollout is not None:
        from mlci_lib.deploy.rollouts import analysis_template, rollout

        workload = deployment(config, release)
        found = {
            "rollout.yaml": rollout(workload, config),
            "analysistemplate.yaml": analysis_template(workload, config) if config.rollout.analysis else None,
            "service.yaml": service(config, release),
            "horizontalpodautoscaler.yaml": autoscaler(config, release),
            "poddisruptionbudget.yaml": disruption_budget(config, release),
            "networkpolicy.yaml": network_policy(config, release),
            "servicemonitor.yaml": service_monitor(config, release),
            "prometheusrule.yaml": prometheus_rule(config, release),
        }
    else:
        found = {
            "deployment.yaml": deployment(config, release),
            "metrictemplate.yaml": _metric_template(config, release),
            "service.yaml": service(config, release),
            "horizontalpodautoscaler.yaml": autoscaler(config, release),
            "poddisruptionbudget.yaml": disruption_budget(config, release),
            "networkpolicy.yaml": network_policy(config, release),
            "servicemonitor.yaml": service_monitor(config, release),
            "prometheusrule.yaml": prometheus_rule(config, release),
        }
    return {name: body for name, body in found.items() if body is not None}


def _metric_template(config: DeployConfig, release: Release) -> dict[str, Any] | None:
    if config.flagger is None:
        return None
    from mlci_lib.deploy.flagger import metric_template

    return metric_template(config, release_labels(config, release))


def kustomization(config: DeployConfig, files: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": config.namespace,
        "resources": sorted(files),
    }
