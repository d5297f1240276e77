"""Lint and security checks, run as tests so that CI enforces them: ruff, zizmor, actionlint."""

from __future__ import annotations

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
