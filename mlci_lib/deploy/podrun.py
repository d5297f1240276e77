"""Run a rendered container spec on a Docker engine, the way the kubelet would run it.

No Kubernetes API server is needed to prove that the image, its numeric user, the read-only
root file system, the memory-backed ``/tmp``, the dropped capabilities and the resource limits
work together, and that the probes the manifests declare answer: the same container spec is
translated field by field into a Docker container, the startup probe is polled as the kubelet
polls it, and then the liveness and readiness probes are asked once more. The container is always
removed.
"""

from __future__ import annotations

import dataclasses
import http.client
import re
import time
from collections.abc import Callable
from typing import Any

from mlci_lib.errors import InputError
from mlci_lib.results import Result

_MEMORY_UNITS = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


@dataclasses.dataclass(frozen=True)
class ProbeAnswer:
    probe: str
    path: str
    status: int | None


@dataclasses.dataclass(frozen=True)
class PodRunResult(Result):
    SCHEMA = "mlci.pod-run"
    SCHEMA_VERSION = 1

    passed: bool
    image: str
    user: str
    read_only: bool
    startup_seconds: float | None
    probes: tuple[ProbeAnswer, ...]
    message: str


def memory_bytes(quantity: str) -> int:
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?", quantity)
    if match is None:
        raise InputError(f"memory quantity {quantity!r} is not understood")
    return int(float(match.group(1)) * _MEMORY_UNITS.get(match.group(2) or "", 1))


def nano_cpus(quantity: str) -> int:
    return int(float(quantity[:-1]) * 1e6) if quantity.endswith("m") else int(float(quantity) * 1e9)


def _get(port: int, path: str) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def run_container_spec(
    container: dict[str, Any],
    *,
    port: int,
    pod_security: dict[str, Any] | None = None,
    while_running: Callable[[], None] | None = None,
) -> PodRunResult:
    """Run ``container`` (a Kubernetes container spec) until its probes answer; ``port`` on loopback.

    The engine has no network of its own here, so the container shares the host's and listens on
    ``port`` (set through the container's own ``MLCI_SERVE_PORT``/``MLCI_SERVE_HOST`` variables).
    ``while_running`` is called once the probes answered, before the container is removed (for
    checks of a running deployment, such as ``mlci deploy verify``).
    """
    from mlci_lib.image.engine import api_error, docker_client

    security = dict(pod_security or {})
    security.update(container.get("securityContext") or {})
    uid, gid = security.get("runAsUser"), security.get("runAsGroup")
    if not security.get("runAsNonRoot") or not uid:
        raise InputError("the container spec does not run as a numeric non-root user")
    user = f"{uid}:{gid}" if gid is not None else str(uid)
    env = {item["name"]: item["value"] for item in container.get("env") or []}
    env.update({"MLCI_SERVE_HOST": "127.0.0.1", "MLCI_SERVE_PORT": str(port)})
    limits = (container.get("resources") or {}).get("limits") or {}
    tmpfs = {mount["mountPath"]: "rw,nosuid,nodev,size=64m" for mount in container.get("volumeMounts") or []}
    dropped = (security.get("capabilities") or {}).get("drop") or []
    options = ["no-new-privileges"] if security.get("allowPrivilegeEscalation") is False else []
    client = docker_client()
    probes: list[ProbeAnswer] = []
    started = time.monotonic()
    try:
        running = client.containers.run(
            container["image"],
            detach=True,
            user=user,
            read_only=bool(security.get("readOnlyRootFilesystem")),
            tmpfs=tmpfs,
            cap_drop=dropped,
            security_opt=options,  # seccomp: the engine's default profile, as RuntimeDefault
            environment=env,
            network_mode="host",
            mem_limit=memory_bytes(limits["memory"]) if "memory" in limits else None,
            nano_cpus=nano_cpus(str(limits["cpu"])) if "cpu" in limits else None,
            labels={"io.mlci.pod-run": "true"},
        )
    except Exception as exc:
        raise api_error(f"starting {container['image']} as the rendered container", exc) from None
    try:
        startup = container.get("startupProbe") or container.get("readinessProbe")
        ready_after = None
        if startup:
            path = startup["httpGet"]["path"]
            budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
            deadline = started + budget
            while time.monotonic() < deadline:
                running.reload()
                if running.status in ("exited", "dead"):
                    logs = running.logs(tail=5).decode("utf-8", "replace").strip().splitlines()
                    return PodRunResult(
                        False,
                        container["image"],
                        user,
                        True,
                        None,
                        tuple(probes),
                        f"the container exited before its startup probe passed: {logs[-1] if logs else ''}",
                    )
                if _get(port, path) == 200:
                    ready_after = round(time.monotonic() - started, 2)
                    break
                time.sleep(0.5)
            probes.append(ProbeAnswer("startup", path, 200 if ready_after is not None else None))
            if ready_after is None:
                return PodRunResult(
                    False,
                    container["image"],
                    user,
                    True,
                    None,
                    tuple(probes),
                    f"the startup probe {path} did not answer 200 within {budget} s",
                )
        for name in ("livenessProbe", "readinessProbe"):
            probe = container.get(name)
            if probe:
                path = probe["httpGet"]["path"]
                probes.append(ProbeAnswer(name.removesuffix("Probe"), path, _get(port, path)))
        bad = [p for p in probes if p.status != 200]
        message = (
            f"probes answered 200 ({', '.join(p.probe for p in probes)}) after {ready_after} s"
            if not bad
            else f"probe {bad[0].probe} ({bad[0].path}) answered {bad[0].status}"
        )
        if not bad and while_running is not None:
            while_running()
        return PodRunResult(not bad, container["image"], user, True, ready_after, tuple(probes), message)
    finally:
        running.remove(force=True)
