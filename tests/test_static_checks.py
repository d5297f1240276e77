"""Lint and security checks, run as tests so that CI enforces them: ruff, zizmor, actionlint."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.helpers.components import REPO_ROOT, require, venv_tool


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    tool = venv_tool(name)
    require(tool is not None, name, "install mlci[dev] (scripts/test does)")
    assert tool is not None
    return subprocess.run([tool, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def workflow_files() -> list[str]:
    files = sorted(REPO_ROOT.glob(".github/workflows/*.yml"))
    files += sorted(REPO_ROOT.glob("mlci_lib/templates/github/*.yml"))
    return [str(f.relative_to(REPO_ROOT)) for f in files]


def test_ruff_lint_is_clean() -> None:
    done = run_tool("ruff", "check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean() -> None:
    done = run_tool("ruff", "format", "--no-cache", "--check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_nothing() -> None:
    # The starter workflows sit outside .github/workflows, where a folder scan would not collect them,
    # so they are named one by one.
    templates = sorted(
        str(f.relative_to(REPO_ROOT)) for f in REPO_ROOT.glob("mlci_lib/templates/github/*.yml")
    )
    assert templates, "no starter workflows found"
    targets = ["action.yml", "actions", ".github", *templates]
    existing = [t for t in targets if (REPO_ROOT / t).exists()]
    done = run_tool("zizmor", "--offline", "--config", ".github/zizmor.yml", "--no-progress", *existing)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout + done.stderr


@pytest.mark.parametrize("workflow", workflow_files())
def test_actionlint_finds_nothing(workflow: str) -> None:
    done = run_tool("actionlint", "-no-color", workflow)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_workflow_is_linted() -> None:
    # The parametrized test above must not pass by having nothing to check.
    assert ".github/workflows/ci.yml" in workflow_files()
    assert Path(REPO_ROOT / ".github/zizmor.yml").is_file()


def starter_workflows() -> list[str]:
    return sorted(str(f.relative_to(REPO_ROOT)) for f in REPO_ROOT.glob("mlci_lib/templates/github/*.yml"))


def test_starter_workflows_pass_the_auditor_persona() -> None:
    # The auditor persona adds secrets-outside-env: a pull request's code must not hold registry
    # credentials, and the release credentials belong to a protected environment.
    done = run_tool(
        "zizmor", "--offline", "--config", ".github/zizmor.yml", "--no-progress",
        "--persona", "auditor", "--min-severity", "low", *starter_workflows(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout + done.stderr


def _lint_runs(tool: str) -> list[str]:
    import yaml

    ci = yaml.safe_load((REPO_ROOT / ".github/workflows/ci.yml").read_text())
    runs = [step["run"] for step in ci["jobs"]["lint"]["steps"] if "run" in step]
    return [run for run in runs if run.split()[0] == tool]


def test_the_ci_lint_job_audits_every_starter_workflow() -> None:
    # Run zizmor exactly as the CI step does (through bash, globs and all) and read which files it
    # audited: a folder outside .github/workflows collects nothing, so naming one is not enough.
    tool = venv_tool("zizmor")
    require(tool is not None, "zizmor", "install mlci[dev] (scripts/test does)")
    assert tool is not None
    commands = _lint_runs("zizmor")
    assert commands, "the lint job runs no zizmor"
    audited: dict[str, set[str]] = {}
    for command in commands:
        line = command.replace("zizmor", shlex.quote(tool), 1)
        done = subprocess.run(
            ["bash", "-c", line], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, command + "\n" + done.stdout + done.stderr
        audited[command] = set(re.findall(r"completed (\S+)", done.stdout + done.stderr))
    for workflow in starter_workflows():
        assert any(workflow in files for files in audited.values()), f"no zizmor call audits {workflow}"
    assert any("auditor" in command and set(starter_workflows()) <= audited[command] for command in commands)
    for command in _lint_runs("actionlint"):
        names = subprocess.run(
            ["bash", "-c", command.replace("actionlint", "printf '%s\\n'", 1)],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert set(starter_workflows()) <= set(names), command
