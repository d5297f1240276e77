"""The release template's deploy job through act: render the pushed image's manifests, run them,
verify the deployment serves the release.

The release job runs as in test_e2e_workflows.py (real MLflow server, Docker engine and image
registry; the example project). The deploy job runs as the template writes it, with one step
replaced: no Kubernetes API server can run here, so instead of ``kubectl apply`` the cluster's
part is played by the Docker engine, which runs the rendered Deployment's container spec (the
image by digest, its user, read-only root, tmpfs, probes) on loopback. The template's own verify
step then checks that container at the environment's URL.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.act import run_workflow
from tests.helpers.components import REPO_ROOT, free_port
from tests.helpers.github_api import GitHubStandIn
from tests.test_e2e_workflows import MODEL_NAME, TOKEN, project_files, template

pytestmark = [pytest.mark.workflow, pytest.mark.slow, pytest.mark.docker, pytest.mark.mlflow]

# Its own registered-model name on the session's MLflow server (the other release tests count
# versions of theirs).
DEPLOY_MODEL = "e2e-deploy-loan-approval"
CLUSTER = REPO_ROOT / "tests" / "helpers" / "cluster_stand_in.py"


def _cluster_step(port: int, state: Path) -> dict[str, Any]:
    """The apply step's stand-in: the rendered pod runs on Docker until the test stops it."""
    return {
        "id": "apply",
        "name": "cluster stand-in: run the rendered pod on the Docker engine",
        "env": {
            "MANIFESTS": "${{ steps.render.outputs.folder }}",
            "CLUSTER": str(CLUSTER),
            "PORT": str(port),
            "STATE": str(state),
        },
        "run": (
            'setsid nohup python3 "$CLUSTER" "$MANIFESTS" "$PORT" "$STATE" </dev/null >"$STATE.log" 2>&1 &\n'
            'for _ in $(seq 900); do [ -f "$STATE/ready" ] && exit 0; '
            '[ -f "$STATE/failed" ] && { cat "$STATE/failed"; exit 1; }; sleep 0.2; done; exit 1'
        ),
    }


def test_the_release_template_deploys_what_it_pushed_and_verifies_it(
    act_binary: str, tmp_path: Path, mlflow_server: str, image_registry: str, python_base_image: str
) -> None:
    port = free_port()
    state = tmp_path / "cluster"
    files = project_files()
    config = str(files["mlci.yaml"])
    files["mlci.yaml"] = config.replace(f"name: {MODEL_NAME} ", f"name: {DEPLOY_MODEL} ", 1)
    assert files["mlci.yaml"] != config
    with GitHubStandIn() as github:
        workflow = template(
            "release",
            mlflow=mlflow_server,
            repository=f"{image_registry}/e2e-deploy/loan-approval",
            api=github.url,
            base_image=python_base_image,
            deploy_url=f"http://127.0.0.1:{port}",
        )
        deploy = workflow["jobs"]["deploy"]
        assert deploy["environment"]["name"] and deploy["needs"] == "release"
        steps = deploy["steps"]
        index = next(i for i, step in enumerate(steps) if step.get("id") == "apply")
        # What the stand-in replaces: the template applies the rendered folder with the kubeconfig
        # of the environment's secret.
        assert steps[index]["env"]["MANIFESTS"] == "${{ steps.render.outputs.folder }}"
        assert "secrets.KUBECONFIG" in steps[index]["env"]["KUBECONFIG_DATA"]
        assert 'kubectl apply -k "$MANIFESTS"' in steps[index]["run"]
        steps[index] = _cluster_step(port, state)
        try:
            run = run_workflow(
                act_binary, tmp_path, workflow, files=files, secrets={"GITHUB_TOKEN": TOKEN}, timeout=1500
            )
        finally:
            (state / "stop").parent.mkdir(parents=True, exist_ok=True)
            (state / "stop").write_text("")
    deadline = time.monotonic() + 60
    while (
        not (state / "stopped").exists() and not (state / "failed").exists() and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    log = run.log[-8000:]
    assert run.outcome("mlci", "release") == "success", log
    digest = run.outputs("mlci", "release")["image-digest"]
    assert digest.startswith("sha256:"), log
    assert run.outcome("render", "deploy") == "success", log
    rendered = run.outputs("render", "deploy")
    assert rendered["image"].endswith(f"@{digest}"), rendered
    assert "deployment.yaml" in rendered["files"] and "kustomization.yaml" in rendered["files"]
    # the release job's alert rules (its mlci-monitoring artifact), as a PrometheusRule
    assert "prometheusrule.yaml" in rendered["files"].split(", "), rendered
    assert run.outcome("apply", "deploy") == "success", log + (state.with_suffix(".log")).read_text()
    assert (state / "ready").read_text() == rendered["image"], "the cluster stand-in ran another image"
    assert run.outcome("verify", "deploy") == "success", log
    assert "mlci deploy verify: ✅ verified" in run.summary, run.summary
    # The deploy job keeps its verdict: the pushed digest, verified at the environment's URL.
    kept = tmp_path / "artifacts" / "mlci-deploy" / ".mlci"
    verdict = json.loads((kept / "deploy-verdict.json").read_text())
    assert verdict["passed"] is True and verdict["image_digest"] == digest
    assert verdict["url"] == f"http://127.0.0.1:{port}"
    assert {c["name"]: c["outcome"] for c in verdict["checks"]} == {
        "health": "pass",
        "model digest": "pass",
        "verdict digest": "pass",
        "predictions": "pass",
    }
    render_result = json.loads((kept / "deploy-render.json").read_text())
    assert render_result["image_digest"] == digest and render_result["namespace"] == "ml"
    assert (state / "stopped").exists(), "the rendered pod's container did not stop cleanly"
