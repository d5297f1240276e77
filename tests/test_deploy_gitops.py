"""`mlci deploy gitops`: real git repositories (a bare "remote"), the GitHub API stand-in for the PR."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mlci_lib.cli import main
from mlci_lib.deploy.gitops import Git, github_repository_of, public_url
from mlci_lib.runner import CiRunner
from tests.helpers.components import free_port
from tests.helpers.github_api import GitHubStandIn

TOKEN = "ghs_gitopsT0ken1234567890"
REPO = "acme/cluster-state"
BRANCH = "mlci/deploy-churn"


def _image(letter: str) -> str:
    return f"registry.example:5000/team/churn@sha256:{letter * 64}"


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare manifests repository whose main holds a README and a user's overlay."""
    bare = tmp_path / "cluster-state.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare)], check=True)
    work = tmp_path / "seed"
    subprocess.run(["git", "clone", "--quiet", str(bare), str(work)], check=True, capture_output=True)
    overlay = work / "deploy" / "overlays" / "prod"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        "resources: [../../base]\nreplicas: [{name: churn, count: 4}]\n"
    )
    (work / "README.md").write_text("cluster state\n")
    _git(work, "add", "-A")
    _git(work, "-c", "user.name=Ops", "-c", "user.email=ops@example.com", "commit", "--quiet", "-m", "seed")
    _git(work, "push", "--quiet", "origin", "HEAD:main")
    return bare


@pytest.fixture
def github_api() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as server:
        server.token = TOKEN
        yield server


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    body = {
        "version": 1,
        "model": {"name": "churn"},
        "stages": {"gate": {"rules": "gate.yaml"}},
        "deploy": {"namespace": "ml"},
    }
    path = tmp_path / "mlci.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def _run(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, token: str | None = TOKEN
) -> tuple[int, str]:
    if token is not None:
        monkeypatch.setenv("GITHUB_TOKEN", token)
    out, err = io.StringIO(), io.StringIO()
    env = {
        "MLCI_OUTPUT_FILE": str(tmp_path / "outputs.txt"),
        "MLCI_SUMMARY_FILE": str(tmp_path / "summary.md"),
    }
    code = main(argv, runner=CiRunner(env, stdout=out, stderr=err))
    if code == 2:  # the error alone, on one line (progress lines went to stdout)
        assert len(err.getvalue().strip().splitlines()) == 1 and "Traceback" not in err.getvalue()
    return code, out.getvalue() + err.getvalue()


def _gitops(
    pipeline: Path, remote: Path | str, api: GitHubStandIn, letter: str = "a", *extra: str
) -> list[str]:
    return [
        "deploy",
        "gitops",
        "--image",
        _image(letter),
        "--model-version",
        "3",
        "--config",
        str(pipeline),
        "--repository",
        str(remote),
        "--github-repository",
        REPO,
        "--api-url",
        api.url,
        *extra,
    ]


@pytest.mark.parametrize("form", ["path", "url"])
@pytest.mark.slow
def test_first_run_commits_pushes_and_opens_one_pull_request(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pipeline: Path,
    remote: Path,
    github_api: GitHubStandIn,
    form: str,
) -> None:
    result_file = tmp_path / "gitops.json"
    repository = str(remote) if form == "path" else remote.as_uri()  # file:///...: a clone URL
    code, out = _run(
        [*_gitops(pipeline, repository, github_api), "--result-file", str(result_file)], tmp_path, monkeypatch
    )
    assert code == 0, out
    files = _git(remote, "ls-tree", "-r", "--name-only", BRANCH).splitlines()
    assert "deploy/base/deployment.yaml" in files and "deploy/base/kustomization.yaml" in files
    assert "deploy/overlays/prod/kustomization.yaml" in files and "README.md" in files  # untouched
    assert _git(remote, "rev-list", "--count", f"main..{BRANCH}") == "1"
    deployment = yaml.safe_load(_git(remote, "show", f"{BRANCH}:deploy/base/deployment.yaml"))
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == _image("a")
    record = json.loads(_git(remote, "show", f"{BRANCH}:deploy/base/.mlci-render.json"))
    assert record["folder"] == "deploy/base"  # the repository's path, not a temporary one
    message = _git(remote, "log", "-1", "--format=%B", BRANCH)
    assert message.startswith("Deploy churn 3 (sha256:aaaaaaaaaaaa) to ml") and _image("a") in message
    pulls = github_api.pulls(REPO)
    assert len(pulls) == 1
    assert pulls[0]["head"]["ref"] == BRANCH and pulls[0]["base"]["ref"] == "main"
    assert pulls[0]["title"] == "mlci: deploy churn 3 (sha256:aaaaaaaaaaaa) to ml"
    assert _image("a") in pulls[0]["body"] and "<!-- mlci-deploy:ml/churn -->" in pulls[0]["body"]
    result = json.loads(result_file.read_text())
    assert result["schema"] == "mlci.deploy-gitops" and result["changed"] and result["pushed"]
    assert result["commit"] == _git(remote, "rev-parse", BRANCH)
    assert result["pull_request"] == {
        "number": 1,
        "url": f"https://github.com/{REPO}/pull/1",
        "action": "created",
    }
    outputs = (tmp_path / "outputs.txt").read_text()
    assert "pull-request-number<<" in outputs and "\n1\n" in outputs
    summary = (tmp_path / "summary.md").read_text()
    assert f"Pull request [#1](https://github.com/{REPO}/pull/1) created." in summary
    assert TOKEN not in out + outputs + summary + result_file.read_text()


@pytest.mark.slow
def test_a_rerun_changes_nothing_and_a_new_release_updates_the_same_pull_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: Path, remote: Path, github_api: GitHubStandIn
) -> None:
    assert _run(_gitops(pipeline, remote, github_api), tmp_path, monkeypatch)[0] == 0
    first = _git(remote, "rev-parse", BRANCH)
    github_api.requests.clear()
    code, out = _run(_gitops(pipeline, remote, github_api), tmp_path, monkeypatch)
    assert code == 0, out
    assert _git(remote, "rev-parse", BRANCH) == first  # no change: no commit
    assert [r.method for r in github_api.requests] == ["GET"]  # found the PR, nothing to write
    assert "no change on" in out and "pull request #1 unchanged" in out

    code, out = _run(_gitops(pipeline, remote, github_api, "b"), tmp_path, monkeypatch)
    assert code == 0, out
    assert _git(remote, "rev-list", "--count", f"main..{BRANCH}") == "2"
    assert _git(remote, "rev-parse", f"{BRANCH}~1") == first  # on top, never forced
    pulls = github_api.pulls(REPO)
    assert len(pulls) == 1 and "sha256:bbbbbbbbbbbb" in pulls[0]["title"] and _image("b") in pulls[0]["body"]
    assert "pull request #1 updated" in out
    assert [r.method for r in github_api.requests].count("POST") == 0


@pytest.mark.slow
def test_once_merged_the_same_release_needs_no_pull_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: Path, remote: Path, github_api: GitHubStandIn
) -> None:
    assert _run(_gitops(pipeline, remote, github_api), tmp_path, monkeypatch)[0] == 0
    # Someone merges the pull request (a fast-forward of main here) and GitHub closes it.
    subprocess.run(["git", "--git-dir", str(remote), "update-ref", "refs/heads/main", BRANCH], check=True)
    github_api.pulls(REPO)  # the PR exists...
    with github_api._lock:
        github_api._pulls[REPO][0]["state"] = "closed"
    code, out = _run(_gitops(pipeline, remote, github_api), tmp_path, monkeypatch)
    assert code == 0, out
    assert "main already holds these manifests" in out
    assert len(github_api.pulls(REPO)) == 1


@pytest.mark.slow
def test_without_a_github_repository_it_commits_and_pushes_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: Path, remote: Path
) -> None:
    argv = [
        "deploy",
        "gitops",
        "--image",
        _image("a"),
        "--config",
        str(pipeline),
        "--repository",
        str(remote),
    ]
    code, out = _run(argv, tmp_path, monkeypatch)
    assert code == 2 and "cannot tell the GitHub repository" in out
    code, out = _run(
        [*argv, "--no-pull-request", "--path", "apps/churn", "--branch", "deploy/churn"],
        tmp_path,
        monkeypatch,
        token=None,
    )
    assert code == 0, out
    assert "apps/churn/base/service.yaml" in _git(remote, "ls-tree", "-r", "--name-only", "deploy/churn")


@pytest.mark.parametrize(
    "setup, extra, message",
    [
        ("foreign-base", (), "deploy/base in the manifests repository was not written by mlci"),
        ("none", ("--base", "trunk"), "has no branch 'trunk'"),
        ("none", ("--path", "../outside"), "option --path: '../outside' must be a folder inside"),
        ("none", ("--branch", "bad..name"), "option --branch: 'bad..name' is not a branch name"),
        ("forbidden", (), "GitHub API GET /repos/acme/cluster-state/pulls answered HTTP 403"),
    ],
    ids=["foreign-base", "no-base-branch", "path-outside", "bad-branch", "api-refuses"],
)
@pytest.mark.slow
def test_bad_input_is_one_line_exit_2_and_nothing_is_pushed_before_it_is_known(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pipeline: Path,
    remote: Path,
    github_api: GitHubStandIn,
    setup: str,
    extra: tuple[str, ...],
    message: str,
) -> None:
    if setup == "foreign-base":
        work = tmp_path / "other"
        subprocess.run(["git", "clone", "--quiet", str(remote), str(work)], check=True, capture_output=True)
        (work / "deploy" / "base").mkdir(parents=True)
        (work / "deploy" / "base" / "mine.yaml").write_text("kind: ConfigMap\n")
        _git(work, "add", "-A")
        _git(
            work, "-c", "user.name=Ops", "-c", "user.email=ops@example.com", "commit", "--quiet", "-m", "mine"
        )
        _git(work, "push", "--quiet", "origin", "HEAD:main")
    if setup == "forbidden":
        github_api.fail_next(403, message="Resource not accessible by integration", methods=("GET",))
    code, out = _run([*_gitops(pipeline, remote, github_api), *extra], tmp_path, monkeypatch)
    assert code == 2, out
    assert message in out
    assert BRANCH not in _git(remote, "branch", "--list")
    assert not github_api.pulls(REPO)


def test_the_token_reaches_git_only_through_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GIT_CONFIG_COUNT", raising=False)
    git = Git(tmp_path, "https://github.com/acme/cluster-state.git", TOKEN)
    assert git.env["GIT_CONFIG_COUNT"] == "1"
    assert git.env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraheader"
    assert git.env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
    assert TOKEN not in git.env["GIT_CONFIG_VALUE_0"]  # base64 of x-access-token:TOKEN
    # git reads it: the header is in its effective configuration for that host only.
    done = subprocess.run(
        ["git", "config", "--get-urlmatch", "http.extraheader", "https://github.com/acme/x.git"],
        env=git.env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.stdout.strip() == git.env["GIT_CONFIG_VALUE_0"]
    assert "GIT_CONFIG_COUNT" not in Git(tmp_path, str(tmp_path), TOKEN).env  # a path: no token
    # Entries the environment has already are kept; ours comes after them.
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.autocrlf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "false")
    both = Git(tmp_path, "https://github.com/acme/cluster-state.git", TOKEN).env
    assert both["GIT_CONFIG_COUNT"] == "2" and both["GIT_CONFIG_KEY_0"] == "core.autocrlf"
    assert both["GIT_CONFIG_KEY_1"] == "http.https://github.com/.extraheader"
    assert (
        public_url(f"https://x-access-token:{TOKEN}@github.com/acme/c.git") == "https://github.com/acme/c.git"
    )


@pytest.mark.parametrize(
    "url, repository",
    [
        ("https://github.com/acme/cluster-state.git", "acme/cluster-state"),
        ("https://github.com/acme/cluster-state", "acme/cluster-state"),
        ("git@github.com:acme/cluster-state.git", "acme/cluster-state"),
        ("https://gitlab.example/acme/cluster-state.git", None),
        ("/srv/git/cluster-state", None),
    ],
)
def test_the_github_repository_is_read_from_a_github_clone_url(url: str, repository: str | None) -> None:
    assert github_repository_of(url) == repository


def test_credentials_in_a_clone_url_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: Path
) -> None:
    secret = "pa55w0rd-in-the-url"
    url = f"https://deployer:{secret}@127.0.0.1:{free_port()}/acme/cluster-state.git"
    argv = ["deploy", "gitops", "--image", _image("a"), "--config", str(pipeline), "--repository", url]
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [*argv, "--no-pull-request"], runner=CiRunner({"GITHUB_ACTIONS": "true"}, stdout=out, stderr=err)
    )
    log = out.getvalue() + err.getvalue()
    assert code == 2 and "git clone failed" in log
    assert f"::add-mask::{secret}" in log
    assert secret not in log.replace(f"::add-mask::{secret}", "")
