"""``mlci deploy gitops``: the rendered manifests committed to a manifests repository, and one PR.

For clusters that pull their state from git (Argo CD, Flux): the manifests are rendered and
validated in a temporary folder, then, in a fresh clone of the manifests repository (a local
path or a clone URL; the user's own checkouts are never touched):

- the branch (default ``mlci/deploy-<name>``) is checked out where it is, or started from the
  base branch; ``PATH/base`` is replaced by the rendered folder (``PATH/overlays`` and everything
  else stay as they are; a ``base`` folder mlci did not write is refused, as render refuses it);
- a commit is made only when something changed, and pushed (never forced);
- one pull request from the branch to the base is opened, or the open one updated, through the
  GitHub REST API (``GET pulls?head=owner:branch``, then ``POST`` or ``PATCH``), so a rerun with
  the same release changes nothing and a new release updates the same pull request.

Over https the token goes to git as an ``http.<origin>.extraHeader`` in git's environment
(``GIT_CONFIG_*``), never in a URL or an argument another process could read.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from mlci_lib.deploy.config import DeployConfig
from mlci_lib.deploy.manifests import Release
from mlci_lib.errors import InputError, ServiceError, UsageError
from mlci_lib.results import Result

#: The identity of commits made under GitHub Actions' token (when git has none configured).
BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
_GITHUB_URL = re.compile(
    r"^(?:https://(?:[^@/]+@)?github\.com/|git@github\.com:)([\w.-]+/[\w.-]+?)(?:\.git)?/?$"
)
_BRANCH = re.compile(r"^(?!/|.*(\.\.|//|@\{|\.lock$|/$))[A-Za-z0-9._/-]{1,200}$")


@dataclasses.dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    action: str  # created | updated | unchanged


@dataclasses.dataclass(frozen=True)
class GitopsResult(Result):
    SCHEMA: ClassVar[str] = "mlci.deploy-gitops"
    SCHEMA_VERSION: ClassVar[int] = 1

    repository: str
    branch: str
    base: str
    path: str
    changed: bool
    commit: str | None  # the branch's head after the run
    pushed: bool
    pull_request: PullRequest | None
    note: str
    files: tuple[str, ...]
    image: str
    image_digest: str
    model_name: str
    model_version: str | None
    model_digest: str | None
    verdict_digest: str | None

    def text(self) -> str:
        what = f"committed {self.commit[:12] if self.commit else ''} to" if self.changed else "no change on"
        line = f"{self.model_name} {self.image_digest[:19]}: {what} {self.repository} {self.branch}"
        line += f" ({self.path})"
        if self.pull_request:
            pull = self.pull_request
            line += f"; pull request #{pull.number} {pull.action}: {pull.url}"
        return line + (f"; {self.note}" if self.note else "")


def public_url(repository: str) -> str:
    """The repository without credentials (``https://user:token@host/...`` loses ``user:token@``)."""
    parts = urllib.parse.urlsplit(repository)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return repository


def github_repository_of(repository: str) -> str | None:
    """``owner/name`` of a github.com clone URL, else None."""
    match = _GITHUB_URL.match(repository.strip())
    return match.group(1) if match else None


def check_branch(name: str, option: str) -> str:
    if not _BRANCH.match(name or ""):
        raise UsageError(f"option {option}: {name!r} is not a branch name", hint="e.g. mlci/deploy-churn")
    return name


def check_path(path: str) -> str:
    clean = PurePosixPath(path.strip().strip("/"))
    if not str(clean) or clean.is_absolute() or ".." in clean.parts or str(clean) == ".":
        raise UsageError(
            f"option --path: {path!r} must be a folder inside the manifests repository",
            hint="e.g. apps/churn",
        )
    return str(clean)


class Git:
    """git in one clone; the token, when any, travels in git's environment only."""

    def __init__(self, folder: Path, repository: str, token: str | None) -> None:
        self.folder = folder
        self.env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true")
        parts = urllib.parse.urlsplit(repository)
        if token and parts.scheme == "https":
            # Added after any GIT_CONFIG_<n> entries the environment has already, not over them.
            index = int(self.env.get("GIT_CONFIG_COUNT", "0") or 0)
            basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
            self.env.update(
                {
                    "GIT_CONFIG_COUNT": str(index + 1),
                    f"GIT_CONFIG_KEY_{index}": f"http.https://{parts.netloc.rsplit('@', 1)[-1]}/.extraheader",
                    f"GIT_CONFIG_VALUE_{index}": f"Authorization: Basic {basic}",
                }
            )

    def run(
        self, *args: str, check: bool = True, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd or self.folder,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServiceError(f"git {args[0]} could not run: {exc}") from None
        if check and done.returncode != 0:
            detail = " ".join((done.stderr or done.stdout).split())[-300:]
            raise ServiceError(f"git {args[0]} failed: {detail}")
        return done


def _identity(git: Git) -> list[str]:
    configured = git.run("config", "user.email", check=False).stdout.strip()
    return [] if configured else ["-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}"]


def commit_message(release: Release, config: DeployConfig) -> str:
    version = f" {release.model_version}" if release.model_version else ""
    lines = [
        f"Deploy {release.model_name}{version} ({release.image_digest[:19]}) to {config.namespace}",
        "",
        f"image: {release.image}",
    ]
    if release.model_digest:
        lines.append(f"model digest: {release.model_digest}")
    if release.verdict_digest:
        lines.append(f"verdict digest: {release.verdict_digest}")
    lines += ["", "Rendered and validated by mlci deploy gitops."]
    return "\n".join(lines) + "\n"


def pull_request_title(release: Release, config: DeployConfig) -> str:
    version = f" {release.model_version}" if release.model_version else ""
    return f"mlci: deploy {release.model_name}{version} ({release.image_digest[:19]}) to {config.namespace}"


def pull_request_body(release: Release, config: DeployConfig, path: str, files: tuple[str, ...]) -> str:
    from mlci_lib.report.escape import code

    rows = [
        ("image", release.image),
        ("model", f"{release.model_name} {release.model_version or ''}".strip()),
        ("model digest", release.model_digest or "(unknown)"),
        ("verdict digest", release.verdict_digest or "(unknown)"),
        ("target", f"{config.target}, namespace {config.namespace}"),
    ]
    lines = [
        f"<!-- mlci-deploy:{config.namespace}/{config.name} -->",
        f"### mlci deploy: {code(release.model_name)} {code(release.image_digest)}",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {name} | {code(value)} |" for name, value in rows),
        "",
        f"Files in {code(path + '/base')}, validated offline before this commit: "
        + ", ".join(code(f) for f in files)
        + ". Overlays in "
        + code(path + "/overlays")
        + " are yours; mlci replaces only base/.",
    ]
    return "\n".join(lines) + "\n"


def _replace_base(rendered: Path, target: Path, relative: str) -> None:
    from mlci_lib.deploy.render import RESULT_FILE
    from mlci_lib.files import write_json_atomic

    if target.is_symlink() or (target.exists() and not (target / RESULT_FILE).is_file()):
        raise InputError(
            f"{relative} in the manifests repository was not written by mlci",
            hint="choose another --path, or move that folder away",
        )
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(rendered, target)
    # The render result names the folder it was written to: here, the one in the repository, so
    # that the same release renders the same bytes on every run.
    record = json.loads((target / RESULT_FILE).read_text(encoding="utf-8"))
    record["folder"] = relative
    write_json_atomic(target / RESULT_FILE, record)
    os.chmod(target / RESULT_FILE, 0o644)


def open_pull_request(client: Any, github: str, branch: str, base: str) -> Mapping[str, Any] | None:
    """The open pull request from ``branch`` to ``base``, if any (``head`` needs the owner's prefix)."""
    owner = github.split("/")[0]
    query = urllib.parse.urlencode(
        {"head": f"{owner}:{branch}", "base": base, "state": "open", "per_page": 100}
    )
    for pr in client.paginate(f"/repos/{github}/pulls?{query}"):
        if isinstance(pr, Mapping) and (pr.get("head") or {}).get("ref") == branch:
            return pr
    return None


def write_pull_request(
    client: Any,
    github: str,
    found: Mapping[str, Any] | None,
    *,
    branch: str,
    base: str,
    title: str,
    body: str,
    needed: bool,
) -> PullRequest | None:
    """Update ``found`` when its title or body differ, else open one when ``needed``."""
    if found is not None:
        number, url = int(found["number"]), str(found.get("html_url", ""))
        if found.get("title") == title and found.get("body") == body:
            return PullRequest(number, url, "unchanged")
        updated, _ = client.request(
            "PATCH", f"/repos/{github}/pulls/{number}", {"title": title, "body": body}
        )
        return PullRequest(int(updated["number"]), str(updated.get("html_url", "")), "updated")
    if not needed:
        return None
    created, _ = client.request(
        "POST", f"/repos/{github}/pulls", {"title": title, "head": branch, "base": base, "body": body}
    )
    return PullRequest(int(created["number"]), str(created.get("html_url", "")), "created")


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="mlci-gitops-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish(
    release: Release,
    config: DeployConfig,
    *,
    repository: str,
    path: str,
    branch: str,
    base: str,
    github: str | None,
    client_factory: Callable[[], Any] | None,
    token: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> GitopsResult:
    """Render, commit to ``branch`` of ``repository`` when anything changed, push, open or update the PR.

    ``client_factory`` builds the GitHub client (None: no pull request); ``github`` is its
    ``owner/name``.
    """
    from mlci_lib.deploy.render import render_deployment

    relative = check_path(path)
    check_branch(branch, "--branch")
    check_branch(base, "--base")
    with _scratch() as scratch:
        rendered = render_deployment(release, config, scratch / "render")
        clone = scratch / "clone"
        git = Git(clone, repository, token)
        progress(f"rendered and validated {len(rendered.files)} files; cloning {public_url(repository)}")
        git.run("clone", "--quiet", "--no-tags", "--", repository, str(clone), cwd=scratch)
        remote = git.run("branch", "--remotes", "--format=%(refname:strip=3)").stdout.split()
        if base not in remote:
            raise InputError(
                f"the manifests repository {public_url(repository)} has no branch {base!r}",
                hint="pass --base with its default branch, e.g. --base main",
            )
        start = f"origin/{branch}" if branch in remote else f"origin/{base}"
        git.run("checkout", "--quiet", "-B", branch, start)
        client = client_factory() if client_factory is not None and github else None
        # Asked before anything is pushed: a token that cannot read pull requests stops here.
        found = open_pull_request(client, github, branch, base) if client is not None and github else None
        target = clone / relative / "base"
        _replace_base(Path(rendered.folder), target, f"{relative}/base")
        git.run("add", "--all", "--", f"{relative}/base")
        changed = git.run("diff", "--cached", "--quiet", check=False).returncode != 0
        pushed = False
        if changed:
            message = scratch / "message.txt"
            message.write_text(commit_message(release, config), encoding="utf-8")
            git.run(*_identity(git), "commit", "--quiet", "--file", str(message))
            git.run("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
            pushed = True
        commit = git.run("rev-parse", "HEAD").stdout.strip()
        differs = git.run("diff", "--quiet", f"origin/{base}", "HEAD", "--", f"{relative}/base", check=False)
        needed = differs.returncode != 0
    pull = None
    note = ""
    if client is not None and github:
        title = pull_request_title(release, config)
        body = pull_request_body(release, config, relative, rendered.files)
        pull = write_pull_request(
            client, github, found, branch=branch, base=base, title=title, body=body, needed=needed
        )
        if pull is None:
            note = f"{base} already holds these manifests: no pull request needed"
    elif not needed:
        note = f"{base} already holds these manifests"
    return GitopsResult(
        repository=public_url(repository),
        branch=branch,
        base=base,
        path=relative,
        changed=changed,
        commit=commit,
        pushed=pushed,
        pull_request=pull,
        note=note,
        files=rendered.files,
        image=release.image,
        image_digest=release.image_digest,
        model_name=release.model_name,
        model_version=release.model_version,
        model_digest=release.model_digest,
        verdict_digest=release.verdict_digest,
    )
