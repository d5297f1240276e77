"""Retrain dispatch: `mlci monitor check --on-fail dispatch` and `mlci monitor receive`, against the
GitHub API stand-in (workflow_dispatch and the runs list) and, for the receiver, a real Alertmanager
routing alerts to it."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import io
import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier

from mlci_lib.cli import main
from mlci_lib.errors import InputError, ServiceError, UsageError
from mlci_lib.models import save_model
from mlci_lib.monitor.dispatch import (
    ALREADY_RUNNING,
    COOLDOWN,
    DISPATCHED,
    DispatchTarget,
    dispatch_retrain,
    drift_reason,
    run_title,
)
from mlci_lib.monitor.receive import parse_notification, retrain_reasons
from mlci_lib.retry import RetryPolicy
from mlci_lib.runner import CiRunner
from tests.helpers.components import REPO_ROOT, AlertmanagerServer, free_port, http_ok, wait_until
from tests.helpers.github_api import GitHubStandIn

REPO = "octo/app"
TOKEN = "ghs_dispatch_test_4242"
FAST = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02)


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as server:
        server.token = TOKEN
        server.add_workflow(
            REPO, "mlci-retrain.yml", name="mlci retrain", run_name=lambda i: run_title(i["reason"])
        )
        yield server


def target(github: GitHubStandIn, tmp_path: Path, **changes: Any) -> DispatchTarget:
    settings: dict[str, Any] = {
        "repository": REPO,
        "api_url": github.url,
        "state_file": tmp_path / "state.json",
        "cooldown": datetime.timedelta(hours=6),
    }
    settings.update(changes)
    return DispatchTarget(**settings)


def dispatch(github: GitHubStandIn, tmp_path: Path, reason: str = "input drift", **changes: Any) -> Any:
    now = changes.pop("now", None)
    return dispatch_retrain(
        reason,
        "https://ci.example/run/1",
        target(github, tmp_path, **changes),
        token=TOKEN,
        now=now,
        policy=FAST,
    )


# -- the library against the stand-in -------------------------------------------------------------


def test_a_dispatch_posts_ref_and_inputs_as_github_takes_them(github: GitHubStandIn, tmp_path: Path) -> None:
    result = dispatch(github, tmp_path, ref="release")
    assert result.action == DISPATCHED and result.dispatched
    (sent,) = github.dispatches(REPO)
    assert sent["workflow"] == "mlci-retrain.yml" and sent["ref"] == "release"
    assert sent["inputs"] == {"reason": "input drift", "verdict": "https://ci.example/run/1"}
    post = [r for r in github.requests if r.method == "POST"]
    assert [r.path for r in post] == [f"/repos/{REPO}/actions/workflows/mlci-retrain.yml/dispatches"]
    assert post[0].status == 204 and post[0].authorization == f"Bearer {TOKEN}"
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["schema"] == "mlci.dispatch-state"
    assert list(state["dispatches"]) == [f"{REPO} mlci-retrain.yml input drift"]


def test_the_cooldown_holds_a_second_dispatch_of_one_reason(github: GitHubStandIn, tmp_path: Path) -> None:
    assert dispatch(github, tmp_path).action == DISPATCHED
    (run,) = github.runs(REPO)
    github.set_run(REPO, run["id"], status="completed", conclusion="success")
    again = dispatch(github, tmp_path)
    assert again.action == COOLDOWN and "cooldown" in again.detail
    # another reason is another incident
    assert dispatch(github, tmp_path, "prediction drift").action == DISPATCHED
    # past the cooldown the same reason dispatches again
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=7)
    assert dispatch(github, tmp_path, now=later).action == DISPATCHED
    assert [d["inputs"]["reason"] for d in github.dispatches(REPO)] == [
        "input drift",
        "prediction drift",
        "input drift",
    ]


def test_the_cooldown_is_read_from_github_when_the_state_file_is_gone(
    github: GitHubStandIn, tmp_path: Path
) -> None:
    # a scheduled check runs on a fresh runner every day: no state file survives
    assert dispatch(github, tmp_path, state_file=tmp_path / "day1.json").action == DISPATCHED
    (run,) = github.runs(REPO)
    github.set_run(REPO, run["id"], status="completed", conclusion="failure")
    again = dispatch(github, tmp_path, state_file=tmp_path / "day2.json")
    assert again.action == COOLDOWN and again.blocking_run == run["html_url"]
    assert len(github.dispatches(REPO)) == 1
    runs_queries = [r.query for r in github.requests if r.path.endswith("/runs")]
    assert {
        "event": "workflow_dispatch",
        "created": runs_queries[-1]["created"],
        "per_page": "100",
    } in runs_queries
    assert runs_queries[-1]["created"].startswith(">=20")


def test_no_dispatch_while_a_retrain_of_the_same_reason_is_queued_or_running(
    github: GitHubStandIn, tmp_path: Path
) -> None:
    no_cooldown = {"cooldown": datetime.timedelta(0)}
    assert dispatch(github, tmp_path, **no_cooldown).action == DISPATCHED
    (run,) = github.runs(REPO)
    queued = dispatch(github, tmp_path, **no_cooldown)
    assert queued.action == ALREADY_RUNNING and "queued" in queued.detail
    github.set_run(REPO, run["id"], status="in_progress")
    running = dispatch(github, tmp_path, **no_cooldown)
    assert running.action == ALREADY_RUNNING and "in progress" in running.detail
    assert running.blocking_run == run["html_url"]
    # a retrain of another reason does not block this one
    assert dispatch(github, tmp_path, "prediction drift", **no_cooldown).action == DISPATCHED
    github.set_run(REPO, run["id"], status="completed", conclusion="success")
    assert dispatch(github, tmp_path, **no_cooldown).action == DISPATCHED
    assert len(github.dispatches(REPO)) == 3


def test_two_dispatches_at_once_dispatch_once(github: GitHubStandIn, tmp_path: Path) -> None:
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(dispatch(github, tmp_path))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.action for r in results) == [COOLDOWN, COOLDOWN, COOLDOWN, DISPATCHED]
    assert len(github.dispatches(REPO)) == 1


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda g: None, "HTTP 404"),
        (lambda g: g.add_workflow(REPO, "other.yml", inputs=("reason",)), "Unexpected inputs provided"),
        (lambda g: g.add_workflow(REPO, "other.yml", dispatchable=False), "workflow_dispatch' trigger"),
        (lambda g: setattr(g, "forbid_writes", True) or g.add_workflow(REPO, "other.yml"), "actions: write"),
    ],
    ids=["unknown-workflow", "no-verdict-input", "no-dispatch-trigger", "read-only-token"],
)
def test_a_dispatch_github_refuses_is_a_one_line_error_with_the_fix(
    github: GitHubStandIn, tmp_path: Path, setup: Any, message: str
) -> None:
    setup(github)
    with pytest.raises(ServiceError) as caught:
        dispatch(github, tmp_path, workflow="other.yml")
    text = caught.value.one_line()
    assert message in text and "other.yml" in text and "\n" not in text
    assert github.dispatches(REPO) == []
    assert not (tmp_path / "state.json").exists()


def test_bad_targets_and_state_are_refused_before_any_request(github: GitHubStandIn, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="owner/name"):
        target(github, tmp_path, repository="app")
    with pytest.raises(UsageError, match="--workflow"):
        target(github, tmp_path, workflow="../mlci-retrain.yml")
    with pytest.raises(UsageError, match="GITHUB_TOKEN"):
        dispatch_retrain("drift", "", target(github, tmp_path), token="")
    (tmp_path / "state.json").write_text('{"schema": "something else"}')
    with pytest.raises(InputError, match=r"state\.json is not an mlci dispatch state"):
        dispatch(github, tmp_path)
    assert github.requests == []


# -- parsing Alertmanager's notifications -----------------------------------------------------------


def notification(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="MlciFeatureMeanShift"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "retrain",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": list(alerts),
    }


def alert(name: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "job": "churn", **labels},
        "annotations": {"summary": "moved"},
        "startsAt": "2026-12-01T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": f"http://prometheus.example/graph?g0.expr={name}",
        "fingerprint": "abc",
    }


def test_one_reason_per_model_whatever_the_drift_alert_or_feature() -> None:
    body = notification(
        alert("MlciFeatureMeanShift", feature="tenure"),
        alert("MlciFeatureMeanShift", feature="charges"),
        alert("MlciFeatureVarianceShift", "resolved", feature="charges"),
        alert("MlciPredictionShareShift", **{"class": "stay"}),  # the same drift, seen in the outputs
        alert("MlciHighErrorRate"),  # a serving problem: no retrain
        # the model label names the model when the job is named otherwise (mlci monitor render --job)
        alert("MlciFeatureMeanShift", job="prod-bill", model="bill", feature="calls"),
    )
    status, firing = parse_notification(json.dumps(body).encode())
    assert status == "firing" and len(firing) == 5
    from mlci_lib.monitor.receive import RETRAIN_ALERTS

    reasons = retrain_reasons(firing, RETRAIN_ALERTS)
    assert reasons == {
        "monitor churn: drift": "http://prometheus.example/graph?g0.expr=MlciFeatureMeanShift",
        "monitor bill: drift": "http://prometheus.example/graph?g0.expr=MlciFeatureMeanShift",
    }
    # the reason mlci monitor check --on-fail dispatch gives the same drift: one cooldown for both
    assert drift_reason("churn") in reasons


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{not json", "not JSON"),
        (b"[]", "JSON object"),
        (json.dumps({**notification(alert("X")), "version": "3"}).encode(), "version '3' is not 4"),
        (json.dumps({"version": "4", "status": "firing"}).encode(), "list of alerts"),
        (json.dumps(notification({"status": "firing", "labels": {"job": "x"}})).encode(), "no alertname"),
        (
            json.dumps(notification({"status": "firing", "labels": {"alertname": 3}})).encode(),
            "labels of strings",
        ),
        (json.dumps(notification({"labels": {"alertname": "MlciFeatureMeanShift"}})).encode(), "no status"),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "version-3",
        "no-alerts",
        "no-alertname",
        "label-not-string",
        "no-status",
    ],
)
def test_a_malformed_notification_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_notification(body)


# -- mlci monitor receive behind a real Alertmanager --------------------------------------------------


class Receiver:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def post(self, body: bytes) -> tuple[int, dict[str, Any]]:
        host, port = self.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request("POST", "/alerts", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()


@pytest.fixture
def receiver(github: GitHubStandIn, tmp_path: Path) -> Iterator[Receiver]:
    port = free_port()
    log = tmp_path / "receive.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLCI_"))}
    env.update(
        GITHUB_TOKEN=TOKEN, GITHUB_API_URL=github.url, GITHUB_REPOSITORY=REPO, PYTHONPATH=str(REPO_ROOT)
    )
    command = [sys.executable, "-m", "mlci_lib", "monitor", "receive", "--port", str(port), "--ref", "main",
               "--state-file", str(tmp_path / "receive-state.json"), "--cooldown", "1h"]  # fmt: skip
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/healthz"), 60, "mlci monitor receive", log)
        yield Receiver(process, url, log)
    finally:
        process.terminate()
        assert process.wait(20) == 0, log.read_text()
    assert TOKEN not in log.read_text()


def _post_alerts(alertmanager: AlertmanagerServer, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{alertmanager.url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.mark.slow
def test_alertmanager_routes_a_firing_drift_alert_to_one_dispatch(
    github: GitHubStandIn, receiver: Receiver, alertmanager_server: AlertmanagerServer, tmp_path: Path
) -> None:
    job = f"loop-{free_port()}"  # alerts of earlier tests stay in the session's Alertmanager
    alertmanager_server.reload_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "nobody",  # the alerts of other tests, still active, go nowhere
                    "routes": [
                        {
                            "receiver": "retrain",
                            "matchers": [f'job="{job}"'],
                            "group_by": ["alertname", "job", "feature"],
                            "group_wait": "1s",
                            "group_interval": "1s",
                            "repeat_interval": "1h",
                        }
                    ],
                },
                "receivers": [
                    {"name": "nobody"},
                    {"name": "retrain", "webhook_configs": [{"url": f"{receiver.url}/alerts"}]},
                ],
            }
        )
    )
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    firing = [
        {
            "labels": {
                "alertname": "MlciFeatureMeanShift",
                "job": job,
                "feature": feature,
                "severity": "warning",
            },
            "annotations": {"summary": f"the mean of {feature} moved"},
            "startsAt": now,
            "generatorURL": "http://prometheus.example/graph",
        }
        for feature in ("tenure", "charges")
    ]
    firing.append({"labels": {"alertname": "MlciHighErrorRate", "job": job}, "startsAt": now})
    _post_alerts(alertmanager_server, firing)

    def notified() -> int:
        return receiver.log.read_text().count(" notification, ")

    # three groups (by feature too): two of the same incident, one of a serving problem
    wait_until(lambda: notified() >= 3, 60, "three notifications at the receiver", alertmanager_server.log)
    (sent,) = github.dispatches(REPO)
    assert sent["inputs"] == {
        "reason": f"monitor {job}: drift",
        "verdict": "http://prometheus.example/graph",
    }
    assert sent["ref"] == "main"
    log = receiver.log.read_text()
    assert log.count(": dispatched (") == 1 and log.count(": cooldown (") == 1, log
    assert "no firing alert that retraining answers" in log, log
    # Alertmanager's repeat of the incident, later: still held back
    status, answer = receiver.post(json.dumps(notification(alert("MlciFeatureMeanShift", job=job))).encode())
    assert status == 200 and answer["done"][0]["action"] == COOLDOWN, answer
    assert len(github.dispatches(REPO)) == 1


@pytest.mark.slow
def test_the_receiver_refuses_malformed_bodies_and_holds_back_a_running_retrain(
    github: GitHubStandIn, receiver: Receiver, tmp_path: Path
) -> None:
    for body in (
        b"{oops",
        b'{"version": "4"}',
        json.dumps(notification(alert("MlciX"), status="x")).encode(),
    ):
        status, answer = receiver.post(body)
        assert status == 400 and "error" in answer, answer
    assert github.dispatches(REPO) == []
    # a retrain for this reason is already queued (dispatched by someone else): nothing is sent
    token_request = urllib.request.Request(
        f"{github.url}/repos/{REPO}/actions/workflows/mlci-retrain.yml/dispatches",
        data=json.dumps(
            {"ref": "main", "inputs": {"reason": "monitor churn: drift", "verdict": ""}}
        ).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(token_request, timeout=10) as response:
        assert response.status == 204
    status, answer = receiver.post(
        json.dumps(notification(alert("MlciPredictionShareShift", **{"class": "churn"}))).encode()
    )
    assert status == 200 and answer["done"][0]["action"] == ALREADY_RUNNING, answer
    assert len(github.dispatches(REPO)) == 1
    # GitHub failing is a 502 (Alertmanager retries later), not a silent 200
    github.fail_next(500, count=10)
    status, answer = receiver.post(json.dumps(notification(alert("MlciFeatureVarianceShift"))).encode())
    assert status == 502 and "HTTP 500" in answer["error"], answer
    assert len(github.dispatches(REPO)) == 1


# -- mlci monitor check --on-fail dispatch --------------------------------------------------------------


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlci_lib.serving import ModelServer
    from mlci_lib.serving.prediction_log import LogSettings

    folder = tmp_path_factory.mktemp("check-dispatch")
    rng = np.random.default_rng(5)
    train = pd.DataFrame({"tenure": rng.integers(0, 72, 1500), "charges": rng.normal(70, 20, 1500).round(2)})
    train.to_csv(folder / "train.csv", index=False)
    y = np.where(train.tenure < 12, "churn", "stay")
    save_model(
        HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(train, y),
        folder / "churn",
        sample_input=train.head(),
        name="churn",
    )
    moved = train.assign(charges=train.charges + 40, tenure=train.tenure + 30).head(600)
    with ModelServer(
        folder / "churn", prediction_log=LogSettings(directory=folder / "logs", max_rows=300)
    ) as server:
        server.wait_ready(60)
        host, port = server.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        records = moved.to_dict("records")
        for start in range(0, len(records), 50):
            connection.request("POST", "/predict", json.dumps({"rows": records[start : start + 50]}).encode())
            response = connection.getresponse()
            response.read()
            assert response.status == 200
        connection.close()
    return folder


def run_check(
    folder: Path, tmp_path: Path, env: dict[str, str], *extra: str
) -> tuple[int, dict[str, str], str]:
    out, err = io.StringIO(), io.StringIO()
    outputs = tmp_path / "outputs.txt"
    outputs.write_text("")
    environ = {"MLCI_OUTPUT_FILE": str(outputs), **env}
    argv = ["monitor", "check", "--logs", str(folder / "logs"), "--reference", str(folder / "train.csv"),
            "--model", str(folder / "churn"), "--on-fail", "dispatch", "--state-file",
            str(tmp_path / "state.json"), *extra]  # fmt: skip
    with environment(env):  # the token and the API come from the environment, as in a workflow
        code = main(argv, runner=CiRunner(environ, stdout=out, stderr=err))
    return code, read_outputs(outputs), out.getvalue() + err.getvalue()


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def read_outputs(path: Path) -> dict[str, str]:
    """Step outputs as the runner writes them (``name<<DELIMITER``, value, ``DELIMITER``)."""
    lines, found = path.read_text().splitlines(), {}
    while lines:
        name, delimiter = lines.pop(0).split("<<", 1)
        end = lines.index(delimiter)
        found[name], lines = "\n".join(lines[:end]), lines[end + 1 :]
    return found


@pytest.mark.slow
def test_a_failed_check_dispatches_one_retrain(github: GitHubStandIn, drifted: Path, tmp_path: Path) -> None:
    env = {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_RUN_ID": "77",
        "GITHUB_SERVER_URL": "https://github.com",
    }
    code, outputs, text = run_check(drifted, tmp_path, env)
    assert code == 1, text
    assert outputs["passed"] == "false" and outputs["dispatch-action"] == DISPATCHED, text
    (sent,) = github.dispatches(REPO)
    assert sent["inputs"]["reason"] == outputs["dispatch-reason"] == "monitor churn: drift"
    assert sent["inputs"]["verdict"] == f"https://github.com/{REPO}/actions/runs/77"
    assert TOKEN not in text
    code, outputs, text = run_check(drifted, tmp_path, env, "--verdict-file", str(tmp_path / "verdict.json"))
    assert code == 1 and outputs["dispatch-action"] == COOLDOWN, text
    assert len(github.dispatches(REPO)) == 1
    # the verdict opens the one monitor issue through mlci report
    out, err = io.StringIO(), io.StringIO()
    argv = ["report", str(tmp_path / "verdict.json"), "--comment", "false", "--key", "monitor",
            "--issue-title", "mlci: drift", "--report-file", str(tmp_path / "r.md")]  # fmt: skip
    with environment(env):
        code = main(argv, runner=CiRunner({}, stdout=out, stderr=err))
    assert code == 0, out.getvalue() + err.getvalue()
    (issue,) = github.issues(REPO)
    assert issue["body"].startswith("<!-- mlci-issue:monitor -->"), issue["body"][:200]
    assert "### Monitor: ❌ failed, churn over 600 logged rows" in issue["body"], issue["body"][:800]
    assert "| feature | method | statistic |" in issue["body"]


@pytest.mark.slow
def test_on_fail_dispatch_without_a_token_stops_before_the_work(drifted: Path, tmp_path: Path) -> None:
    code, outputs, text = run_check(drifted, tmp_path, {"GITHUB_TOKEN": "", "GITHUB_REPOSITORY": REPO})
    assert code == 2 and "GITHUB_TOKEN" in text and "passed" not in outputs, text
    code, _, text = run_check(drifted, tmp_path, {"GITHUB_TOKEN": "x"}, "--repository", "nope")
    assert code == 2 and "owner/name" in text
    code, _, text = run_check(
        drifted, tmp_path, {"GITHUB_TOKEN": "x", "GITHUB_REPOSITORY": REPO}, "--cooldown", "soon"
    )
    assert code == 2 and "--cooldown" in text
