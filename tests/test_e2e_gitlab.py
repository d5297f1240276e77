"""The GitLab template through gitlab-ci-local (shell executor) on a copy of the example project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlci_lib.demo import example_source
from tests.helpers.components import REPO_ROOT, require

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

TEMPLATE = REPO_ROOT / "mlci_lib" / "templates" / "gitlab" / ".gitlab-ci.yml"


def test_merge_request_path_runs_lint_tests_and_the_gate(tmp_path: Path) -> None:
    tool = shutil.which("gitlab-ci-local")
    require(tool is not None, "gitlab-ci-local", "npm install -g gitlab-ci-local@4.60.0 (scripts/test)")
    require(shutil.which("rsync") is not None, "rsync", "apt-get install rsync (gitlab-ci-local needs it)")
    assert tool is not None
    project = tmp_path / "project"
    shutil.copytree(
        example_source(),
        project,
        ignore=shutil.ignore_patterns("model", ".mlci", "predictions.csv", "__pycache__"),
    )
    shutil.copy(TEMPLATE, project / ".gitlab-ci.yml")
    git = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "example"], cwd=project, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLCI_", "CI"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [tool, "--force-shell-executor", "--variable", "CI_PIPELINE_SOURCE=merge_request_event",
         "lint-and-test", "gate"],
        cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "PASS  lint-and-test" in log and "PASS  gate" in log, log[-4000:]
    assert "mlci run --config mlci.yaml --until gate" in log
    verdict = json.loads((project / ".mlci" / "pipeline-verdict.json").read_text())
    assert verdict["passed"] is True
    assert [s["name"] for s in verdict["stages"] if s["status"] == "passed"] == [
        "data-check", "train", "evaluate", "gate",
    ]  # fmt: skip
    assert (project / "mlci-report.md").read_text().startswith("## ✅ mlci merge request: passed")
