"""``mlci demo``: the whole pipeline on the bundled example project, with nothing to configure.

The example (a loan-approval classifier with a sensitive attribute, ``mlci_lib/templates/example``)
is copied to a fresh folder and run twice against an MLflow SQLite store inside that folder:

1. a release: data check, train, evaluate, gate (no champion yet: absolute rules), model push,
   the image stages when a Docker engine answers, promotion to ``champion``;
2. a deliberately worse candidate up to the gate, which must stop it against the champion.

The report of the release is written to a Markdown file whose path the result carries.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from mlci_lib.errors import InputError
from mlci_lib.results import Result

IMAGE_STAGES = ("image-build", "image-smoke", "image-push")
_IGNORE = shutil.ignore_patterns("model", ".mlci", "predictions.csv", "__pycache__", "mlci-report.md")


@dataclasses.dataclass(frozen=True)
class DemoResult(Result):
    SCHEMA: ClassVar[str] = "mlci.demo"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    workspace: str
    release: dict[str, Any]
    candidate: dict[str, Any] | None
    report_file: str | None
    image_note: str | None


def example_source() -> Path:
    """The example project shipped inside the package."""
    return Path(str(resources.files("mlci_lib").joinpath("templates/example")))


def docker_status(environ: Mapping[str, str]) -> str | None:
    """None when a Docker engine answers, else one line that says why the image stages are skipped."""
    try:
        import docker
    except ImportError:
        return "image stages skipped: the Docker SDK is not installed (pip install 'mlci[image]')"
    host = environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=3, environment=dict(environ))
        try:
            client.ping()
        finally:
            client.close()
    except Exception:
        return f"image stages skipped: no Docker engine answered at {host} (start Docker to include them)"
    return None


def run_demo(
    workspace: str | os.PathLike[str] | None = None,
    *,
    image: bool | None = None,
    registry: str | None = None,
    base_image: str | None = None,
    python_version: str | None = None,
    worse_candidate: bool = True,
    environ: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Copy the example to ``workspace`` (default: a new temporary folder) and run the pipeline.

    ``image`` None builds the image when a Docker engine answers; ``registry`` (``host:port``)
    is where the image is pushed, and without it the push stage is left out.
    """
    from mlci_lib.files import write_text_atomic
    from mlci_lib.pipeline import load_config, run_pipeline

    say = progress or (lambda _line: None)
    env = dict(os.environ if environ is None else environ)
    env.pop("MLFLOW_TRACKING_URI", None)  # the demo's store lives in its own folder
    env.pop("EXAMPLE_WORSE_MODEL", None)
    root = Path(workspace) if workspace else Path(tempfile.mkdtemp(prefix="mlci-demo-"))
    project = root / "loan-approval"
    if project.exists() and any(project.iterdir()):
        raise InputError(f"demo folder {project} already exists", hint="pass another --dir, or delete it")
    shutil.copytree(example_source(), project, ignore=_IGNORE)
    say(f"example project copied to {project}")

    skip: list[str] = []
    note = None
    if image is False:
        note = "image stages skipped (--no-image)"
    elif image is None:
        note = docker_status(env)
    if note:
        skip += IMAGE_STAGES
    else:
        repository = f"{registry}/mlci-demo/loan-approval" if registry else "mlci-demo/loan-approval"
        env["MLCI_IMAGE_REPOSITORY"] = repository
        if base_image:
            env["MLCI_BASE_IMAGE"] = base_image
        if python_version:
            env["MLCI_PYTHON_VERSION"] = python_version
        if not registry:
            skip.append("image-push")
            note = "image-push skipped: no registry given (pass --registry HOST:PORT to push)"
    if note:
        say(note)

    config = load_config(project / "mlci.yaml", environ=env)
    say("release: the first model, pushed and promoted when it passes")
    release = run_pipeline(config, skip=skip, environ=env, progress=say, command_output=None)

    from mlci_lib.report import render_report

    report = render_report(release.to_dict(), title="mlci demo", base_dir=project)
    report_file = write_text_atomic(project / "mlci-report.md", report.markdown)

    candidate = None
    if worse_candidate and release.passed:
        say("candidate: a deliberately worse model, gated against the champion")
        worse_env = {**env, "EXAMPLE_WORSE_MODEL": "1"}
        worse_config = dataclasses.replace(config, verdict_file=config.output_dir / "candidate-verdict.json")
        candidate = run_pipeline(worse_config, until="gate", environ=worse_env, progress=say)
    stopped = candidate is None or (not candidate.passed and candidate.failed_stage == "gate")
    return DemoResult(
        passed=release.passed and stopped,
        workspace=str(project),
        release=release.to_dict(),
        candidate=candidate.to_dict() if candidate is not None else None,
        report_file=str(report_file),
        image_note=note,
    )
