"""The deploy parts of the starter pipelines: a protected environment, the pushed digest, the same
commands on GitHub, GitLab and Jenkins. The act run of the GitHub deploy job is in
test_release_deploy_workflow.py; zizmor and actionlint check every template in test_templates.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlci_lib.cli import build_parser
from mlci_lib.cli.framework import find_command_parser
from tests.helpers.components import REPO_ROOT, require

TEMPLATES = REPO_ROOT / "mlci_lib" / "templates"
RELEASE = TEMPLATES / "github" / "release.yml"
GITLAB = TEMPLATES / "gitlab" / ".gitlab-ci.yml"
JENKINS = TEMPLATES / "jenkins" / "Jenkinsfile"
COMMAND = re.compile(r"mlci deploy (render|verify)\b[^;\n'}]*")


def _release() -> dict[str, Any]:
    return dict(yaml.safe_load(RELEASE.read_text())["jobs"])


def _deploy_commands(text: str) -> dict[str, set[str]]:
    """Each ``mlci deploy render|verify`` call in a template: the options it passes."""
    found: dict[str, set[str]] = {}
    for match in COMMAND.finditer(text):
        found.setdefault(match.group(1), set()).update(re.findall(r"--[a-z-]+", match.group(0)))
    return found


def test_the_deploy_job_deploys_the_pushed_digest_behind_a_protected_environment() -> None:
    jobs = _release()
    release, deploy = jobs["release"], jobs["deploy"]
    assert release["outputs"]["image-digest"] == "${{ steps.mlci.outputs.image-digest }}"
    assert deploy["needs"] == "release" and "needs.release.outputs.image-digest" in deploy["if"]
    assert deploy["permissions"] == {"contents": "read"}
    # The kubeconfig is a secret of an environment other than the registry's, and only the apply
    # step holds it.
    assert deploy["environment"]["name"] not in ("", release["environment"])
    assert deploy["environment"]["url"] == "${{ vars.MLCI_DEPLOY_URL }}"
    steps = {step.get("id") or step.get("name"): step for step in deploy["steps"]}
    holders = [name for name, step in steps.items() if "secrets." in str(step)]
    assert holders == ["apply"], holders
    render = steps["render"]
    assert render["uses"].startswith("mlci-dev/mlci/actions/deploy@")
    assert render["with"]["image-digest"] == "${{ needs.release.outputs.image-digest }}"
    assert render["with"]["release"] == ".mlci/pipeline-verdict.json"
    assert steps["apply"]["env"]["MANIFESTS"] == "${{ steps.render.outputs.folder }}"
    assert (
        "mlci deploy verify" in steps["verify"]["run"]
        and steps["verify"]["if"] == "vars.MLCI_DEPLOY_URL != ''"
    )
    # The release job uploads what the deploy job downloads.
    download = next(s for s in deploy["steps"] if "download-artifact" in str(s.get("uses")))
    uploads = [s for s in release["steps"] if "upload-artifact" in str(s.get("uses"))]
    upload = next(s for s in uploads if s["with"]["name"] == download["with"]["name"])
    assert ".mlci/*.json" in upload["with"]["path"]


def test_gitlab_and_jenkins_deploy_with_the_same_commands() -> None:
    github_job = yaml.safe_dump(_release()["deploy"])
    github = _deploy_commands(github_job)
    assert set(github) == {"verify"}  # GitHub renders through actions/deploy, which runs the command
    gitlab = yaml.safe_load(GITLAB.read_text())
    job = gitlab["deploy"]
    assert job["needs"] == ["release"] and job["stage"] in gitlab["stages"]
    assert job["environment"]["name"] == "production" and job["environment"]["url"] == "$MLCI_DEPLOY_URL"
    assert job["rules"] == gitlab["release"]["rules"]
    # The setup anchor (*mlci-setup) nests its lines as a list.
    script = "\n".join(line for item in job["script"] for line in ([item] if isinstance(item, str) else item))
    jenkins = JENKINS.read_text()
    deploy_stage = jenkins[jenkins.index("stage('Deploy')") :]
    for text in (script, deploy_stage):
        commands = _deploy_commands(text)
        assert commands["render"] == {"--release", "--output", "--result-file"}, commands
        assert commands["verify"] == github["verify"] == {"--release", "--verdict-file"}, commands
        assert 'kubectl apply -k "$MLCI_DEPLOY_DIR/base"' in text
    assert "withCredentials([file(credentialsId: env.MLCI_KUBECONFIG_ID" in deploy_stage


def test_every_deploy_command_of_the_templates_parses() -> None:
    """Each option the templates pass is an option of that command (a rename breaks the templates)."""
    parser = build_parser()
    for path in (RELEASE, GITLAB, JENKINS):
        for command, options in _deploy_commands(path.read_text()).items():
            leaf, _ = find_command_parser(parser, ["deploy", command])
            known = {flag for action in leaf._actions for flag in action.option_strings}
            assert options <= known, f"{path.name}: {sorted(options - known)} are not options of {leaf.prog}"


@pytest.mark.workflow
def test_gitlab_ci_local_reads_the_deploy_job(tmp_path: Path) -> None:
    tool = shutil.which("gitlab-ci-local")
    require(tool is not None, "gitlab-ci-local", "npm install -g gitlab-ci-local@4.60.0 (scripts/test)")
    assert tool is not None
    shutil.copy(GITLAB, tmp_path / ".gitlab-ci.yml")
    git = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=tmp_path, check=True)
    done = subprocess.run(
        [tool, "--list"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0 and "json schema validated" in done.stdout + done.stderr, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert ["deploy", "deploy", "on_success", "false", "[release]"] in rows, done.stdout
