"""``mlci deploy apply``: the rendered manifests applied with kubectl, checked, undone on failure.

Thin over kubectl on purpose: each step is one kubectl command whose argv is built here (and
tested), run, and whose result is parsed; what kubectl and the API server do is theirs. The
order makes sure nothing is applied half-way:

1. render into a temporary folder and validate everything offline (:mod:`mlci_lib.deploy.render`);
2. read the object as it is (the first call to the cluster: an unreachable server stops here);
3. ``kubectl apply --dry-run=server``: the API server validates and admits every object
   (missing CRDs, admission policies, quotas) and persists none;
4. ``kubectl apply`` for real; ``kubectl rollout status --timeout`` (a Deployment) or
   ``kubectl wait`` for the new generation to be observed and Ready (an InferenceService);
5. the post-deploy checks of ``mlci deploy verify`` against the given URL;
6. when the rollout or a check fails, and this apply started a new revision: ``kubectl rollout
   undo`` (a Deployment), or the previous InferenceService applied again; the verdict says what
   was undone.

An Argo ``Rollout`` is not applied here: it promotes or aborts itself through its
AnalysisTemplate, which is where its checks belong (deploy it with ``mlci deploy gitops``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mlci_lib.deploy.config import DeployConfig
from mlci_lib.deploy.kubeconfig import Cluster
from mlci_lib.deploy.manifests import Release
from mlci_lib.deploy.verify import DeployVerdict
from mlci_lib.errors import ConfigError, InputError, ServiceError
from mlci_lib.results import Result

DEFAULT_TIMEOUT = 300
FIELD_MANAGER = "mlci"
#: Each request kubectl makes, apart from the rollout watch, which --timeout bounds.
REQUEST_TIMEOUT = "30s"
_APPLIED = re.compile(r"^(?P<object>[\w.-]+/[\w.-]+) (?P<action>[\w-]+)(?: \((?:server|client) dry run\))?$")
#: klog's lines ("E1201 23:38:18.417750 26091 memcache.go:265] ...") repeat what the error says.
_KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")
_SERVER_FIELDS = ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields", "selfLink")


@dataclasses.dataclass(frozen=True)
class Workload:
    """The object whose rollout is waited for and undone."""

    resource: str  # kubectl's name for it: deployment.apps, inferenceservice.serving.kserve.io
    name: str
    namespace: str

    @property
    def ref(self) -> str:
        return f"{self.resource}/{self.name}"

    @property
    def is_deployment(self) -> bool:
        return self.resource == "deployment.apps"


@dataclasses.dataclass(frozen=True)
class Applied:
    object: str  # deployment.apps/churn
    action: str  # created | configured | unchanged ...


@dataclasses.dataclass(frozen=True)
class Step:
    name: str  # rollout | verify | undo
    passed: bool
    message: str


@dataclasses.dataclass(frozen=True)
class ApplyVerdict(Result):
    """What ``mlci deploy apply`` did to which cluster, and whether the deployment holds."""

    SCHEMA: ClassVar[str] = "mlci.deploy-apply"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    cluster: Cluster
    namespace: str
    workload: str
    revision: str | None
    applied: tuple[Applied, ...]
    steps: tuple[Step, ...]
    undone: bool
    verification: DeployVerdict | None
    image: str
    image_digest: str
    model_name: str
    model_version: str | None
    model_digest: str | None
    verdict_digest: str | None
    started_at: str
    finished_at: str

    def text(self) -> str:
        word = "DEPLOYED" if self.passed else "ROLLED BACK" if self.undone else "FAILED"
        lines = [
            f"{self.model_name} {self.image_digest[:19]} {word} on {self.cluster.context} "
            f"({self.cluster.server}) as {self.namespace}/{self.workload}"
            + (f", revision {self.revision}" if self.revision else "")
        ]
        lines += [f"  applied  {a.object} {a.action}" for a in self.applied]
        lines += [f"  {'pass' if s.passed else 'fail':<8} {s.name}: {s.message}" for s in self.steps]
        if self.verification is not None:
            lines += ["  " + line for line in self.verification.text().splitlines()]
        return "\n".join(lines)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def condensed(stderr: str, stdout: str = "") -> str:
    """kubectl's error on one line: klog's repetitions dropped, the "error: " prefix too."""
    lines = [line.strip() for line in (stderr or stdout).splitlines() if line.strip()]
    kept = [line for line in lines if not _KLOG.match(line)] or lines
    text = " ".join(" ".join(kept[-2:]).split())
    return re.sub(r"^error: ", "", text)[:400] or "no message"


def parse_applied(stdout: str) -> tuple[Applied, ...]:
    """``kubectl apply``'s lines (``deployment.apps/churn configured``) as (object, action)."""
    found = []
    for line in stdout.splitlines():
        match = _APPLIED.match(line.strip())
        if match:
            found.append(Applied(match.group("object"), match.group("action")))
    return tuple(found)


def workload_of(config: DeployConfig) -> Workload:
    if config.rollout is not None:
        raise ConfigError(
            "mlci deploy apply does not apply an Argo Rollout: it promotes or aborts itself through its "
            "AnalysisTemplate",
            hint="deploy it with mlci deploy gitops (Argo CD), or drop deploy.rollout",
        )
    resource = "inferenceservice.serving.kserve.io" if config.target == "kserve" else "deployment.apps"
    return Workload(resource, config.name, config.namespace)


class Kubectl:
    """Builds kubectl's argv for each step and runs it; the kubeconfig and context are fixed."""

    def __init__(self, kubeconfig: str, context: str, *, binary: str | None = None) -> None:
        found = binary or shutil.which("kubectl")
        if not found:
            raise ConfigError(
                "mlci deploy apply needs kubectl, which is not on the PATH",
                hint="install kubectl (https://kubernetes.io/docs/tasks/tools/) or use mlci deploy gitops",
            )
        self.binary = found
        self.kubeconfig = kubeconfig
        self.context = context

    def argv(self, *args: str, request_timeout: bool = True) -> list[str]:
        head = [self.binary, "--kubeconfig", self.kubeconfig, "--context", self.context]
        return head + (["--request-timeout", REQUEST_TIMEOUT] if request_timeout else []) + list(args)

    def apply_argv(self, folder: str | Path, *, dry_run: bool) -> list[str]:
        args = ["apply", "--kustomize", str(folder), f"--field-manager={FIELD_MANAGER}"]
        return self.argv(*args, *(["--dry-run=server"] if dry_run else []))

    def get_argv(self, workload: Workload) -> list[str]:
        return self.argv(
            "get", workload.ref, "--namespace", workload.namespace, "--ignore-not-found", "--output", "json"
        )

    def wait_argv(self, workload: Workload, timeout: int, *, generation: int | None = None) -> list[str]:
        if workload.is_deployment:
            args = ["rollout", "status", workload.ref, "--namespace", workload.namespace]
        else:
            # An InferenceService is Ready for its new spec once its status observed that generation.
            condition = (
                f"--for=jsonpath={{.status.observedGeneration}}={generation}"
                if generation is not None
                else "--for=condition=Ready"
            )
            args = ["wait", condition, workload.ref, "--namespace", workload.namespace]
        return self.argv(*args, f"--timeout={timeout}s", request_timeout=False)

    def undo_argv(self, workload: Workload) -> list[str]:
        return self.argv("rollout", "undo", workload.ref, "--namespace", workload.namespace)

    def restore_argv(self, file: str | Path) -> list[str]:
        return self.argv("apply", "--filename", str(file), f"--field-manager={FIELD_MANAGER}")

    def run(self, argv: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            verb = next((a for a in argv[5:] if not a.startswith("-") and a != REQUEST_TIMEOUT), "")
            raise ServiceError(f"kubectl {verb} did not finish in {timeout:g} s") from None
        except OSError as exc:
            raise ServiceError(f"cannot run kubectl ({self.binary}): {exc.strerror or exc}") from None


def _previous(kubectl: Kubectl, workload: Workload, cluster: Cluster) -> dict[str, Any] | None:
    done = kubectl.run(kubectl.get_argv(workload), timeout=60)
    if done.returncode != 0:
        raise ServiceError(
            f"kubectl cannot read {workload.ref} from the cluster {cluster.context} at {cluster.server}: "
            f"{condensed(done.stderr)}",
            hint="check the kubeconfig's server, credentials and permissions, and the network from here",
        )
    return json.loads(done.stdout) if done.stdout.strip() else None


def _revision(body: dict[str, Any] | None) -> str | None:
    if not body:
        return None
    metadata = body.get("metadata") or {}
    revision = (metadata.get("annotations") or {}).get("deployment.kubernetes.io/revision")
    if revision:
        return str(revision)
    predictor = ((body.get("status") or {}).get("components") or {}).get("predictor") or {}
    ready = predictor.get("latestReadyRevision")
    return str(ready) if ready else (str(metadata["generation"]) if "generation" in metadata else None)


def changed_by_apply(workload: Workload, before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    """Whether the apply started a new revision of the workload (a new object counts as one).

    A Deployment's revision (``deployment.kubernetes.io/revision``) moves only when its pod
    template changed, not for a replica count; other kinds are compared by ``metadata.generation``.
    """
    if before is None or after is None:
        return True
    if workload.is_deployment:
        key = "deployment.kubernetes.io/revision"
        return bool(
            ((before.get("metadata") or {}).get("annotations") or {}).get(key)
            != ((after.get("metadata") or {}).get("annotations") or {}).get(key)
        )
    return bool(
        (before.get("metadata") or {}).get("generation") != (after.get("metadata") or {}).get("generation")
    )


def restorable(body: dict[str, Any]) -> dict[str, Any]:
    """A previous object as it can be applied again: no status, no fields the server owns."""
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    annotations = dict(metadata.get("annotations") or {})
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    metadata["annotations"] = annotations
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "metadata": metadata,
        "spec": body["spec"],
    }


def _wait(kubectl: Kubectl, workload: Workload, timeout: int, generation: int | None) -> Step:
    began = time.monotonic()
    argvs = [kubectl.wait_argv(workload, timeout, generation=generation)]
    if not workload.is_deployment and generation is not None:
        argvs.append(kubectl.wait_argv(workload, timeout))
    for argv in argvs:
        left = max(1, int(timeout - (time.monotonic() - began)))
        argv = [*argv[:-1], f"--timeout={left}s"]
        done = kubectl.run(argv, timeout=left + 30)
        if done.returncode != 0:
            return Step("rollout", False, condensed(done.stderr, done.stdout))
    return Step("rollout", True, f"{workload.ref} rolled out in {time.monotonic() - began:.0f} s")


def _undo(kubectl: Kubectl, workload: Workload, previous: dict[str, Any] | None, timeout: int) -> Step:
    if workload.is_deployment:
        done = kubectl.run(kubectl.undo_argv(workload), timeout=120)
        if done.returncode != 0:
            return Step("undo", False, condensed(done.stderr, done.stdout))
        back = _wait(kubectl, workload, timeout, None)
        return Step("undo", back.passed, f"rollout undone: {back.message}")
    if previous is None:
        return Step(
            "undo", False, f"no previous {workload.ref} to return to; the new one is left for inspection"
        )
    with tempfile.TemporaryDirectory(prefix="mlci-undo-") as folder:
        file = Path(folder) / "previous.json"
        file.write_text(json.dumps(restorable(previous)), encoding="utf-8")
        done = kubectl.run(kubectl.restore_argv(file), timeout=120)
    if done.returncode != 0:
        return Step("undo", False, condensed(done.stderr, done.stdout))
    back = _wait(kubectl, workload, timeout, None)
    return Step("undo", back.passed, f"previous spec applied again: {back.message}")


def apply_release(
    release: Release,
    config: DeployConfig,
    *,
    kubectl: Kubectl,
    cluster: Cluster,
    timeout: int = DEFAULT_TIMEOUT,
    check: Callable[[], DeployVerdict] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> ApplyVerdict:
    """Render, validate, apply, wait, check, and undo on failure; see the module's docstring."""
    from mlci_lib.deploy.render import render_deployment

    workload = workload_of(config)
    started = now()
    with tempfile.TemporaryDirectory(prefix="mlci-apply-") as scratch:
        rendered = render_deployment(release, config, scratch)
        previous = _previous(kubectl, workload, cluster)
        progress(f"rendered and validated {len(rendered.files)} files; asking the cluster to admit them")
        dry = kubectl.run(kubectl.apply_argv(rendered.folder, dry_run=True), timeout=180)
        if dry.returncode != 0:
            raise InputError(
                f"the cluster {cluster.context} refuses the manifests (nothing was applied): "
                f"{condensed(dry.stderr, dry.stdout)}",
                hint="often a CRD the cluster lacks (KServe, Prometheus Operator) or an admission policy",
            )
        done = kubectl.run(kubectl.apply_argv(rendered.folder, dry_run=False), timeout=180)
        applied = parse_applied(done.stdout)
        if done.returncode != 0:
            raise ServiceError(
                f"kubectl apply failed after the server's dry run admitted everything: "
                f"{condensed(done.stderr, done.stdout)}"
                + (f" (applied: {', '.join(a.object for a in applied)})" if applied else "")
            )
    progress(f"applied {len(applied)} objects; waiting for {workload.ref} (at most {timeout} s)")
    try:
        generation = None
        if not workload.is_deployment:  # the generation its status must have observed
            found = (_previous(kubectl, workload, cluster) or {}).get("metadata", {}).get("generation")
            generation = int(found) if found is not None else None
        steps = [_wait(kubectl, workload, timeout, generation)]
    except ServiceError as error:  # kubectl failed or hung: the rollout is not known to be done
        steps = [Step("rollout", False, error.one_line())]
    verification = None
    if steps[0].passed and check is not None:
        progress("rolled out; running the post-deploy checks")
        try:
            verification = check()
            steps.append(
                Step("verify", verification.passed, "verified" if verification.passed else "not verified")
            )
        except ServiceError as error:
            steps.append(Step("verify", False, error.one_line()))
    passed = all(step.passed for step in steps)
    undone = False
    if not passed:
        try:
            rolled = changed_by_apply(workload, previous, _previous(kubectl, workload, cluster))
        except ServiceError:
            rolled = True  # unknown: the apply went through, so undo what it may have changed
        if not rolled:
            # Undoing now would go back past what was running before: to an older release.
            undo = Step(
                "undo", False, f"this apply left {workload.ref}'s revision as it was: nothing to undo"
            )
        else:
            progress(f"{steps[-1].name} failed; undoing the rollout of {workload.ref}")
            try:
                undo = _undo(kubectl, workload, previous, timeout)
            except ServiceError as error:
                undo = Step("undo", False, error.one_line())
        steps.append(undo)
        undone = undo.passed
    try:
        final = _previous(kubectl, workload, cluster)
    except ServiceError:  # what was done is known: the verdict is written, without the revision
        final = None
    return ApplyVerdict(
        passed=passed,
        cluster=cluster,
        namespace=workload.namespace,
        workload=workload.ref,
        revision=_revision(final),
        applied=applied,
        steps=tuple(steps),
        undone=undone,
        verification=verification,
        image=release.image,
        image_digest=release.image_digest,
        model_name=release.model_name,
        model_version=release.model_version,
        model_digest=release.model_digest,
        verdict_digest=release.verdict_digest,
        started_at=started,
        finished_at=now(),
    )
