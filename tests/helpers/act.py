"""Run real GitHub workflows through ``act`` on the host, with this repository as our actions.

``run_workflow`` writes the workflow (and any files) into a fresh git repository, maps
``mlci-dev/mlci@<any ref>`` to this work tree, runs act on the host (``-self-hosted``), and
returns what a test asserts on: each step's outcome and outputs, the job summary and the log.

Workflows use our actions as users do (``uses: mlci-dev/mlci/actions/metric-gate@v1``) or by
path (``uses: ./actions/...`` is not available in a scratch repo; use the full name).
"""

from __future__ import annotations

import atexit
import base64
import dataclasses
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.components import REPO_ROOT

#: The name our workflows use for this project; act maps it to the work tree.
PROJECT_SLUG = "mlci-dev/mlci"
#: Refs the harness maps to the work tree (tests and templates may pin either).
PROJECT_REFS = ("v1", "main")
STAND_INS = REPO_ROOT / "tests" / "stand_ins"
#: Third-party actions replaced by local stand-ins, since nothing can be downloaded here.
THIRD_PARTY = {
    "actions/setup-python": STAND_INS / "setup-python",
    "actions/upload-artifact": STAND_INS / "upload-artifact",
    "actions/download-artifact": STAND_INS / "download-artifact",
}
_MARKER = "MLCI_HARNESS_STEPS"


@dataclasses.dataclass
class WorkflowRun:
    returncode: int
    events: list[dict[str, Any]]
    #: job id -> step id -> {"outputs": {...}, "outcome": ..., "conclusion": ...}
    steps: dict[str, dict[str, dict[str, Any]]]
    summary: str
    log: str

    def step(self, step_id: str, job: str | None = None) -> dict[str, Any]:
        jobs = [job] if job else list(self.steps)
        for name in jobs:
            if step_id in self.steps.get(name, {}):
                return self.steps[name][step_id]
        raise KeyError(f"no step {step_id!r} in jobs {jobs}; log:\n{self.log[-4000:]}")

    def outputs(self, step_id: str, job: str | None = None) -> dict[str, str]:
        return dict(self.step(step_id, job)["outputs"])

    def outcome(self, step_id: str, job: str | None = None) -> str:
        return str(self.step(step_id, job)["outcome"])

    @property
    def error_lines(self) -> list[str]:
        return [line.strip() for line in self.log.splitlines() if "::error" in line]


def _inject_step_dump(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as the boolean true; put the name back.
    workflow = {("on" if key is True else key): value for key, value in workflow.items()}
    for job in (workflow.get("jobs") or {}).values():
        steps = job.setdefault("steps", [])
        steps.append(
            {
                "name": "harness: dump steps",
                "if": "always()",
                "env": {_MARKER: "${{ toJSON(steps) }}"},
                "run": f'echo "{_MARKER} $(printf %s "${_MARKER}" | base64 -w0)"',
            }
        )
    return workflow


@functools.lru_cache(maxsize=1)
def project_snapshot() -> Path:
    """The project's files as git sees them (tracked, and untracked but not ignored).

    act copies a mapped repository for every run; copying the work tree itself would copy the
    virtualenv and caches too.
    """
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    target = Path(tempfile.mkdtemp(prefix="mlci-snapshot-"))
    atexit.register(shutil.rmtree, target, True)
    for name in filter(None, listing.split("\0")):
        source = REPO_ROOT / name
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            (target / name).symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target / name)
    return target


def _mapping_args() -> list[str]:
    args = []
    for ref in PROJECT_REFS:
        args += ["--local-repository", f"{PROJECT_SLUG}@{ref}={project_snapshot()}"]
    for name, folder in THIRD_PARTY.items():
        for ref in _stand_in_refs(name):
            args += ["--local-repository", f"{name}@{ref}={folder}"]
    return args


def _stand_in_refs(name: str) -> list[str]:
    refs_file = THIRD_PARTY[name] / "REFS"
    return [
        line.split("#")[0].strip()
        for line in refs_file.read_text().splitlines()
        if line.split("#")[0].strip()
    ]


def write_repository(folder: Path, files: Mapping[str, str | bytes | Path]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            target.write_bytes(content.read_bytes())
            shutil.copymode(content, target)  # an executable script stays one
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    git = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(folder)], check=True)
    subprocess.run([*git, "add", "-A"], cwd=folder, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "test"], cwd=folder, check=True)
    return folder


def run_workflow(
    act: str,
    workdir: Path,
    workflow: str | dict[str, Any],
    *,
    files: Mapping[str, str | bytes | Path] | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    event: str = "push",
    payload: dict[str, Any] | None = None,
    timeout: float = 900,
) -> WorkflowRun:
    """Run ``workflow`` (YAML text or a dict) in a fresh repository under ``workdir``."""
    data = yaml.safe_load(workflow) if isinstance(workflow, str) else json.loads(json.dumps(workflow))
    repo_files: dict[str, str | bytes | Path] = dict(files or {})
    repo_files[".github/workflows/test.yml"] = yaml.safe_dump(_inject_step_dump(data), sort_keys=False)
    repo = write_repository(workdir / "repo", repo_files)
    command = [
        act,
        event,
        "-W",
        ".github/workflows/test.yml",
        "-P",
        "ubuntu-latest=-self-hosted",
        "--json",
        "--artifact-server-addr",
        "127.0.0.1",
        "--action-cache-path",
        str(workdir / "act-cache"),
        *_mapping_args(),
    ]
    if payload is not None:
        event_file = workdir / "event.json"
        event_file.write_text(json.dumps(payload))
        command += ["-e", str(event_file)]
    # One artifact folder for every job of the run: the stand-ins upload to and download from it.
    command += ["--env", f"STAND_IN_ARTIFACTS={workdir / 'artifacts'}"]
    for name, value in (env or {}).items():
        command += ["--env", f"{name}={value}"]
    for name, value in (secrets or {}).items():
        command += ["-s", f"{name}={value}"]
    # The job's steps run on the host: put the test interpreter (with mlci installed) first on PATH,
    # as actions/setup-python does on a real runner.
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLCI_"))}
    process_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{process_env.get('PATH', '')}"
    process_env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        command, cwd=repo, capture_output=True, text=True, timeout=timeout, env=process_env, check=False
    )
    return parse_act_output(done.returncode, done.stdout + done.stderr)


def parse_act_output(returncode: int, output: str) -> WorkflowRun:
    events: list[dict[str, Any]] = []
    lines: list[str] = []
    steps: dict[str, dict[str, dict[str, Any]]] = {}
    summary_parts: list[str] = []
    for raw in output.splitlines():
        try:
            event = json.loads(raw)
        except ValueError:
            lines.append(raw)
            continue
        if not isinstance(event, dict):
            lines.append(raw)
            continue
        events.append(event)
        message = str(event.get("msg", ""))
        lines.append(message)
        # act reports a composite action's summary twice: for the inner step and again for the
        # action's own step. GitHub shows it once, so only top-level steps count.
        if event.get("command") == "summary" and len(event.get("stepID") or [None]) == 1:
            summary_parts.append(str(event.get("content", "")))
        if message.startswith(_MARKER + " ") or f"{_MARKER} " in message:
            encoded = message.split(f"{_MARKER} ", 1)[1].strip()
            decoded = json.loads(base64.b64decode(encoded) or b"{}")
            steps[str(event.get("jobID", "job"))] = decoded
    return WorkflowRun(returncode, events, steps, "".join(summary_parts), "\n".join(lines))
