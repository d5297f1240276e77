"""The production loop end to end through act, on a copy of the example project.

1. The release template releases the example: champion version 1 in MLflow, its serving image
   (with the training reference baked in) built, smoke-tested and pushed to the registry, and the
   alert rules rendered as an artifact (drift alerts that hold for 1 s: the template's ALERT_HOLD).
2. That image serves on Docker with a log volume, scraped by Debian's Prometheus with those rules
   loaded; bounded traffic whose inputs drifted (incomes up, one region more frequent, applicants
   fifteen years older) is sent to it. The input-drift alert fires, Debian's Alertmanager routes
   it to ``mlci monitor receive``, which dispatches the retrain workflow (GitHub API stand-in).
   The prediction logs are collected when the container stops.
3. The monitor template runs on those logs with the model taken from the image: it fails and opens
   one issue; its own dispatch, for the same drift, is held back (the retrain the alert dispatched
   is queued): one incident, one dispatch.
4. The retrain template runs with the inputs of that dispatch, on fresh data drawn from the
   drifted population: it goes through the gate against the champion and promotes version 2.

The MLflow server, the Docker engine, the image registry, Prometheus and Alertmanager are real;
GitHub's REST API is the stand-in, which records the dispatch with the shapes of the real API.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlci_lib.demo import example_source
from mlci_lib.monitor.dispatch import run_title
from mlci_lib.monitor.receive import RETRAIN_ALERTS
from mlci_lib.serving.prediction_log import log_files, read_prediction_logs
from tests.helpers.act import run_workflow
from tests.helpers.components import (
    REPO_ROOT,
    AlertmanagerServer,
    PrometheusServer,
    free_port,
    http_ok,
    wait_until,
)
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


@contextlib.contextmanager
def serving(image: str, logs: Path) -> Iterator[str]:
    """The image serving on the host's network, logging into ``logs``; yields its ``host:port``."""
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
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health"), 90, "the serving container")
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["docker", "stop", "-t", "20", name], capture_output=True, timeout=60, check=False)


def send_drifted(target: str, rows: list[dict[str, Any]]) -> None:
    batch = 10
    statuses = send_load(
        f"http://{target}",
        lambda i: {"rows": rows[i * batch : (i + 1) * batch]},
        requests=len(rows) // batch,
        threads=4,
        pause=0.1,  # over a few seconds: several scrapes see the counters grow
    )
    assert statuses == {200: len(rows) // batch}, statuses


def collected(logs: Path, rows: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(read_prediction_logs(log_files([logs]))) < rows:
        time.sleep(0.2)
    assert len(read_prediction_logs(log_files([logs]))) == rows


@contextlib.contextmanager
def alert_receiver(github: GitHubStandIn, folder: Path) -> Iterator[tuple[str, Path]]:
    """``mlci monitor receive`` dispatching on the stand-in; yields its URL and its log."""
    port = free_port()
    log = folder / "receive.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLCI_"))}
    env.update(
        GITHUB_TOKEN=TOKEN, GITHUB_API_URL=github.url, GITHUB_REPOSITORY=REPO, PYTHONPATH=str(REPO_ROOT)
    )
    command = [sys.executable, "-m", "mlci_lib", "monitor", "receive", "--port", str(port), "--ref", "main",
               "--state-file", str(folder / "receive-state.json")]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/healthz"), 60, "mlci monitor receive", log)
        yield url, log
    finally:
        process.terminate()
        assert process.wait(20) == 0, log.read_text()


def route_alerts(alertmanager: AlertmanagerServer, job: str, receiver: str) -> None:
    """Alertmanager sends the job's alerts to the receiver (the session's other alerts nowhere)."""
    alertmanager.reload_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "nobody",
                    "routes": [
                        {
                            "receiver": "retrain",
                            "matchers": [f'job="{job}"'],
                            "group_by": ["alertname", "job"],
                            "group_wait": "1s",
                            "group_interval": "1s",
                            "repeat_interval": "1h",
                        }
                    ],
                },
                "receivers": [
                    {"name": "nobody"},
                    {"name": "retrain", "webhook_configs": [{"url": f"{receiver}/alerts"}]},
                ],
            }
        )
    )


@contextlib.contextmanager
def quiet_afterwards(
    prometheus: PrometheusServer, alertmanager: AlertmanagerServer, job: str
) -> Iterator[None]:
    """Leave the session's Prometheus with no rules and the job's alerts resolved in Alertmanager,
    so that no later test gets them."""
    try:
        yield
    finally:
        prometheus.configure([])
        time.sleep(1)  # what Prometheus' notifier had queued reaches Alertmanager first
        with urllib.request.urlopen(f"{alertmanager.url}/api/v2/alerts", timeout=10) as response:
            active = [a for a in json.loads(response.read()) if a["labels"].get("job") == job]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        resolved = [{"labels": a["labels"], "startsAt": a["startsAt"], "endsAt": now} for a in active]
        if resolved:
            request = urllib.request.Request(
                f"{alertmanager.url}/api/v2/alerts",
                data=json.dumps(resolved).encode(),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200


def api(prometheus: PrometheusServer, path: str, **params: str) -> Any:
    """``GET /api/v1/<path>``'s data."""
    url = f"{prometheus.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]


def query(prometheus: PrometheusServer, promql: str) -> list[dict[str, Any]]:
    return list(api(prometheus, "query", query=promql)["result"])


def test_drift_in_production_alerts_and_dispatches_one_retrain_that_replaces_the_champion(
    act_binary: str,
    tmp_path: Path,
    mlflow_server: str,
    image_registry: str,
    python_base_image: str,
    prometheus_server: PrometheusServer,
    alertmanager_server: AlertmanagerServer,
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
        # Drift alerts that fire once a drift has held for a second, not ten minutes.
        "ALERT_HOLD: 10m ": "ALERT_HOLD: 1s ",
    }
    timings: dict[str, float] = {}
    with GitHubStandIn() as github, alert_receiver(github, tmp_path) as (receiver, receiver_log):
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

        # 1. the first release: champion v1 and its image, with the reference baked in, and its rules
        release = run(
            "release", template("release", common, api=github.url, base_image=python_base_image), files=files
        )
        assert release.outcome("mlci", "release") == "success", release.log[-6000:]
        assert release.outcome("monitoring", "release") == "success", release.log[-6000:]
        digest = release.outputs("mlci", "release")["image-digest"]
        image = f"{repository}@{digest}"
        assert str(client.get_model_version_by_alias(MODEL_NAME, "champion").version) == "1"
        rules_file = tmp_path / "release" / "artifacts" / "mlci-monitoring" / "alerts.yml"
        rules = yaml.safe_load(rules_file.read_text())["groups"][0]["rules"]
        drift_rules = [r for r in rules if r["alert"] == "MlciFeatureMeanShift"]
        assert drift_rules and all(r["for"] == "1s" for r in drift_rules), drift_rules
        # the job the deploy manifests' ServiceMonitor gives the series (the Service, named after
        # mlci.yaml's model); the model label is the model's own name, which the reason names
        job = drift_rules[0]["labels"]["job"]
        assert job == MODEL_NAME and drift_rules[0]["labels"]["model"] == "loan-approval", drift_rules[0]

        # 2. the champion serves drifted traffic, logging it to a volume; Prometheus scrapes it with
        # the release's rules, and Alertmanager sends the drift alert to mlci monitor receive
        started = time.monotonic()
        logs = tmp_path / "logs"
        rows = drifted_traffic()
        route_alerts(alertmanager_server, job, receiver)
        with serving(image, logs) as target, quiet_afterwards(prometheus_server, alertmanager_server, job):
            prometheus_server.configure(
                [{"job_name": job, "static_configs": [{"targets": [target]}]}],
                rule_files=[str(rules_file)],
                extra={
                    "alerting": {
                        "alertmanagers": [
                            {
                                "static_configs": [
                                    {"targets": [alertmanager_server.url.removeprefix("http://")]}
                                ]
                            }
                        ]
                    }
                },
            )
            prometheus_server.wait_up(job, 1)  # a sample before the traffic: the counters grow from it
            send_drifted(target, rows)
            firing = f'ALERTS{{alertname="MlciFeatureMeanShift",alertstate="firing",job="{job}"}}'
            wait_until(lambda: bool(query(prometheus_server, firing)), 60, "the input-drift alert firing")
            wait_until(lambda: bool(github.dispatches(REPO)), 60, "the receiver's dispatch", receiver_log)
            moved = {series["metric"]["feature"] for series in query(prometheus_server, firing)}
            # the drift rules as Prometheus prints them (an alert's link shows its expression so)
            drift_exprs = {
                rule["query"]
                for group in api(prometheus_server, "rules")["groups"]
                for rule in group["rules"]
                if rule["name"] in RETRAIN_ALERTS
            }
        collected(logs, len(rows))
        timings["alert"] = time.monotonic() - started
        # the inputs that moved most from the baked reference: applicants older, incomes higher
        assert {"age", "income"} <= moved, moved
        (dispatched,) = github.dispatches(REPO)
        assert dispatched["workflow"] == "mlci-retrain.yml" and dispatched["ref"] == "main"
        assert dispatched["inputs"]["reason"] == "monitor loan-approval: drift"
        # the verdict link is the alert's: a drift rule of the release's, in Prometheus' graph page
        link = urllib.parse.urlsplit(dispatched["inputs"]["verdict"])
        assert link.path == "/graph", dispatched["inputs"]
        assert urllib.parse.parse_qs(link.query)["g0.expr"][0] in drift_exprs, dispatched["inputs"]
        (queued,) = github.runs(REPO)
        assert queued["display_title"] == run_title(dispatched["inputs"]["reason"])
        assert queued["status"] == "queued"
        assert "MlciFeatureMeanShift" in receiver_log.read_text()

        # 3. the monitor workflow: fails, one issue; its dispatch for the same drift is held back
        # the logs are on this host, where the job runs: the mounted-volume route
        monitor_vars = {
            "${{ vars.MLCI_SERVING_IMAGE }}": image,
            "${{ vars.MLCI_LOGS_BUCKET }}": "''",
            "${{ vars.MLCI_LOGS_ARTIFACT }}": "''",
        }
        monitor_workflow = template("monitor", monitor_vars, api=github.url, base_image=python_base_image)
        monitor_workflow["env"]["PREDICTION_LOGS"] = str(logs)  # the job runs on this host
        monitor = run("monitor", monitor_workflow, files=files, event="workflow_dispatch")
        assert monitor.returncode != 0, monitor.log[-6000:]
        assert monitor.outcome("monitor", "monitor") == "failure", monitor.log[-6000:]
        outputs = monitor.outputs("monitor", "monitor")
        assert outputs["passed"] == "false", monitor.log[-6000:]
        assert outputs["dispatch-action"] == "already-running", monitor.log[-6000:]
        assert outputs["dispatch-reason"] == dispatched["inputs"]["reason"]
        assert monitor.outcome("report", "monitor") == "success", monitor.log[-6000:]
        assert monitor.outputs("report", "monitor")["issue-action"] == "created"
        (issue,) = github.issues(REPO)
        assert issue["title"] == "mlci: production drift detected"
        assert "### Monitor: ❌ failed, loan-approval over 800 logged rows" in issue["body"], issue["body"]
        assert len(github.dispatches(REPO)) == 1  # one incident, one dispatch
        assert TOKEN not in monitor.log

        # 4. the retrain the alert dispatched: fresh data, the gate against the champion, promotion
        github.set_run(REPO, queued["id"], status="in_progress")
        retrain = run(
            "retrain",
            template("retrain", common, api=github.url, base_image=python_base_image),
            files=files,
            event="workflow_dispatch",
            payload={"inputs": dispatched["inputs"]},
        )
        assert retrain.outcome("mlci", "retrain") == "success", retrain.log[-6000:]
        github.set_run(REPO, queued["id"], status="completed", conclusion="success")
        inputs = dispatched["inputs"]
        assert f"retraining for: {inputs['reason']} {inputs['verdict']}" in retrain.log
        assert "fetched fresh training and evaluation data" in retrain.log
        result = retrain.outputs("mlci", "retrain")
        assert result["passed"] == "true" and result["model-version"] == "2", retrain.log[-6000:]
        assert retrain.outcome("monitoring", "retrain") == "success", retrain.log[-6000:]
    log = receiver_log.read_text()
    assert log.count(": dispatched (") == 1, log
    assert TOKEN not in log
    first = client.get_model_version(MODEL_NAME, "1")
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert str(champion.version) == "2"
    # trained on the new data, and gated against version 1 (the max-drop rules compare with it)
    assert champion.tags["mlci.data.fingerprint"] != first.tags["mlci.data.fingerprint"]
    assert champion.tags["mlci.verdict.passed"] == "true"
    assert "max-drop" in retrain.summary and "Metric gate" in retrain.summary, retrain.summary[:3000]
    assert champion.tags["mlci.image.digest"] != digest
    print("took " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
