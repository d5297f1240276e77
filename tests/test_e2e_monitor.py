"""The production loop end to end through act, on a copy of the example project.

1. The release template releases the example: champion version 1 in MLflow, its serving image
   (with the training reference baked in) built, smoke-tested and pushed to the registry, and the
   alert rules rendered.
2. That image serves on Docker with a log volume; bounded traffic whose inputs drifted (incomes up,
   one region more frequent, applicants fifteen years older) is sent to it, and its prediction
   logs are collected when it stops.
3. The monitor template runs on those logs with the model taken from the image: it fails, opens
   one issue and dispatches the retrain workflow once (both on the GitHub API stand-in).
4. The retrain template runs with the inputs of that dispatch, on fresh data drawn from the
   drifted population: it goes through the gate against the champion and promotes version 2.

The MLflow server, the Docker engine and the image registry are real; GitHub's REST API is the
stand-in, which records the dispatch with the shapes of the real API.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlci_lib.demo import example_source
from mlci_lib.monitor.dispatch import run_title
from mlci_lib.serving.prediction_log import log_files, read_prediction_logs
from tests.helpers.act import run_workflow
from tests.helpers.components import REPO_ROOT, free_port, http_ok, wait_until
from tests.helpers.github_api import GitHubStandIn
from tests.helpers.load import send_load

pytestmark = [pytest.mark.workflow, pytest.mark.slow, pytest.mark.docker, pytest.mark.mlflow]

TEMPLATES = REPO_ROOT / "mlci_lib" / "templates" / "github"
TOKEN = "ghs_e2e_loop_9876"
REPO = "octo/app"
IMAGE_NAME = "e2e-loop/loan-approval"
# Its own registered-model name: the session's MLflow server is shared with other tests.
MODEL_NAME = "e2e-loop-loan-approval"

FETCH_TRAINING_DATA = """\
#!/usr/bin/env python3
# Fresh data: the applications of the drifted population, labelled (the example's generator).
import sys

sys.path.insert(0, ".")
from make_data import applications

applications(2000, seed=31, shifted=True, start_id=10000).to_csv("data/train.csv", index=False)
applications(1000, seed=32, shifted=True, start_id=20000).to_csv("data/eval.csv", index=False)
print("fetched fresh training and evaluation data")
"""


def project_files(tmp_path: Path) -> dict[str, str | bytes | Path]:
    source = example_source()
    skip = {"model", ".mlci", "predictions.csv", "__pycache__", "mlci-report.md"}
    files: dict[str, str | bytes | Path] = {
        str(path.relative_to(source)): path
        for path in sorted(source.rglob("*"))
        if path.is_file() and not skip.intersection(path.relative_to(source).parts)
    }
    config = (source / "mlci.yaml").read_text()
    renamed = config.replace("name: loan-approval ", f"name: {MODEL_NAME} ", 1)
    assert renamed != config, "the example's mlci.yaml no longer names the model as expected"
    files["mlci.yaml"] = renamed
    script = tmp_path / "fetch-training-data"
    script.write_text(FETCH_TRAINING_DATA)
    script.chmod(0o755)
    files["scripts/fetch-training-data"] = script
    return files


def template(name: str, replacements: dict[str, str], *, api: str, base_image: str) -> dict[str, Any]:
    text = (TEMPLATES / f"{name}.yml").read_text()
    for old, new in replacements.items():
        text = text.replace(old, new)
    assert "vars." not in text, f"a repository variable was left unfilled in {name}.yml"
    workflow = {("on" if key is True else key): value for key, value in yaml.safe_load(text).items()}
    for job in workflow["jobs"].values():
        job.setdefault("env", {}).update({"MLCI_BASE_IMAGE": base_image, "MLCI_PYTHON_VERSION": "3.11"})
        for step in job["steps"]:
            if any(f"actions/{a}@" in str(step.get("uses")) for a in ("report", "monitor")):
                step["with"].update({"api-url": api, "repository": REPO})
    return workflow


def drifted_traffic() -> list[dict[str, Any]]:
    import sys

    sys.path.insert(0, str(example_source()))
    try:
        from make_data import applications  # the example's own generator
    finally:
        sys.path.pop(0)
    rows = applications(800, seed=41, shifted=True, start_id=40000)
    rows["age"] = rows["age"] + 15
    features = ["age", "income", "debt_ratio", "years_employed", "region"]
    return list(rows[features].to_dict("records"))


def serve_and_log(image: str, logs: Path, rows: list[dict[str, Any]]) -> None:
    logs.mkdir()
    logs.chmod(0o777)  # the image runs as 10001, not as the owner of the folder
    port = free_port()
    name = f"mlci-e2e-loop-{port}"
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "--read-only", "--tmpfs", "/tmp", "--network", "host",
         "-v", f"{logs}:/var/log/mlci", "-e", "MLCI_LOG_DIR=/var/log/mlci", "-e", f"MLCI_SERVE_PORT={port}",
         image],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/health"), 90, "the serving container")
        batch = 10
        statuses = send_load(
            url, lambda i: {"rows": rows[i * batch : (i + 1) * batch]}, requests=len(rows) // batch, threads=4
        )
        assert statuses == {200: len(rows) // batch}, statuses
    finally:
        subprocess.run(["docker", "stop", "-t", "20", name], capture_output=True, timeout=60, check=False)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(read_prediction_logs(log_files([logs]))) < len(rows):
        time.sleep(0.2)
    assert len(read_prediction_logs(log_files([logs]))) == len(rows)


def test_drift_in_production_dispatches_one_retrain_that_replaces_the_champion(
    act_binary: str,
    tmp_path: Path,
    mlflow_server: str,
    image_registry: str,
    python_base_image: str,
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    repository = f"{image_registry}/{IMAGE_NAME}"
    files = project_files(tmp_path)
    common = {
        "${{ vars.MLFLOW_TRACKING_URI }}": mlflow_server,
        "${{ vars.MLFLOW_TRACKING_USERNAME }}": "''",
        "${{ vars.MLCI_IMAGE_REPOSITORY || format('ghcr.io/{0}', github.repository) }}": repository,
        "vars.MLCI_IMAGE_REPOSITORY == ''": "false",
        "${{ vars.MLCI_LABELLED_ROWS }}": "''",
        # The release's deploy job verifies nothing here (no deployment URL).
        "vars.MLCI_DEPLOY_URL != ''": "false",
        "${{ vars.MLCI_DEPLOY_URL }}": "''",
    }
    timings: dict[str, float] = {}
    with GitHubStandIn() as github:
        github.token = TOKEN
        github.add_workflow(
            REPO, "mlci-retrain.yml", name="mlci retrain", run_name=lambda i: run_title(i["reason"])
        )

        def run(name: str, workflow: dict[str, Any], **kwargs: Any) -> Any:
            started = time.monotonic()
            result = run_workflow(
                act_binary, tmp_path / name, workflow, secrets={"GITHUB_TOKEN": TOKEN}, **kwargs
            )
            timings[name] = time.monotonic() - started
            return result

        # 1. the first release: champion v1 and its image, with the reference baked in
        release = run(
            "release", template("release", common, api=github.url, base_image=python_base_image), files=files
        )
        assert release.outcome("mlci", "release") == "success", release.log[-6000:]
        assert release.outcome("monitoring", "release") == "success", release.log[-6000:]
        digest = release.outputs("mlci", "release")["image-digest"]
        image = f"{repository}@{digest}"
        assert str(client.get_model_version_by_alias(MODEL_NAME, "champion").version) == "1"

        # 2. the champion serves drifted traffic, logging it to a volume
        logs = tmp_path / "logs"
        serve_and_log(image, logs, drifted_traffic())

        # 3. the monitor workflow: fails, one issue, one dispatch
        monitor_vars = {"${{ vars.MLCI_SERVING_IMAGE }}": image, "${{ vars.MLCI_LOGS_BUCKET }}": "''"}
        monitor_workflow = template("monitor", monitor_vars, api=github.url, base_image=python_base_image)
        monitor_workflow["env"]["PREDICTION_LOGS"] = str(logs)  # the job runs on this host
        monitor = run("monitor", monitor_workflow, files=files, event="workflow_dispatch")
        assert monitor.returncode != 0, monitor.log[-6000:]
        assert monitor.outcome("monitor", "monitor") == "failure", monitor.log[-6000:]
        outputs = monitor.outputs("monitor", "monitor")
        assert outputs["passed"] == "false" and outputs["dispatch-action"] == "dispatched", monitor.log[
            -6000:
        ]
        assert monitor.outcome("report", "monitor") == "success", monitor.log[-6000:]
        assert monitor.outputs("report", "monitor")["issue-action"] == "created"
        (issue,) = github.issues(REPO)
        assert issue["title"] == "mlci: production drift detected"
        assert "### Monitor: ❌ failed, loan-approval over 800 logged rows" in issue["body"], issue["body"]
        (dispatched,) = github.dispatches(REPO)
        assert dispatched["workflow"] == "mlci-retrain.yml" and dispatched["ref"] == "main"
        assert dispatched["inputs"]["reason"] == "monitor loan-approval: drift"  # the model's own name
        assert TOKEN not in monitor.log

        # 4. the retrain it dispatched: fresh data, the gate against the champion, promotion
        retrain = run(
            "retrain",
            template("retrain", common, api=github.url, base_image=python_base_image),
            files=files,
            event="workflow_dispatch",
            payload={"inputs": dispatched["inputs"]},
        )
        assert retrain.outcome("mlci", "retrain") == "success", retrain.log[-6000:]
        assert f"retraining for: {dispatched['inputs']['reason']}" in retrain.log
        assert "fetched fresh training and evaluation data" in retrain.log
        result = retrain.outputs("mlci", "retrain")
        assert result["passed"] == "true" and result["model-version"] == "2", retrain.log[-6000:]
        assert retrain.outcome("monitoring", "retrain") == "success", retrain.log[-6000:]
    first = client.get_model_version(MODEL_NAME, "1")
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert str(champion.version) == "2"
    # trained on the new data, and gated against version 1 (the max-drop rules compare with it)
    assert champion.tags["mlci.data.fingerprint"] != first.tags["mlci.data.fingerprint"]
    assert champion.tags["mlci.verdict.passed"] == "true"
    assert "max-drop" in retrain.summary and "Metric gate" in retrain.summary, retrain.summary[:3000]
    assert champion.tags["mlci.image.digest"] != digest
    print("act runs took " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
