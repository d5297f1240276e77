"""The starter workflows end to end through act, on a copy of the example project.

Our actions are mapped to the work tree; the MLflow server, the Docker engine and the image
registry are real; only GitHub's REST API is a local stand-in. The templates run as `mlci init`
writes them, with the repository variables a user would set (tracking server, image repository)
filled in, the report pointed at the stand-in API, and the offline base image of these machines.

Order: a first release (no champion: absolute rules; pushed, image built, smoke-tested, pushed,
promoted), two pull-request runs (one comment, updated), then a release of a deliberately worse
model, which must fail at the gate and push nothing.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlci_lib.demo import example_source
from tests.helpers.act import run_workflow
from tests.helpers.components import REPO_ROOT
from tests.helpers.github_api import GitHubStandIn

pytestmark = [pytest.mark.workflow, pytest.mark.slow, pytest.mark.docker, pytest.mark.mlflow]

TEMPLATES = REPO_ROOT / "mlci_lib" / "templates" / "github"
TOKEN = "ghs_e2e_token_1234"
IMAGE_NAME = "e2e-act/loan-approval"
# Its own registered-model name: the MLflow server is shared by the whole session, and the
# in-process end-to-end test registers the example under its own name.
MODEL_NAME = "e2e-act-loan-approval"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ]
)


def project_files() -> dict[str, str | bytes | Path]:
    source = example_source()
    skip = {"model", ".mlci", "predictions.csv", "__pycache__", "mlci-report.md"}
    files: dict[str, str | bytes | Path] = {}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_file() and not skip.intersection(relative.parts):
            files[str(relative)] = path
    config = (source / "mlci.yaml").read_text()
    renamed = config.replace("name: loan-approval ", f"name: {MODEL_NAME} ", 1)
    assert renamed != config, "the example's mlci.yaml no longer names the model as expected"
    files["mlci.yaml"] = renamed
    return files


def template(
    name: str, *, mlflow: str, repository: str, api: str, base_image: str, deploy_url: str = ""
) -> dict[str, Any]:
    text = (TEMPLATES / f"{name}.yml").read_text()
    # The deploy job verifies the deployment at MLCI_DEPLOY_URL when the environment sets one.
    text = text.replace("vars.MLCI_DEPLOY_URL != ''", "true" if deploy_url else "false")
    text = text.replace("${{ vars.MLCI_DEPLOY_URL }}", deploy_url or "''")
    text = text.replace("${{ vars.MLFLOW_TRACKING_URI }}", mlflow)
    text = text.replace("${{ vars.MLFLOW_TRACKING_USERNAME }}", "''")
    text = text.replace("${{ vars.MLFLOW_READONLY_USERNAME }}", "''")
    text = text.replace(
        "${{ vars.MLCI_IMAGE_REPOSITORY || format('ghcr.io/{0}', github.repository) }}", repository
    )
    text = text.replace("vars.MLCI_IMAGE_REPOSITORY == ''", "false")
    assert "vars." not in text, "a repository variable was left unfilled"
    # YAML 1.1 reads the key `on` as true; put the name back before the harness serializes it.
    workflow = {("on" if key is True else key): value for key, value in yaml.safe_load(text).items()}
    for job in workflow["jobs"].values():
        job.setdefault("env", {}).update({"MLCI_BASE_IMAGE": base_image, "MLCI_PYTHON_VERSION": "3.11"})
        for step in job["steps"]:
            if "actions/report@" in str(step.get("uses")):
                step["with"].update({"api-url": api, "repository": "octo/app"})
    return workflow


def registry_json(registry: str, path: str, accept: str | None = None) -> Any:
    request = urllib.request.Request(
        f"http://{registry}/v2/{path}", headers={"Accept": accept} if accept else {}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def registry_tags(registry: str) -> list[str]:
    try:
        return sorted(registry_json(registry, f"{IMAGE_NAME}/tags/list").get("tags") or [])
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []
        raise


def image_labels(registry: str, digest: str) -> dict[str, str]:
    manifest = registry_json(registry, f"{IMAGE_NAME}/manifests/{digest}", MANIFEST_TYPES)
    config = registry_json(registry, f"{IMAGE_NAME}/blobs/{manifest['config']['digest']}")
    return dict(config["config"]["Labels"])


def test_release_pr_twice_and_a_worse_release(
    act_binary: str,
    tmp_path: Path,
    mlflow_server: str,
    image_registry: str,
    python_base_image: str,
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    repository = f"{image_registry}/{IMAGE_NAME}"
    files = project_files()
    with GitHubStandIn() as github:
        github.token = TOKEN

        def workflow(name: str) -> dict[str, Any]:
            return template(
                name,
                mlflow=mlflow_server,
                repository=repository,
                api=github.url,
                base_image=python_base_image,
            )

        # 1. First release: no champion yet.
        release = run_workflow(
            act_binary,
            tmp_path / "release-1",
            workflow("release"),
            files=files,
            secrets={"GITHUB_TOKEN": TOKEN},
        )
        assert release.outcome("mlci", "release") == "success", release.log[-6000:]
        outputs = release.outputs("mlci", "release")
        assert outputs["passed"] == "true" and outputs["model-version"] == "1"
        digest = outputs["image-digest"]
        assert digest.startswith("sha256:")
        champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
        assert str(champion.version) == "1"
        assert champion.tags["mlci.image.digest"] == digest
        assert champion.tags["mlci.verdict.passed"] == "true"
        commit = champion.tags["mlci.git.commit"]
        labels = image_labels(image_registry, digest)
        assert labels["org.opencontainers.image.revision"] == commit
        assert any(value == MODEL_NAME for value in labels.values()), labels
        tags = registry_tags(image_registry)
        assert commit[:12] in tags and "latest" in tags
        assert "mlci release" in release.summary and "Metric gate" in release.summary

        # 2. A pull request, run twice: the gate compares with the champion; one comment, updated.
        payload = {"action": "synchronize", "number": 7, "pull_request": {"number": 7, "head": {"ref": "f"}}}
        for attempt in (1, 2):
            pr = run_workflow(
                act_binary,
                tmp_path / f"pr-{attempt}",
                workflow("pr"),
                files=files,
                secrets={"GITHUB_TOKEN": TOKEN},
                event="pull_request",
                payload=payload,
            )
            assert pr.outcome("mlci", "pipeline") == "success", pr.log[-6000:]
            assert pr.outcome("report", "pipeline") == "success", pr.log[-6000:]
            assert pr.outputs("report", "pipeline")["comment-action"] == (
                "created" if attempt == 1 else "updated"
            )
        comments = github.comments("octo/app", 7)
        assert len(comments) == 1, comments
        body = comments[0]["body"]
        assert body.startswith("<!-- mlci-report:default -->") and "mlci pr" in body
        assert "max-drop" in body, "the PR gate did not compare with the champion"
        assert [str(v.version) for v in client.search_model_versions(f"name='{MODEL_NAME}'")] == ["1"]

        # 3. A deliberately worse model on the release path: fails at the gate, pushes nothing.
        worse = run_workflow(
            act_binary,
            tmp_path / "release-worse",
            workflow("release"),
            files=files,
            secrets={"GITHUB_TOKEN": TOKEN},
            env={"EXAMPLE_WORSE_MODEL": "1"},
        )
        assert worse.outcome("mlci", "release") == "failure", worse.log[-6000:]
        # One ::error:: per failing rule (the runner escapes ':' in annotation titles as %3A).
        for rule in ("accuracy min", "accuracy max-drop", "roc_auc min", "roc_auc max-drop"):
            assert f"::error title=mlci run%3A gate%3A {rule} failed::" in worse.log, worse.log[-6000:]
        assert worse.outcome("report", "release") == "success"
        assert "failed at" in worse.summary and "gate" in worse.summary
        assert [str(v.version) for v in client.search_model_versions(f"name='{MODEL_NAME}'")] == ["1"]
        assert str(client.get_model_version_by_alias(MODEL_NAME, "champion").version) == "1"
        assert registry_tags(image_registry) == tags, "an image was pushed after a failed gate"
