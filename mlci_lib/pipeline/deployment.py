"""The pipeline's deploy stage: render the pushed image's manifests, then apply, gitops or nothing,
then verify; and the deployment record that links the image digest to where it went.

``stages.deploy`` in ``mlci.yaml``::

    deploy:
      mode: render            # render | apply | gitops; render alone writes and validates the manifests
      output: deploy          # default: deploy.output
      verify:                 # check the deployment answering at a URL (mlci deploy verify)
        url: https://churn.example.com
        gate: gate.yaml       # its latency rules, optional
        requests: 50
      apply: {kubeconfig-env: KUBECONFIG_CONTENT, timeout: 600}    # mode apply: mlci deploy apply's options
      gitops: {repository: https://github.com/acme/cluster-state.git, path: apps/churn}   # mode gitops

The release is read from the pipeline verdict as it stands when the stage starts (the image
stages' results), exactly as ``mlci deploy render --release .mlci/pipeline-verdict.json`` reads it:
one path from a pipeline run to its manifests, in a CI job or in the pipeline. The manifests are
always rendered and validated first, into a temporary folder (``render_deployment``), so apply and
gitops never see a half-written or invalid folder. Apply and gitops are each one call of the
``mlci deploy`` command of that name (:func:`apply_manifests`, :func:`gitops_manifests`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError
from mlci_lib.pipeline.deploy_settings import DeploySettings
from mlci_lib.results import Result

#: The runner's files a sub-command must not write to: the outputs and summary are the stage's.
_RUNNER_FILES = ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "MLCI_OUTPUT_FILE", "MLCI_SUMMARY_FILE")
_MASK = "::add-mask::"


@dataclasses.dataclass(frozen=True)
class DeploymentResult(Result):
    """What the deploy stage did with the pushed image: rendered where, applied or proposed how,
    verified at which URL; and the link the pipeline verdict keeps (:meth:`link`)."""

    SCHEMA = "mlci.deployment"
    SCHEMA_VERSION = 1

    passed: bool
    mode: str
    target: str
    name: str
    namespace: str
    image: str
    image_digest: str
    model_name: str
    model_version: str | None
    commit: str | None
    #: The cluster's revision of the rollout (apply) or the proposed change (gitops), when known.
    revision: str | None
    deployed_at: str
    folder: str
    files: tuple[str, ...]
    url: str | None
    message: str
    render: Mapping[str, Any]
    applied: Mapping[str, Any] | None = None
    verify: Mapping[str, Any] | None = None

    def link(self) -> dict[str, Any]:
        """The pipeline verdict's ``deployment``: image digest → target, namespace, revision, time."""
        return {
            "mode": self.mode,
            "target": self.target,
            "namespace": self.namespace,
            "name": self.name,
            "image_digest": self.image_digest,
            "commit": self.commit,
            "revision": self.revision,
            "time": self.deployed_at,
            "url": self.url,
            "verified": None if self.verify is None else bool(self.verify.get("passed")),
            "passed": self.passed,
        }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def deploy_release(
    verdict_file: Path,
    config_file: Path,
    deploy_section: Any,
    settings: DeploySettings,
    *,
    default_name: str | None,
    resolve: Callable[[str], Path],
    commit: str | None,
    environ: Mapping[str, str],
    result_file: Path,
    on_line: Callable[[str], None] | None = None,
    mask: Callable[[str], None] | None = None,
    alert_rules: Path | None = None,
) -> DeploymentResult:
    """Render the release that ``verdict_file`` (a pipeline verdict) records, then apply or propose
    it (``settings.mode``), then verify it at ``settings.url``; see the module's docstring.

    ``alert_rules`` (the ``alerts.yml`` of ``mlci monitor render``) becomes a PrometheusRule in the
    manifests, in every mode (``mlci deploy apply`` and ``gitops`` get it as ``--alert-rules``).
    """
    from mlci_lib.deploy import parse_deploy_config, release_from_result, render_deployment
    from mlci_lib.files import read_json

    config = parse_deploy_config(deploy_section, default_name=default_name)
    extra: list[str] = []
    if alert_rules is not None:
        from mlci_lib.deploy.config import with_alert_rules
        from mlci_lib.monitor.render import read_rules_file

        config = with_alert_rules(config, read_rules_file(alert_rules), source=str(alert_rules))
        extra = ["--alert-rules", str(alert_rules)]
    verdict = read_json(verdict_file, what="pipeline verdict")
    if not isinstance(verdict, Mapping):
        raise InputError(f"pipeline verdict {verdict_file} is not a JSON object")
    release = release_from_result(verdict, source=str(verdict_file))
    output = resolve(settings.output or config.output)
    rendered = render_deployment(release, config, output)
    applied: Mapping[str, Any] | None = None
    run = _Command(verdict_file, config_file, environ, result_file, on_line, mask, tuple(extra))
    checked: Mapping[str, Any] | None = None
    if settings.mode == "apply":
        applied = apply_manifests(run, settings, resolve)
        # apply ran the post-deploy checks itself (and undid the rollout when they failed).
        checked = applied.get("verification")
    elif settings.mode == "gitops":
        applied = gitops_manifests(run, settings)
    deployed_at = _now()
    if settings.url and settings.mode == "render":
        checked = verify_release(verdict, settings, resolve)
    passed = (applied is None or bool(applied.get("passed"))) and (checked is None or bool(checked["passed"]))
    where = f"{config.target} {config.namespace}/{config.name}"
    message = (
        f"rendered {where} ({release.image_digest[:19]}) into {rendered.folder}: "
        f"{len(rendered.validated)} of {len(rendered.files)} files validated against Kubernetes "
        f"{rendered.kubernetes_version}"
    )
    if applied is not None:
        message += f"; {settings.mode} {'passed' if applied.get('passed') else 'failed'}"
        if applied.get("message"):
            message += f": {applied['message']}"
    if checked is not None:
        failed = [c["name"] for c in checked.get("checks") or [] if c.get("outcome") == "fail"]
        failed += [r["rule"] for r in checked.get("latency_rules") or [] if r.get("outcome") != "pass"]
        message += (
            f"; verified at {checked['url']}"
            if checked["passed"]
            else f"; NOT verified at {checked['url']}: {', '.join(failed) or 'see the verdict'}"
        )
    revision = None
    if applied is not None:
        # The rollout's revision (apply), or the manifests repository's commit (gitops).
        found = applied.get("revision") if settings.mode == "apply" else applied.get("commit")
        revision = None if found is None else str(found)
    return DeploymentResult(
        passed=passed,
        mode=settings.mode,
        target=config.target,
        name=config.name,
        namespace=config.namespace,
        image=release.image,
        image_digest=release.image_digest,
        model_name=release.model_name,
        model_version=release.model_version,
        commit=commit,
        revision=revision,
        deployed_at=deployed_at,
        folder=rendered.folder,
        files=rendered.files,
        url=settings.url,
        message=message,
        render=rendered.to_dict(),
        applied=applied,
        verify=checked,
    )


def verify_release(
    verdict: Mapping[str, Any], settings: DeploySettings, resolve: Callable[[str], Path]
) -> dict[str, Any]:
    """``mlci deploy verify URL --release <the pipeline verdict>``, in-process: the deploy verdict."""
    from mlci_lib.deploy.verify import expected_from, verify_deployment
    from mlci_lib.gate.rules import load_gate_rules

    assert settings.url is not None
    expected = expected_from(verdict, None, source="the pipeline verdict")
    rules = load_gate_rules(resolve(settings.gate)) if settings.gate else None
    return verify_deployment(settings.url, expected, gate_rules=rules, requests=settings.requests).to_dict()


@dataclasses.dataclass(frozen=True)
class _Command:
    """How the stage runs an ``mlci deploy`` command: on the pipeline verdict, in its own process."""

    verdict_file: Path
    config_file: Path
    environ: Mapping[str, str]
    result_file: Path
    on_line: Callable[[str], None] | None
    mask: Callable[[str], None] | None
    #: Options every command gets (the alert rules the render included).
    extra: tuple[str, ...] = ()

    def __call__(self, command: str, result_option: str, options: list[str]) -> tuple[int, dict[str, Any]]:
        """Run ``mlci deploy COMMAND --release <verdict> --config <mlci.yaml> OPTIONS``; its exit
        code and the result it wrote.

        Its own process, as in a CI job: its exit and its result file are all that come back, and
        the runner's output and summary files stay the stage's. A secret it masks (the kubeconfig's
        credentials) is masked for the stage too, never shown as an output line.
        """
        from mlci_lib.pipeline.commands import run_command

        result = self.result_file.with_name(f"deploy-{command}.json")
        argv = [sys.executable, "-m", "mlci_lib", "deploy", command, "--release", str(self.verdict_file)]
        argv += ["--config", str(self.config_file), result_option, str(result), *self.extra, *options]
        env = {k: v for k, v in self.environ.items() if k not in _RUNNER_FILES}

        def line(text: str) -> None:
            if text.startswith(_MASK):
                if self.mask is not None:
                    self.mask(_unescape(text[len(_MASK) :]))
            elif self.on_line is not None:
                self.on_line(text)

        done = run_command(argv, cwd=self.config_file.parent, base_env=env, on_line=line, timeout_s=3600)
        data: Any = json.loads(result.read_text(encoding="utf-8")) if result.is_file() else None
        if isinstance(data, dict) and data.get("schema") not in (None, "mlci.error"):
            return done.returncode, data
        last = next((t for t in reversed(done.tail) if t.strip() and not t.startswith(_MASK)), "")
        raise InputError(
            f"mlci deploy {command} exited with code {done.returncode}"
            + (f": {last.strip()[:300]}" if last else ""),
            hint=f"see 'mlci deploy {command} --help' for stages.deploy.{command}",
        )


def _options(settings: Mapping[str, Any]) -> list[str]:
    """``{timeout: 600, no-pull-request: true}`` as ``--timeout 600 --no-pull-request``."""
    argv: list[str] = []
    for key, value in settings.items():
        if isinstance(value, bool):
            argv += [f"--{key}"] if value else []
        else:
            argv += [f"--{key}", str(value)]
    return argv


def apply_manifests(
    run: _Command, settings: DeploySettings, resolve: Callable[[str], Path]
) -> dict[str, Any]:
    """``mlci deploy apply``: apply with kubectl, wait, run the checks at ``verify.url``, undo on failure.

    ``stages.deploy.apply`` gives the cluster (``kubeconfig-env: KUBECONFIG_CONTENT``, ``context``)
    and ``timeout``; ``verify`` becomes the command's post-deploy checks (``--no-verify`` without it).
    """
    checks = ["--url", settings.url] if settings.url else ["--no-verify"]
    if settings.url and settings.gate:
        checks += ["--gate", str(resolve(settings.gate))]
    if settings.url:
        checks += ["--requests", str(settings.requests)]
    _code, verdict = run("apply", "--verdict-file", [*_options(settings.apply), *checks])
    return verdict


def gitops_manifests(run: _Command, settings: DeploySettings) -> dict[str, Any]:
    """``mlci deploy gitops``: commit the manifests to a branch of a manifests repository, open or
    update its pull request. ``stages.deploy.gitops`` gives ``repository`` and the rest."""
    code, result = run("gitops", "--result-file", _options(settings.gitops))
    # Its result has no verdict of its own: exit 0 is done (or nothing to do).
    return {**result, "passed": code == 0}


def _unescape(text: str) -> str:
    """A workflow command's data as it was before the runner escaped it (%25, %0D, %0A)."""
    return text.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")


__all__ = ["DeploymentResult", "apply_manifests", "deploy_release", "gitops_manifests", "verify_release"]
