"""``mlci init``: write the starter workflows, ``mlci.yaml`` and a starter gate into a repository.

Nothing is overwritten without ``force``: when any file to write already exists, nothing at all is
written and the error names the first such file. A ``.gitignore`` is the exception: mlci's lines
(the results folder, the report, the model) are added to the repository's own. The written
``mlci.yaml`` validates against the packaged schema.
"""

from __future__ import annotations

import dataclasses
import os
import re
from importlib import resources
from pathlib import Path
from typing import ClassVar

from mlci_lib.errors import InputError, UsageError
from mlci_lib.results import Result

CI_SYSTEMS = ("github", "gitlab", "jenkins")
#: Template file -> where it goes in the repository.
GITHUB_WORKFLOWS = {
    "pr.yml": ".github/workflows/mlci-pr.yml",
    "release.yml": ".github/workflows/mlci-release.yml",
    "retrain.yml": ".github/workflows/mlci-retrain.yml",
    "monitor.yml": ".github/workflows/mlci-monitor.yml",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_REPOSITORY = re.compile(r"^[a-z0-9][a-z0-9._:/-]{0,254}$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"`$\\]+$")

_CONFIG = """\
# yaml-language-server: $schema=https://raw.githubusercontent.com/mlci-dev/mlci/v1/mlci_lib/schemas/mlci.schema.json
# The pipeline `mlci run` executes (written by `mlci init`). Stages run in this order, each when it
# has an entry below: data-check, train, evaluate, baseline, gate, model-push, image-build,
# image-smoke, image-push, deploy, promote. Paths are relative to this file; ${{VAR}} and ${{VAR:-default}}
# read environment variables. `mlci run --until gate` stops after the gate (pull requests);
# `mlci run --stage NAME` runs one stage.
version: 1

model:
  name: {model_name}
  path: model                     # the folder your training writes (mlci_lib.save_model)
  alias: champion                 # the gate's baseline; promotion moves it
{registry}
data:                             # fingerprinted into the verdict and the registry tags
  - data/train.csv
  - data/eval.csv

stages:
  data-check:
    data: data/train.csv
    suite: data.suite.yaml        # start one with: mlci data profile data/train.csv -o data.suite.yaml
  train:
    command: [python, train.py]   # an argv list, run without a shell; or shell: "make train"
    outputs: [model]
  evaluate:
    command: [python, evaluate.py]
    predictions: predictions.csv  # columns: id, label, prediction, score (or proba_<class>)
  baseline:
    data: data/eval.csv           # the champion predicts on the same rows
    label-column: label
  gate:
    rules: gate.yaml
  model-push:
    pip-requirements: [scikit-learn, skops, pandas, numpy]
  image-build:
    repository: ${{MLCI_IMAGE_REPOSITORY:-{image_repository}}}
    reference: data/train.csv     # baked into the image: what the alert rules compare production with
  image-smoke:
    data: data/eval.csv
    requests: 100
  image-push: {{}}
  # deploy: {{mode: render, verify: {{url: "https://..."}}}}   # render (and verify) the pushed image
  promote: {{}}

deploy:                           # where the image runs (mlci deploy render; the release deploy job)
  target: kubernetes              # or kserve (an InferenceService)
  name: {deploy_name}
  namespace: default
  replicas: 2
  output: deploy                  # the manifests and their kustomization.yaml go to deploy/base
"""

_GATE = """\
# The gate (written by `mlci init`): what a candidate must achieve to replace the champion.
# Each rule is decided on a paired bootstrap interval over the evaluation rows.
metrics:
  accuracy: {min: 0.70, max-drop: 0.01}
  roc_auc: {max-drop: 0.01}
# slices:                     # per-group rules, e.g. for a sensitive attribute
#   columns: [group]
#   metrics:
#     recall: {max-gap: 0.10}
# on-inconclusive: what a rule does when its interval straddles the threshold (the rows cannot
# tell). fail blocks the candidate until the evidence decides; warn lets it through with a
# warning; pass lets it through quietly. On a small evaluation set an equally good retrain is
# often inconclusive: the verdict then says, per rule, the smallest change these rows can detect
# and how many rows would decide. Add rows, or choose warn if a retrain within that margin is
# acceptable. An undefined metric (e.g. AUC with one class in the labels) fails whatever this says.
on-inconclusive: fail
"""

#: What the pipeline writes into the work tree: results, the embedded registry, the report.
GITIGNORE_LINES = (
    ".mlci/",
    "mlci-report.md",
    "mlci-plots/",
    "model/",
    "predictions.csv",
)
_GITIGNORE_HEAD = "# written by mlci runs (added by `mlci init`)"

#: The first thing to run after `mlci init`, as mlci.yaml's data-check stage expects it.
PROFILE_HINT = "mlci data profile data/train.csv -o data.suite.yaml"


def deploy_name(model_name: str) -> str:
    """A Kubernetes resource name (DNS-1123 label) for the model: lowercase, '-' for the rest."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower())[:63].strip("-")
    return name or "model"


def gitignore_text(existing: str = "") -> str:
    """``existing`` with mlci's lines added where missing (nothing a user wrote is removed)."""
    present = {line.strip() for line in existing.splitlines()}
    missing = [line for line in GITIGNORE_LINES if line not in present]
    if not missing:
        return existing
    head = existing if not existing or existing.endswith("\n") else existing + "\n"
    gap = "\n" if head else ""
    return head + gap + "\n".join([_GITIGNORE_HEAD, *missing]) + "\n"


@dataclasses.dataclass(frozen=True)
class InitResult(Result):
    SCHEMA: ClassVar[str] = "mlci.init"
    SCHEMA_VERSION: ClassVar[int] = 1

    directory: str
    written: tuple[str, ...]
    overwritten: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return True


def _template(*parts: str) -> str:
    return resources.files("mlci_lib").joinpath("/".join(("templates", *parts))).read_text(encoding="utf-8")


def planned_files(
    *,
    model_name: str,
    tracking_uri: str | None = None,
    image_repository: str | None = None,
    ci: tuple[str, ...] = ("github",),
    config_name: str = "mlci.yaml",
) -> dict[str, str]:
    """Relative path -> content of every file ``mlci init`` writes."""
    if not _NAME.match(model_name or ""):
        raise UsageError(
            f"option --model-name {model_name!r} is not a valid model name",
            hint="use letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
    repository = image_repository or f"localhost:5000/{model_name.lower()}"
    if not _REPOSITORY.match(repository):
        raise UsageError(
            f"option --image-repository {repository!r} is not an image repository name",
            hint="write it like ghcr.io/owner/name or localhost:5000/name (lower case)",
        )
    registry = ""
    if tracking_uri:
        if not _URI.match(tracking_uri):
            raise UsageError(
                f"option --tracking-uri {tracking_uri!r} is not a URI",
                hint="write it like https://mlflow.example.com or sqlite:///path/mlflow.db",
            )
        registry = f"\nregistry:\n  tracking-uri: {tracking_uri}\n"
    unknown = [c for c in ci if c not in CI_SYSTEMS]
    if unknown:
        raise UsageError(
            f"option --ci: unknown CI system {unknown[0]!r}", hint=f"use {', '.join(CI_SYSTEMS)}"
        )
    files = {
        config_name: _CONFIG.format(
            model_name=model_name,
            registry=registry,
            image_repository=repository,
            deploy_name=deploy_name(model_name),
        ),
        "gate.yaml": _GATE,
        ".gitignore": gitignore_text(),
    }
    if "github" in ci:
        for source, target in GITHUB_WORKFLOWS.items():
            files[target] = _template("github", source)
    if "gitlab" in ci:
        files[".gitlab-ci.yml"] = _template("gitlab", ".gitlab-ci.yml")
    if "jenkins" in ci:
        files["Jenkinsfile"] = _template("jenkins", "Jenkinsfile")
    return files


def init_project(
    directory: str | os.PathLike[str] = ".",
    *,
    model_name: str,
    tracking_uri: str | None = None,
    image_repository: str | None = None,
    ci: tuple[str, ...] = ("github",),
    force: bool = False,
) -> InitResult:
    """Write the starter files into ``directory``; if one exists, write nothing unless ``force``."""
    from mlci_lib.files import write_text_atomic

    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is not a directory", hint="pass the repository's folder with --dir")
    files = planned_files(
        model_name=model_name, tracking_uri=tracking_uri, image_repository=image_repository, ci=ci
    )
    # A repository's own .gitignore is extended, never replaced, and never blocks init.
    if (root / ".gitignore").is_file():
        files[".gitignore"] = gitignore_text((root / ".gitignore").read_text(encoding="utf-8"))
    existing = [name for name in files if (root / name).exists() and name != ".gitignore"]
    if existing and not force:
        raise InputError(
            f"{root / existing[0]} already exists"
            + (f" (and {len(existing) - 1} more of the files to write)" if len(existing) > 1 else "")
            + "; nothing was written",
            hint="pass --force to overwrite them, or move them away",
        )
    for name, text in files.items():
        write_text_atomic(root / name, text)
    return InitResult(
        directory=str(root.resolve()),
        written=tuple(files),
        overwritten=tuple(existing),
    )
