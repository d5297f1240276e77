"""Starter workflows: least privilege, concurrency, timeouts, pinned actions, zizmor and actionlint clean."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.components import REPO_ROOT, require, venv_tool

TEMPLATES = REPO_ROOT / "mlci_lib" / "templates"
GITHUB = sorted((TEMPLATES / "github").glob("*.yml"))
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
OWN = re.compile(r"^mlci-dev/mlci(/actions/[a-z-]+)?@v1$")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    return {("on" if k is True else k): v for k, v in data.items()}


def test_all_four_github_templates_exist() -> None:
    assert {p.stem for p in GITHUB} == {"pr", "release", "retrain", "monitor"}


@pytest.mark.parametrize("path", GITHUB, ids=[p.stem for p in GITHUB])
def test_least_privilege_concurrency_timeouts_and_pins(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}, "top-level permissions must be empty; jobs ask for what they need"
    assert workflow["concurrency"]["group"]
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} states its permissions"
        assert set(job["permissions"]) <= {"contents", "pull-requests", "packages", "issues", "actions"}
        assert job["permissions"].get("contents") == "read"
        assert isinstance(job.get("timeout-minutes"), int), f"job {name} needs timeout-minutes"
        for step in job["steps"]:
            uses = step.get("uses")
            if uses:
                assert SHA_PIN.match(uses) or OWN.match(uses), f"{path.name}: {uses} is not pinned"
            if uses and uses.startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            assert "${{" not in str(step.get("run", "")), f"{path.name}: expression inside run:"


def test_release_pushes_only_after_the_gate_in_one_run() -> None:
    steps = load(TEMPLATES / "github" / "release.yml")["jobs"]["release"]["steps"]
    run = next(s for s in steps if s.get("id") == "mlci")
    assert run["with"]["config"] == "mlci.yaml" and "until" not in run["with"]


def test_pr_stops_at_the_gate_and_comments() -> None:
    job = load(TEMPLATES / "github" / "pr.yml")["jobs"]["pipeline"]
    assert job["permissions"]["pull-requests"] == "write"
    run = next(s for s in job["steps"] if s.get("id") == "mlci")
    assert run["with"]["until"] == "gate"
    assert any("actions/report" in str(s.get("uses")) for s in job["steps"])


def test_monitor_keeps_its_issue_through_the_report_action() -> None:
    job = load(TEMPLATES / "github" / "monitor.yml")["jobs"]["monitor"]
    assert job["permissions"] == {"contents": "read", "issues": "write", "actions": "write"}
    report = next(s for s in job["steps"] if "actions/report@" in str(s.get("uses")))
    assert report["with"]["issue-title"] and report["with"]["comment"] == "false"
    assert "issue" not in report["with"], "the default opens the issue only when the check failed"
    # the issue is mlci report's, never a gh command's (gh only downloads a logs artifact)
    assert not any(re.search(r"(^|[\s;&|])gh\s+(issue|api)\b", str(s.get("run", ""))) for s in job["steps"])


def _fetch_logs(
    tmp_path: Path, env: dict[str, str], logs: list[str] = ()
) -> subprocess.CompletedProcess[str]:
    """The monitor template's "Fetch the prediction logs" script, run by bash as the runner runs it."""
    job = load(TEMPLATES / "github" / "monitor.yml")["jobs"]["monitor"]
    step = next(s for s in job["steps"] if s.get("name") == "Fetch the prediction logs")
    assert set(step["env"]) == {"LOGS_BUCKET", "LOGS_ARTIFACT", "GH_TOKEN"}
    assert step["env"]["LOGS_ARTIFACT"] == "${{ vars.MLCI_LOGS_ARTIFACT }}"
    tmp_path.mkdir(parents=True, exist_ok=True)
    folder = tmp_path / "logs"
    for name in logs:
        folder.mkdir(exist_ok=True)
        (folder / name).write_text("{}\n")
    variables = {"PATH": "/usr/bin:/bin", "PREDICTION_LOGS": str(folder), "GITHUB_REPOSITORY": "octo/app"}
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", step["run"]],
        cwd=tmp_path,
        env={**variables, "LOGS_BUCKET": "", "LOGS_ARTIFACT": "", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_monitor_fetches_its_logs_from_the_route_set_and_stops_without_one(tmp_path: Path) -> None:
    # no route and no logs: nothing to judge, one error that names the routes
    done = _fetch_logs(tmp_path / "none", {})
    assert done.returncode == 2 and "::error title=mlci monitor::no prediction logs" in done.stdout
    assert "MLCI_LOGS_ARTIFACT" in done.stdout and "MLCI_LOGS_BUCKET" in done.stdout
    # the log volume mounted on a self-hosted runner
    done = _fetch_logs(tmp_path / "mounted", {}, logs=("predictions-1.jsonl",))
    assert done.returncode == 0, done.stdout + done.stderr
    for env, message in (
        ({"LOGS_BUCKET": "s3://b/logs", "LOGS_ARTIFACT": "prediction-logs"}, "not both"),
        ({"LOGS_BUCKET": "ftp://b/logs"}, "must start with s3:// or gs://"),
    ):
        done = _fetch_logs(tmp_path / message.split()[0], env)
        assert done.returncode == 2 and message in done.stdout, done.stdout


def test_monitor_reads_the_logs_and_dispatches_the_retrain_template() -> None:
    job = load(TEMPLATES / "github" / "monitor.yml")["jobs"]["monitor"]
    monitor = next(s for s in job["steps"] if "actions/monitor@" in str(s.get("uses")))
    assert monitor["with"]["on-fail"] == "dispatch"
    assert monitor["with"]["logs"] == "${{ env.PREDICTION_LOGS }}"
    from mlci_lib.scaffold import GITHUB_WORKFLOWS

    target = GITHUB_WORKFLOWS["retrain.yml"].rsplit("/", 1)[-1]
    assert monitor["with"]["workflow"] == target, "dispatch the file mlci init writes"
    retrain = load(TEMPLATES / "github" / "retrain.yml")
    assert set(retrain["on"]["workflow_dispatch"]["inputs"]) == {"reason", "verdict"}
    from mlci_lib.monitor.dispatch import RUN_TITLE_PREFIX

    # the dispatcher finds a running retrain of a reason by this title
    assert retrain["run-name"] == RUN_TITLE_PREFIX + "${{ inputs.reason || github.event_name }}"


@pytest.mark.parametrize("name", ["release", "retrain"])
def test_release_and_retrain_render_the_alert_rules_as_artifacts(name: str) -> None:
    steps = load(TEMPLATES / "github" / f"{name}.yml")["jobs"][name]["steps"]
    render = [s for s in steps if "mlci monitor render" in str(s.get("run", ""))]
    assert len(render) == 1 and "if" not in render[0], "rendered only once the release passed"
    kept = [s for s in steps if s.get("with", {}).get("name") == "mlci-monitoring"]
    assert kept and kept[0]["with"]["path"] == ".mlci/monitoring/"


def _tool(name: str) -> str:
    tool = venv_tool(name)
    require(tool is not None, name, "install mlci[dev] (scripts/test does)")
    assert tool is not None
    return tool


def test_zizmor_finds_nothing_in_the_templates() -> None:
    # Named one by one: zizmor collects workflows only under .github/ when given a folder.
    done = subprocess.run(
        [_tool("zizmor"), "--offline", "--config", ".github/zizmor.yml", "--no-progress", *map(str, GITHUB)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout + done.stderr


@pytest.mark.parametrize("path", GITHUB, ids=[p.stem for p in GITHUB])
def test_actionlint_finds_nothing(path: Path) -> None:
    done = subprocess.run([_tool("actionlint"), "-no-color", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_gitlab_template_calls_the_same_cli() -> None:
    data = yaml.safe_load((TEMPLATES / "gitlab" / ".gitlab-ci.yml").read_text())
    scripts = {
        name: "\n".join(map(str, job.get("script", []))) for name, job in data.items() if "stage" in str(job)
    }
    assert "mlci run --config mlci.yaml --until gate" in scripts["gate"]
    assert "mlci run --config mlci.yaml" in scripts["release"]
    assert data["release"]["resource_group"] and data["release"]["timeout"]


def test_jenkinsfile_calls_the_same_cli() -> None:
    text = (TEMPLATES / "jenkins" / "Jenkinsfile").read_text()
    assert "mlci run --config mlci.yaml --until gate" in text and "disableConcurrentBuilds()" in text
    assert text.count("{") == text.count("}")
