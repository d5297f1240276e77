"""Progressive delivery with Argo Rollouts: a ``Rollout`` with canary steps, and an
``AnalysisTemplate`` whose Job runs ``mlci deploy analyze`` in the released image itself.

.. code-block:: yaml

    deploy:
      rollout:
        steps: [10, 50]             # canary weights (percent), each followed by a pause
        pause: 5m
        analysis: true              # after each pause, judge the canary (exit 0 promote, else abort)
        prometheus: http://prometheus-operated.monitoring:9090
        window: 5m                  # default: the pause
        on-inconclusive: fail

The Rollout carries the full pod template (not a ``workloadRef`` to a Deployment): the pods are
then owned by one object only, the template is the very one the Deployment would have had (and
is validated as a PodTemplateSpec), and no Deployment scaled to zero lingers beside it. Without a
traffic router, Argo approximates each weight by the share of canary pods. Argo labels the pods
``mlci.io/track: canary`` or ``stable`` (canaryMetadata, stableMetadata); the ServiceMonitor
copies that label onto the series (as ``mlci_io_track``), which is how the analysis tells the two
apart in Prometheus.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from mlci_lib.errors import ConfigError

API_VERSION = "argoproj.io/v1alpha1"
TRACK_LABEL = "mlci.io/track"
#: The pod label as Prometheus Operator writes it onto a series (invalid characters become _).
TRACK_SERIES_LABEL = "mlci_io_track"
#: Where the serving image keeps mlci (see the image template).
MLCI_PYTHON = "/opt/mlci/venv/bin/python"
_DURATION = re.compile(r"^[1-9][0-9]*(s|m|h)$")
_KEYS = ("steps", "pause", "analysis", "prometheus", "window", "on-inconclusive")


@dataclasses.dataclass(frozen=True)
class RolloutConfig:
    steps: tuple[int, ...]
    pause: str
    analysis: bool
    prometheus: str | None
    window: str
    on_inconclusive: str


def parse_rollout(raw: Any, where: str) -> RolloutConfig | None:
    """``deploy.rollout``: None when absent or false; ConfigError naming the key otherwise."""
    from mlci_lib.gate.rules import check_policy
    from mlci_lib.options import check_keys

    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping (steps, pause, analysis, prometheus, window)")
    check_keys(raw, _KEYS, where=where)
    steps = raw.get("steps", [10, 50])
    if (
        not isinstance(steps, list)
        or not steps
        or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 99 for s in steps)
        or steps != sorted(set(steps))
    ):
        raise ConfigError(
            f"{where}.steps must be rising canary weights from 1 to 99 (percent), got {steps!r}",
            hint="e.g. steps: [10, 50]",
        )
    pause = str(raw.get("pause", "5m"))
    if not _DURATION.match(pause):
        raise ConfigError(f"{where}.pause {pause!r} is not a duration like 5m")
    analysis = raw.get("analysis", True)
    if not isinstance(analysis, bool):
        raise ConfigError(f"{where}.analysis must be true or false, got {analysis!r}")
    prometheus = raw.get("prometheus")
    if analysis and (not isinstance(prometheus, str) or not re.match(r"^https?://[^\s/]+", prometheus)):
        raise ConfigError(
            f"{where}.prometheus must be the cluster's Prometheus address for the analysis",
            hint="e.g. prometheus: http://prometheus-operated.monitoring:9090, or analysis: false",
        )
    window = str(raw.get("window", pause))
    if not _DURATION.match(window):
        raise ConfigError(f"{where}.window {window!r} is not a duration like 5m")
    policy = check_policy(raw.get("on-inconclusive", "fail"), f"{where}.on-inconclusive")
    return RolloutConfig(tuple(steps), pause, analysis, prometheus, window, policy)


def template_name(name: str) -> str:
    return f"{name}-canary-analysis"


def selectors(namespace: str, name: str) -> tuple[str, str]:
    """The stable and canary series selectors in the cluster's Prometheus (ServiceMonitor labels)."""
    base = f'namespace="{namespace}",service="{name}"'
    return f'{base},{TRACK_SERIES_LABEL}="stable"', f'{base},{TRACK_SERIES_LABEL}="canary"'


def rollout(deployment: Mapping[str, Any], config: Any) -> dict[str, Any]:
    """The Deployment's Rollout twin: the same metadata, selector and pod template, canary steps."""
    rollout_config: RolloutConfig = config.rollout
    steps: list[dict[str, Any]] = []
    for weight in rollout_config.steps:
        steps.append({"setWeight": weight})
        steps.append({"pause": {"duration": rollout_config.pause}})
        if rollout_config.analysis:
            steps.append({"analysis": {"templates": [{"templateName": template_name(config.name)}]}})
    spec = {key: value for key, value in deployment["spec"].items() if key not in ("strategy",)}
    spec["strategy"] = {
        "canary": {
            "canaryMetadata": {"labels": {TRACK_LABEL: "canary"}},
            "stableMetadata": {"labels": {TRACK_LABEL: "stable"}},
            # As the Deployment's rolling update: never fewer ready pods than asked for.
            "maxUnavailable": 0,
            "maxSurge": 1,
            "steps": steps,
        }
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Rollout",
        "metadata": dict(deployment["metadata"]),
        "spec": spec,
    }


def analysis_template(deployment: Mapping[str, Any], config: Any) -> dict[str, Any]:
    """An AnalysisTemplate with one Job metric: ``mlci deploy analyze`` in the released image."""
    rollout_config: RolloutConfig = config.rollout
    pod = deployment["spec"]["template"]["spec"]
    serving = pod["containers"][0]
    stable, canary = selectors(config.namespace, config.name)
    container = {
        "name": "analyze",
        "image": serving["image"],
        "imagePullPolicy": serving["imagePullPolicy"],
        "command": [MLCI_PYTHON, "-m", "mlci_lib", "deploy", "analyze"],
        "args": [
            "--prometheus",
            str(rollout_config.prometheus),
            "--stable",
            stable,
            "--canary",
            canary,
            "--window",
            rollout_config.window,
            "--on-inconclusive",
            rollout_config.on_inconclusive,
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "securityContext": serving["securityContext"],
        "volumeMounts": serving["volumeMounts"],
    }
    job_pod = {
        key: pod[key]
        for key in ("automountServiceAccountToken", "securityContext", "volumes", "imagePullSecrets")
        if key in pod
    }
    job_pod.update({"restartPolicy": "Never", "containers": [container]})
    return {
        "apiVersion": API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": {
            "name": template_name(config.name),
            "namespace": config.namespace,
            "labels": dict(deployment["metadata"]["labels"]),
        },
        "spec": {
            "metrics": [
                {
                    "name": "mlci-canary",
                    # One Job a step: it exits 0 to promote; any failure aborts the rollout.
                    "count": 1,
                    "failureLimit": 0,
                    "provider": {
                        "job": {
                            "spec": {
                                "backoffLimit": 0,
                                "activeDeadlineSeconds": 600,
                                "template": {"spec": job_pod},
                            }
                        }
                    },
                }
            ]
        },
    }


def embedded_objects(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Built-in Kubernetes objects inside an Argo resource, for the offline schema validation.

    A Rollout's template is a PodTemplateSpec (checked as a v1 PodTemplate); each Job metric of
    an AnalysisTemplate holds a JobSpec (checked as a batch/v1 Job).
    """
    name = str((body.get("metadata") or {}).get("name", "embedded"))
    if body.get("apiVersion") != API_VERSION:
        return []
    if body.get("kind") == "Rollout":
        template = (body.get("spec") or {}).get("template")
        return [{"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}]
    if body.get("kind") == "AnalysisTemplate":
        out = []
        for metric in (body.get("spec") or {}).get("metrics") or []:
            job = ((metric.get("provider") or {}).get("job") or {}).get("spec")
            if job is not None:
                out.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": job})
        return out
    return []
