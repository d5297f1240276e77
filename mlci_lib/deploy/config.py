"""The ``deploy:`` section of ``mlci.yaml``: where and how a released model runs.

.. code-block:: yaml

    deploy:
      target: kubernetes            # kubernetes | kserve
      name: churn                   # resource name (DNS-1123 label); default: the model name
      namespace: ml
      kubernetes-version: "1.31"    # the API version the manifests are validated against
      port: 8080
      replicas: 2
      resources:
        requests: {cpu: 250m, memory: 512Mi}
        limits: {cpu: "1", memory: 1Gi}
      autoscaling: {min-replicas: 2, max-replicas: 10, cpu-utilization: 70}
      disruption: {min-available: 1}
      service-monitor: {interval: 30s}
      output: deploy                # the folder the manifests are written to
      labels: {team: risk}
      annotations: {}
      image-pull-secrets: [registry-credentials]
      rollout: {steps: [10, 50], pause: 5m, analysis: true, prometheus: http://prometheus:9090}
                                    # an Argo Rollouts canary instead of the Deployment (rollouts.py)
      flagger: {prometheus: http://prometheus:9090}
                                    # a Flagger MetricTemplate for the canary's error rate (flagger.py)

Every value is checked here, before anything is rendered, with an error that names the key.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal

from mlci_lib.deploy.flagger import FlaggerConfig, parse_flagger
from mlci_lib.deploy.rollouts import RolloutConfig, parse_rollout
from mlci_lib.errors import ConfigError

Target = Literal["kubernetes", "kserve"]
TARGETS: tuple[Target, ...] = ("kubernetes", "kserve")
#: The Kubernetes version manifests are validated against unless the config names another.
DEFAULT_KUBERNETES_VERSION = "1.31"
DEFAULT_PORT = 8080

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_CPU = re.compile(r"^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$")
_MEMORY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_DURATION = re.compile(r"^[0-9]+(ms|s|m|h)$")
_VERSION = re.compile(r"^1\.[0-9]{2}$")
# Kubernetes label keys: an optional DNS-subdomain prefix, then a name of 63 characters at most.
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")

_KEYS = {
    "target",
    "name",
    "namespace",
    "kubernetes-version",
    "port",
    "replicas",
    "resources",
    "autoscaling",
    "disruption",
    "service-monitor",
    "output",
    "labels",
    "annotations",
    "image-pull-secrets",
    "rollout",
    "flagger",
}

DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}


@dataclasses.dataclass(frozen=True)
class Autoscaling:
    min_replicas: int
    max_replicas: int
    cpu_utilization: int


@dataclasses.dataclass(frozen=True)
class DeployConfig:
    target: Target
    name: str
    namespace: str
    kubernetes_version: str
    port: int
    replicas: int
    resources: dict[str, dict[str, str]]
    autoscaling: Autoscaling | None
    min_available: int | None
    service_monitor_interval: str | None
    output: str
    labels: dict[str, str]
    annotations: dict[str, str]
    image_pull_secrets: tuple[str, ...]
    rollout: RolloutConfig | None = None
    flagger: FlaggerConfig | None = None
    #: The rule groups rendered as a PrometheusRule beside the manifests (:func:`with_alert_rules`).
    alert_rules: Mapping[str, Any] | None = None

    @property
    def scraped_as_job(self) -> str | None:
        """The ``job`` label of the server's series when the rendered ServiceMonitor scrapes it:
        the Service's name (the Prometheus Operator's default); None without a ServiceMonitor."""
        if self.target != "kubernetes" or self.service_monitor_interval is None:
            return None
        return self.name


def _did_you_mean(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(_KEYS), n=1)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(_KEYS))}"


def _int(raw: Mapping[str, Any], key: str, default: int, low: int, high: int, where: str) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}.{key} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _DNS_LABEL.match(value):
        raise ConfigError(
            f"{where} must be a DNS-1123 label (lowercase letters, digits and '-', "
            f"at most 63), got {value!r}",
            hint="e.g. churn-model",
        )
    return value


def _string_map(raw: Any, where: str, *, labels: bool) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must map names to text")
    out = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _LABEL_KEY.match(key):
            raise ConfigError(f"{where}: {key!r} is not a valid Kubernetes key")
        if key.startswith(("mlci.io/", "app.kubernetes.io/")):
            raise ConfigError(f"{where}: {key!r} is set by mlci", hint="choose a key of your own prefix")
        text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if not isinstance(text, str) or (labels and not _LABEL_VALUE.match(text)) or "\n" in text:
            raise ConfigError(f"{where}.{key} has a value Kubernetes does not accept: {value!r}")
        out[key] = text
    return out


def _resources(raw: Any, where: str) -> dict[str, dict[str, str]]:
    if raw is None:
        return {kind: dict(values) for kind, values in DEFAULT_RESOURCES.items()}
    if not isinstance(raw, Mapping) or set(raw) - {"requests", "limits"}:
        raise ConfigError(f"{where} takes requests and limits, each with cpu and memory")
    out: dict[str, dict[str, str]] = {}
    for kind in ("requests", "limits"):
        values = raw.get(kind, DEFAULT_RESOURCES[kind])
        if not isinstance(values, Mapping) or set(values) != {"cpu", "memory"}:
            raise ConfigError(f"{where}.{kind} must give cpu and memory, e.g. {{cpu: 250m, memory: 512Mi}}")
        cpu, memory = str(values["cpu"]), str(values["memory"])
        if not _CPU.match(cpu):
            raise ConfigError(f"{where}.{kind}.cpu {cpu!r} is not a CPU quantity", hint="e.g. 250m or 1")
        if not _MEMORY.match(memory):
            raise ConfigError(f"{where}.{kind}.memory {memory!r} is not a memory quantity", hint="e.g. 512Mi")
        out[kind] = {"cpu": cpu, "memory": memory}
    return out


def parse_deploy_config(raw: Any, *, default_name: str | None, where: str = "deploy") -> DeployConfig:
    """A :class:`DeployConfig` from the ``deploy:`` mapping; ConfigError names the bad key."""
    if raw is None:
        raise ConfigError(
            "mlci.yaml has no deploy section",
            hint="add 'deploy: {target: kubernetes, namespace: ...}' (see the README, Deploy)",
        )
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping of settings")
    for key in raw:
        if key not in _KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}", hint=_did_you_mean(str(key)))
    target = raw.get("target", "kubernetes")
    if target not in TARGETS:
        raise ConfigError(f"{where}.target must be one of {', '.join(TARGETS)}, got {target!r}")
    name = _name(
        raw.get("name", (default_name or "").lower().replace("_", "-").replace(".", "-")), f"{where}.name"
    )
    namespace = _name(raw.get("namespace", "default"), f"{where}.namespace")
    version = str(raw.get("kubernetes-version", DEFAULT_KUBERNETES_VERSION))
    if not _VERSION.match(version):
        raise ConfigError(f"{where}.kubernetes-version must look like 1.31, got {version!r}")
    port = _int(raw, "port", DEFAULT_PORT, 1024, 65535, where)
    replicas = _int(raw, "replicas", 2, 1, 1000, where)
    autoscaling = None
    scaling = raw.get("autoscaling")
    if scaling is not None and scaling is not False:
        if not isinstance(scaling, Mapping) or set(scaling) - {
            "min-replicas",
            "max-replicas",
            "cpu-utilization",
        }:
            raise ConfigError(f"{where}.autoscaling takes min-replicas, max-replicas and cpu-utilization")
        low = _int(scaling, "min-replicas", replicas, 1, 1000, f"{where}.autoscaling")
        high = _int(scaling, "max-replicas", max(low, replicas) * 5, 1, 1000, f"{where}.autoscaling")
        if high < low:
            raise ConfigError(f"{where}.autoscaling: max-replicas {high} is below min-replicas {low}")
        cpu = _int(scaling, "cpu-utilization", 70, 1, 100, f"{where}.autoscaling")
        autoscaling = Autoscaling(low, high, cpu)
    min_available: int | None = None
    disruption = raw.get("disruption", {"min-available": 1} if replicas > 1 or autoscaling else None)
    if disruption is not None and disruption is not False:
        if not isinstance(disruption, Mapping) or set(disruption) != {"min-available"}:
            raise ConfigError(f"{where}.disruption takes min-available")
        floor = autoscaling.min_replicas if autoscaling else replicas
        min_available = _int(disruption, "min-available", 1, 0, floor, f"{where}.disruption")
    monitor = raw.get("service-monitor", {"interval": "30s"})
    interval = None
    if monitor is not None and monitor is not False:
        if monitor is True:
            monitor = {"interval": "30s"}
        if not isinstance(monitor, Mapping) or set(monitor) - {"interval"}:
            raise ConfigError(f"{where}.service-monitor takes interval (e.g. 30s), or false")
        interval = str(monitor.get("interval", "30s"))
        if not _DURATION.match(interval):
            raise ConfigError(f"{where}.service-monitor.interval {interval!r} is not a duration like 30s")
    output = raw.get("output", "deploy")
    if not isinstance(output, str) or not output.strip():
        raise ConfigError(f"{where}.output must be a folder name")
    rollout = parse_rollout(raw.get("rollout"), f"{where}.rollout")
    if rollout is not None and target != "kubernetes":
        raise ConfigError(
            f"{where}.rollout renders an Argo Rollout, which needs target: kubernetes",
            hint="KServe splits traffic itself (canaryTrafficPercent); drop rollout for target: kserve",
        )
    flagger = parse_flagger(raw.get("flagger"), f"{where}.flagger")
    if flagger is not None and (target != "kubernetes" or rollout is not None):
        raise ConfigError(
            f"{where}.flagger renders a MetricTemplate for Flagger, which drives a Deployment",
            hint="use it with target: kubernetes, and without rollout: Argo Rollouts or Flagger, not both",
        )
    secrets = raw.get("image-pull-secrets") or []
    if not isinstance(secrets, list):
        raise ConfigError(f"{where}.image-pull-secrets must be a list of secret names")
    return DeployConfig(
        target=target,
        name=name,
        namespace=namespace,
        kubernetes_version=version,
        port=port,
        replicas=replicas,
        resources=_resources(raw.get("resources"), f"{where}.resources"),
        autoscaling=autoscaling,
        min_available=min_available,
        service_monitor_interval=interval,
        output=output,
        labels=_string_map(raw.get("labels"), f"{where}.labels", labels=True),
        annotations=_string_map(raw.get("annotations"), f"{where}.annotations", labels=False),
        image_pull_secrets=tuple(_name(s, f"{where}.image-pull-secrets") for s in secrets),
        rollout=rollout,
        flagger=flagger,
    )


def with_alert_rules(config: DeployConfig, rules: Mapping[str, Any], *, source: str) -> DeployConfig:
    """``config`` rendering ``rules`` (a rules file's groups, as ``mlci monitor render`` writes them)
    as a ``monitoring.coreos.com/v1`` PrometheusRule beside the other manifests.

    With a ServiceMonitor the server's series carry ``job=<the Service's name>``: a rule labelled
    with another job selects series that do not exist and could never fire, so it is refused.
    """
    import copy

    job = config.scraped_as_job
    for group in rules.get("groups") or []:
        for rule in group.get("rules") or []:
            named = (rule.get("labels") or {}).get("job")
            if job is not None and named is not None and named != job:
                raise ConfigError(
                    f"alert rules {source}: {rule.get('alert') or rule.get('record')} selects job "
                    f"{named!r}, but the ServiceMonitor's series carry job={job!r} (the Service's name)",
                    hint=f"render the rules with mlci monitor render --job {job}",
                )
    return dataclasses.replace(config, alert_rules={"groups": copy.deepcopy(list(rules["groups"]))})
