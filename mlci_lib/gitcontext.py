"""Where a run comes from: commit, ref, repository and run URL.

Read from the GitHub Actions environment when present, else from the local git checkout, so
the same provenance reaches tags and labels on a laptop, in GitHub Actions and in other CI.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class GitContext:
    commit: str | None
    ref: str | None
    branch: str | None
    default_branch: str | None
    repository: str | None
    server_url: str | None
    run_url: str | None

    @property
    def short_commit(self) -> str | None:
        return self.commit[:12] if self.commit else None

    @property
    def source_url(self) -> str | None:
        if self.server_url and self.repository:
            return f"{self.server_url.rstrip('/')}/{self.repository}"
        return None

    @property
    def on_default_branch(self) -> bool:
        return bool(self.branch and self.default_branch and self.branch == self.default_branch)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def git_context(cwd: str | os.PathLike[str] = ".", environ: Mapping[str, str] | None = None) -> GitContext:
    env = os.environ if environ is None else environ
    where = Path(cwd)
    commit = env.get("GITHUB_SHA") or _git(["rev-parse", "HEAD"], where)
    ref = env.get("GITHUB_REF") or (
        f"refs/heads/{b}"
        if (b := _git(["rev-parse", "--abbrev-ref", "HEAD"], where)) and b != "HEAD"
        else None
    )
    branch = None
    if env.get("GITHUB_HEAD_REF"):
        branch = env["GITHUB_HEAD_REF"]
    elif ref and ref.startswith("refs/heads/"):
        branch = ref.removeprefix("refs/heads/")
    default_branch = env.get("MLCI_DEFAULT_BRANCH") or env.get("GITHUB_DEFAULT_BRANCH")
    if not default_branch:
        origin_head = _git(["symbolic-ref", "--short", "refs/remotes/origin/HEAD"], where)
        default_branch = origin_head.split("/", 1)[1] if origin_head and "/" in origin_head else "main"
    server = env.get("GITHUB_SERVER_URL") or None
    repository = env.get("GITHUB_REPOSITORY") or None
    run_url = None
    if server and repository and env.get("GITHUB_RUN_ID"):
        run_url = f"{server.rstrip('/')}/{repository}/actions/runs/{env['GITHUB_RUN_ID']}"
    return GitContext(
        commit=commit,
        ref=ref,
        branch=branch,
        default_branch=default_branch,
        repository=repository,
        server_url=server,
        run_url=run_url,
    )
