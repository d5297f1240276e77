"""Retraining on demand: one ``workflow_dispatch`` of the retrain workflow per incident.

``mlci monitor check --on-fail dispatch`` and the Alertmanager receiver (``mlci monitor
receive``) both call :func:`dispatch_retrain`, which sends
``POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches`` with the ``ref`` and the
inputs ``reason`` and ``verdict`` (a link to what failed). Two guard rails keep one incident to
one retrain:

- **cooldown**: a reason dispatched less than ``cooldown`` ago is not dispatched again. The time
  of each dispatch is kept in a state file (written atomically, under a file lock, so two
  webhooks arriving together dispatch once), and GitHub's own run history is read too: a
  scheduled check runs on a fresh runner each day, where no state file survives;
- **already running**: a run of the retrain workflow for the same reason that is queued, waiting
  or in progress blocks a new one.

A run's reason is read from its ``display_title``: the retrain template names its runs
``mlci retrain: <reason>`` (``run-name:``), the one place a dispatched run shows its inputs in
the runs API. A workflow without that ``run-name`` still gets the cooldown of the state file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from mlci_lib.errors import InputError, ServiceError, UsageError
from mlci_lib.results import Result

DEFAULT_WORKFLOW = "mlci-retrain.yml"
DEFAULT_COOLDOWN = "24h"
DEFAULT_STATE_FILE = ".mlci/dispatch-state.json"
#: What the retrain template's ``run-name`` puts before the reason.
RUN_TITLE_PREFIX = "mlci retrain: "
#: Run statuses of a retrain that has not finished (the runs API filters one status per call).
ACTIVE_STATUSES = ("queued", "in_progress", "waiting")
#: workflow_dispatch input values are strings GitHub shows in the run's page; keep them short.
MAX_REASON = 200
MAX_LINK = 1000
#: Pages of runs read when looking for a recent dispatch (100 runs a page).
MAX_RUN_PAGES = 10
STATE_SCHEMA = "mlci.dispatch-state"

DISPATCHED, COOLDOWN, ALREADY_RUNNING = "dispatched", "cooldown", "already-running"

_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_WORKFLOW = re.compile(r"^(?:[0-9]+|[A-Za-z0-9_.-]+\.ya?ml)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_duration(text: str, option: str) -> datetime.timedelta:
    """A duration of one unit: ``0`` (none), ``90s``, ``30m``, ``6h``, ``1d``."""
    if text.strip() == "0":
        return datetime.timedelta(0)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise UsageError(f"option {option} must be a duration like 30m, 6h or 1d (or 0), got {text!r}")
    return datetime.timedelta(seconds=int(number) * units[unit])


@dataclasses.dataclass(frozen=True)
class DispatchTarget:
    """Which workflow to dispatch, on which ref, and the guard rails."""

    repository: str
    workflow: str = DEFAULT_WORKFLOW
    ref: str = "main"
    api_url: str = "https://api.github.com"
    cooldown: datetime.timedelta = datetime.timedelta(hours=24)
    state_file: Path | None = Path(DEFAULT_STATE_FILE)

    def __post_init__(self) -> None:
        if not _REPOSITORY.match(self.repository or ""):
            raise UsageError(
                f"repository {self.repository!r} is not owner/name",
                hint="pass --repository owner/name (default: $GITHUB_REPOSITORY)",
            )
        if not _WORKFLOW.match(self.workflow):
            raise UsageError(
                f"option --workflow must be a workflow file name or id, got {self.workflow!r}",
                hint="the file name under .github/workflows/, without the folder (mlci-retrain.yml)",
            )
        if not self.ref or _CONTROL.search(self.ref) or " " in self.ref:
            raise UsageError(f"option --ref must be a branch or tag name, got {self.ref!r}")
        if self.cooldown < datetime.timedelta(0):
            raise UsageError("option --cooldown must not be negative")

    @property
    def workflow_path(self) -> str:
        return f"/repos/{self.repository}/actions/workflows/{urllib.parse.quote(self.workflow)}"


@dataclasses.dataclass(frozen=True)
class DispatchResult(Result):
    """What happened to one retrain request: dispatched, or held back by a guard rail (and why)."""

    SCHEMA: ClassVar[str] = "mlci.retrain-dispatch"
    SCHEMA_VERSION: ClassVar[int] = 1

    action: str  # dispatched | cooldown | already-running
    reason: str
    detail: str
    repository: str
    workflow: str
    ref: str
    verdict_url: str
    #: The run that holds the dispatch back (already running, or dispatched within the cooldown).
    blocking_run: str | None = None

    @property
    def dispatched(self) -> bool:
        return self.action == DISPATCHED


def run_title(reason: str) -> str:
    """The ``display_title`` of a retrain run for ``reason`` (the template's ``run-name``)."""
    return RUN_TITLE_PREFIX + reason


def clean_reason(reason: str) -> str:
    text = " ".join(str(reason).split())
    if not text:
        raise InputError("a retrain needs a reason, got an empty one")
    return text[:MAX_REASON]


def _is_for(run: Mapping[str, Any], reason: str) -> bool:
    return str(run.get("display_title") or "").strip() == run_title(reason)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_stamp(text: Any) -> datetime.datetime | None:
    try:
        moment = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


# -- the state file ---------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(state_file: Path | None) -> Iterator[None]:
    """Hold an exclusive lock beside the state file (another process dispatching waits)."""
    if state_file is None:
        yield
        return
    import fcntl

    try:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        handle = open(state_file.with_name(state_file.name + ".lock"), "a")  # noqa: SIM115
    except OSError as exc:
        raise InputError(
            f"dispatch state file {state_file} (option --state-file) cannot be written: {exc.strerror}"
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _key(target: DispatchTarget, reason: str) -> str:
    return f"{target.repository} {target.workflow} {reason}"


def read_state(state_file: Path | None) -> dict[str, Any]:
    """The dispatches recorded so far (``{key: {"at": ..., "verdict_url": ...}}``)."""
    if state_file is None or not state_file.exists():
        return {}
    try:
        data = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            f"dispatch state file {state_file} cannot be read: {exc}",
            hint="delete it (the cooldown then restarts from GitHub's run history)",
        ) from None
    if not isinstance(data, dict) or data.get("schema") != STATE_SCHEMA:
        raise InputError(
            f"dispatch state file {state_file} is not an mlci dispatch state (schema {STATE_SCHEMA})",
            hint="point --state-file at a file of its own, or delete it",
        )
    dispatches = data.get("dispatches")
    return dict(dispatches) if isinstance(dispatches, dict) else {}


def _write_state(state_file: Path, dispatches: Mapping[str, Any]) -> None:
    from mlci_lib.files import write_text_atomic

    document = {"schema": STATE_SCHEMA, "schema_version": 1, "dispatches": dict(dispatches)}
    write_text_atomic(state_file, json.dumps(document, indent=2, sort_keys=True) + "\n")


# -- GitHub -----------------------------------------------------------------------------------


def _runs(client: Any, path: str, query: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    from mlci_lib.report.github import _next_link

    url: str | None = f"{path}?{urllib.parse.urlencode({**query, 'per_page': '100'})}"
    for _ in range(MAX_RUN_PAGES):
        if url is None:
            return
        data, headers = client.request("GET", url)
        runs = data.get("workflow_runs") if isinstance(data, dict) else None
        if not isinstance(runs, list):
            raise ServiceError(f"GitHub API GET {path} did not answer with workflow_runs")
        yield from (run for run in runs if isinstance(run, dict))
        url = _next_link(headers.get("link", ""))


def _explain(error: Any, target: DispatchTarget) -> ServiceError:
    hints = {
        401: "the token is not valid: check GITHUB_TOKEN",
        403: "the token may not run workflows: give the job 'permissions: actions: write'",
        404: f"check --workflow (a file under .github/workflows/ on {target.ref}) and --repository, "
        "and that the token can see the repository",
        422: "the workflow needs a workflow_dispatch trigger with the inputs reason and verdict, "
        f"on ref {target.ref}",
    }
    return ServiceError(
        f"{error.message} (workflow {target.workflow} of {target.repository})",
        hint=hints.get(error.status, "retry later"),
    )


def dispatch_retrain(
    reason: str,
    verdict_url: str,
    target: DispatchTarget,
    *,
    token: str,
    now: datetime.datetime | None = None,
    policy: Any = None,
) -> DispatchResult:
    """Dispatch the retrain workflow for ``reason``, unless a guard rail holds it back."""
    from mlci_lib.report.github import GitHubClient, GitHubHttpError

    if not token:
        raise UsageError(
            "dispatching a retrain needs a token: set GITHUB_TOKEN",
            hint="in a workflow, pass github.token with 'permissions: actions: write'",
        )
    reason = clean_reason(reason)
    link = str(verdict_url or "")[:MAX_LINK]
    moment = now or _now()
    client = GitHubClient(token, api_url=target.api_url, policy=policy)

    def result(action: str, detail: str, run: str | None = None) -> DispatchResult:
        return DispatchResult(
            action, reason, detail, target.repository, target.workflow, target.ref, link, run
        )

    with _locked(target.state_file):
        dispatches = read_state(target.state_file)
        key = _key(target, reason)
        last = _parse_stamp((dispatches.get(key) or {}).get("at"))
        if last is not None and moment - last < target.cooldown:
            return result(
                COOLDOWN,
                f"dispatched for this reason at {_stamp(last)}, less than the cooldown "
                f"({target.cooldown}) ago",
            )
        try:
            for status in ACTIVE_STATUSES:
                for run in _runs(client, f"{target.workflow_path}/runs", {"status": status}):
                    if _is_for(run, reason):
                        return result(
                            ALREADY_RUNNING,
                            f"a retrain for this reason is {status.replace('_', ' ')}",
                            str(run.get("html_url") or run.get("id")),
                        )
            if target.cooldown:
                since = _stamp(moment - target.cooldown)
                query = {"event": "workflow_dispatch", "created": f">={since}"}
                for run in _runs(client, f"{target.workflow_path}/runs", query):
                    created = _parse_stamp(run.get("created_at"))
                    if _is_for(run, reason) and created is not None and moment - created < target.cooldown:
                        return result(
                            COOLDOWN,
                            f"a retrain for this reason was dispatched at {_stamp(created)}, less than "
                            f"the cooldown ({target.cooldown}) ago",
                            str(run.get("html_url") or run.get("id")),
                        )
            body = {"ref": target.ref, "inputs": {"reason": reason, "verdict": link}}
            client.request("POST", f"{target.workflow_path}/dispatches", body)
        except GitHubHttpError as error:
            raise _explain(error, target) from None
        if target.state_file is not None:
            dispatches[key] = {"at": _stamp(moment), "verdict_url": link}
            _write_state(target.state_file, dispatches)
    return result(DISPATCHED, f"dispatched {target.workflow} on {target.ref}")


def drift_reason(model: str) -> str:
    """The retrain reason of a model whose inputs or predictions drifted.

    Both routes that see a drift give it: ``mlci monitor check --on-fail dispatch`` (the model of
    the verdict) and ``mlci monitor receive`` (the ``model`` label of the alert). One reason keys
    one cooldown, so the daily check does not dispatch a second retrain for the drift an alert
    already dispatched one for.
    """
    return f"monitor {model}: drift"


def reason_of_verdict(verdict: Any) -> str | None:
    """The retrain reason of a failed monitor verdict, or None when retraining would not help.

    The reason names the kind of failure, not the features: it keys the cooldown, so a drift that
    spreads to one more feature (or to the predictions) tomorrow is the same incident.
    """
    if verdict.passed or not verdict.rows:
        return None  # no traffic is a serving problem; a new model would not see more of it
    name = verdict.model.get("name") or "model"
    drift = getattr(verdict, "drift", None)
    drifted = drift is not None and (
        bool(drift.drifted_features) or (drift.prediction is not None and drift.prediction.drifted)
    )
    return drift_reason(name) if drifted else f"monitor {name}: check failed"
