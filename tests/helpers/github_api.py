"""A small stand-in for the GitHub REST API, on 127.0.0.1, for tests (GitHub itself is unreachable).

It speaks the few endpoints mlci uses, as GitHub does (status codes, JSON shapes, ``Link``
pagination, rate-limit headers, the 65,536-character body limit):

- ``GET/POST /repos/{owner}/{repo}/issues/{number}/comments``, ``PATCH .../issues/comments/{id}``
- ``GET/POST /repos/{owner}/{repo}/issues``, ``GET/PATCH .../issues/{number}``
- pull requests: ``GET/POST /repos/{owner}/{repo}/pulls`` (``state``, ``head=owner:branch`` and
  ``base`` filters; 422 "A pull request already exists" for a second open one of the same head and
  base), ``GET/PATCH .../pulls/{number}``; a pull request is also an issue, numbered with them
- workflows: ``GET /repos/{owner}/{repo}/actions/workflows/{id or file}``, ``POST
  .../dispatches`` (204; 422 for unexpected or missing inputs, as GitHub answers), and ``GET
  .../runs`` with its ``status``, ``event`` and ``created`` filters (``{"total_count",
  "workflow_runs"}``); ``add_workflow`` declares one, ``dispatches`` and ``runs`` read back what
  was dispatched, ``set_run`` plays the run moving on (in progress, completed)
- who the token is: ``POST /graphql`` with ``viewer { login databaseId }``, which answers for
  every kind of token, and ``GET /user``, which answers 403 "Resource not accessible by
  integration" for an installation token (``GITHUB_TOKEN``, a GitHub App's) as GitHub does

and lets a test script failures (``fail_next``, ``rate_limit_next``, ``forbid_writes``, ``missing``)
and read back what was posted (``comments``, ``issues``, ``pulls``, ``requests``); ``add_comment``,
``add_issue`` and ``close_issue`` play what other people do in between. ``identity`` is the user
the token acts as (``github-actions[bot]`` by default, an installation token: set
``installation_token = False`` for a personal one); what it writes is authored by it. Use the ``github_api``
fixture, or ``GitHubStandIn()`` as a context manager::

    def test_x(github_api):
        github_api.token = "t0k3n"
        ... post to github_api.url ...
        assert [c["body"] for c in github_api.comments("octo/app", 7)] == [...]
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

BODY_LIMIT = 65_536
BOT = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}


# -- workflows: dispatches and runs ------------------------------------------------------------


_CONCLUSIONS = {
    "success",
    "failure",
    "cancelled",
    "skipped",
    "timed_out",
    "neutral",
    "action_required",
    "stale",
}


class _Workflows:
    """The Actions endpoints of :class:`GitHubStandIn` (a mixin: its state lives there)."""

    url: str
    _lock: threading.Lock
    _ids: itertools.count[int]
    _workflows: dict[str, list[dict[str, Any]]]
    _runs: dict[str, list[dict[str, Any]]]
    _dispatches: dict[str, list[dict[str, Any]]]
    missing: set[str]
    forbid_writes: bool
    max_per_page: int

    def add_workflow(
        self,
        repository: str,
        file: str,
        *,
        name: str | None = None,
        inputs: tuple[str, ...] | None = ("reason", "verdict"),
        required: tuple[str, ...] = (),
        run_name: Any = None,
        dispatchable: bool = True,
    ) -> dict[str, Any]:
        """Declare ``.github/workflows/<file>``: its workflow_dispatch ``inputs`` (None: any), and
        ``run_name(inputs) -> str``, what its ``run-name:`` makes the runs' display_title (else the
        workflow's name, as GitHub does)."""
        with self._lock:
            workflow_id = next(self._ids)
            workflow = {
                "id": workflow_id,
                "node_id": f"W_{workflow_id}",
                "name": name or file,
                "path": f".github/workflows/{file}",
                "state": "active",
                "url": f"{self.url}/repos/{repository}/actions/workflows/{workflow_id}",
                "html_url": f"https://github.com/{repository}/blob/main/.github/workflows/{file}",
                "_inputs": inputs,
                "_required": required,
                "_run_name": run_name,
                "_dispatchable": dispatchable,
            }
            self._workflows.setdefault(repository, []).append(workflow)
            return _public(workflow)

    def dispatches(self, repository: str) -> list[dict[str, Any]]:
        """Every accepted dispatch: ``{"workflow": file, "ref": ..., "inputs": {...}}``, in order."""
        with self._lock:
            return [dict(d) for d in self._dispatches.get(repository, [])]

    def runs(self, repository: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._runs.get(repository, [])]

    def set_run(self, repository: str, run_id: int, *, status: str, conclusion: str | None = None) -> None:
        """Move a run on, as the runner does: in_progress, or completed with a conclusion."""
        with self._lock:
            for run in self._runs.get(repository, []):
                if run["id"] == run_id:
                    run["status"], run["conclusion"] = status, conclusion
                    run["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    return
        raise KeyError(f"{repository} run {run_id}")

    def _find_workflow(self, repo: str, key: str) -> dict[str, Any] | None:
        for workflow in self._workflows.get(repo, []):
            if key == str(workflow["id"]) or key == workflow["path"].rsplit("/", 1)[-1]:
                return workflow
        return None

    def _actions(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        not_found: tuple[int, Any, dict[str, str]] = (404, {"message": "Not Found"}, {})
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)/actions/workflows/([^/]+)(/dispatches|/runs)?", path)
        if not match:
            return not_found
        repo, key, sub = match.group(1), urllib.parse.unquote(match.group(2)), match.group(3)
        workflow = self._find_workflow(repo, key)
        if repo in self.missing or workflow is None:
            return not_found
        if sub is None and method == "GET":
            return 200, _public(workflow), {}
        if sub == "/runs" and method == "GET":
            runs = [r for r in self._runs.get(repo, []) if r["workflow_id"] == workflow["id"]]
            runs = [r for r in reversed(runs) if _run_matches(r, query)]  # newest first, as GitHub lists
            return self._runs_page(runs, path, query)
        if sub == "/dispatches" and method == "POST":
            if self.forbid_writes:
                return 403, {"message": "Resource not accessible by integration"}, {}
            if not isinstance(body, dict):
                return 400, {"message": "Problems parsing JSON"}, {}
            if not isinstance(body.get("ref"), str) or not body["ref"]:
                return 422, {"message": 'Invalid request.\n\n"ref" wasn\'t supplied.'}, {}
            if not workflow["_dispatchable"]:
                return 422, {"message": "Workflow does not have 'workflow_dispatch' trigger"}, {}
            inputs = body.get("inputs") or {}
            if not isinstance(inputs, dict) or not all(
                isinstance(v, (str, bool, int)) for v in inputs.values()
            ):
                return 422, {"message": "Invalid request.\n\nFor 'properties/inputs', is not an object."}, {}
            declared = workflow["_inputs"]
            unexpected = sorted(set(inputs) - set(declared)) if declared is not None else []
            if unexpected:
                return 422, {"message": f"Unexpected inputs provided: {json.dumps(unexpected)}"}, {}
            for name in workflow["_required"]:
                if name not in inputs:
                    return 422, {"message": f"Required input '{name}' not provided"}, {}
            self._new_run(repo, workflow, body["ref"], {k: str(v) for k, v in inputs.items()})
            return 204, None, {}
        return not_found

    def _new_run(self, repo: str, workflow: dict[str, Any], ref: str, inputs: dict[str, str]) -> None:
        run_id = next(self._ids)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        runs = self._runs.setdefault(repo, [])
        title = workflow["_run_name"](inputs) if workflow["_run_name"] else workflow["name"]
        runs.append(
            {
                "id": run_id,
                "name": workflow["name"],
                "node_id": f"WFR_{run_id}",
                "head_branch": ref,
                "path": workflow["path"],
                "display_title": title,
                "run_number": 1 + sum(1 for r in runs if r["workflow_id"] == workflow["id"]),
                "event": "workflow_dispatch",
                "status": "queued",
                "conclusion": None,
                "workflow_id": workflow["id"],
                "url": f"{self.url}/repos/{repo}/actions/runs/{run_id}",
                "html_url": f"https://github.com/{repo}/actions/runs/{run_id}",
                "created_at": now,
                "updated_at": now,
                "run_attempt": 1,
                "run_started_at": now,
            }
        )
        self._dispatches.setdefault(repo, []).append(
            {
                "workflow": workflow["path"].rsplit("/", 1)[-1],
                "ref": ref,
                "inputs": dict(inputs),
                "run_id": run_id,
            }
        )

    def _runs_page(
        self, runs: list[dict[str, Any]], path: str, query: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = max(1, min(int(query.get("per_page", 30)), self.max_per_page))
        page = max(1, int(query.get("page", 1)))
        last = max(1, -(-len(runs) // per_page))
        links = []
        if page < last:
            params = dict(query, per_page=str(per_page), page=str(page + 1))
            links.append(f'<{self.url}{path}?{urllib.parse.urlencode(params)}>; rel="next"')
        chunk = [dict(r) for r in runs[(page - 1) * per_page : page * per_page]]
        return (
            200,
            {"total_count": len(runs), "workflow_runs": chunk},
            ({"Link": ", ".join(links)} if links else {}),
        )


def _public(workflow: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in workflow.items() if not k.startswith("_")}


def _run_matches(run: dict[str, Any], query: dict[str, str]) -> bool:
    status = query.get("status")
    if status and (run["conclusion"] != status if status in _CONCLUSIONS else run["status"] != status):
        return False
    if query.get("event") and run["event"] != query["event"]:
        return False
    if query.get("branch") and run["head_branch"] != query["branch"]:
        return False
    created = query.get("created")
    if created:
        stamp = run["created_at"]
        # GitHub's date-range syntax: >=X, <=X, >X, <X, X..Y (ISO 8601 times compare as text)
        for op, test in ((">=", str.__ge__), ("<=", str.__le__), (">", str.__gt__), ("<", str.__lt__)):
            if created.startswith(op):
                return bool(test(stamp, created[len(op) :]))
        if ".." in created:
            low, high = created.split("..", 1)
            return low <= stamp <= high
        return stamp.startswith(created)
    return True


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None
    status: int


@dataclasses.dataclass
class _Scripted:
    status: int
    headers: dict[str, str]
    message: str
    methods: tuple[str, ...] | None


class GitHubStandIn(_Workflows):
    """The server and its state; every public method is safe to call from the test thread."""

    def __init__(self) -> None:
        #: When set, requests must carry ``Authorization: Bearer <token>`` (or ``token <token>``).
        self.token: str | None = None
        #: POST and PATCH answer 403 "Resource not accessible by integration" (a fork's token).
        self.forbid_writes = False
        #: Repositories ("owner/name") or issue numbers ("owner/name#7") that answer 404.
        self.missing: set[str] = set()
        #: Who the token is; comments and issues it writes carry this user.
        self.identity: dict[str, Any] = dict(BOT)
        #: An installation token (GITHUB_TOKEN) cannot read GET /user; a personal token can.
        self.installation_token = True
        #: When set, POST /graphql answers this status (an Enterprise proxy without GraphQL, say).
        self.graphql_status: int | None = None
        #: Largest page size honoured (GitHub's is 100); tests lower it to force pagination.
        self.max_per_page = 100
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._script: list[_Scripted] = []
        self._ids = itertools.count(1001)
        self._comments: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._issues: dict[str, list[dict[str, Any]]] = {}
        self._numbers: dict[str, itertools.count[int]] = {}
        self._pulls: dict[str, list[dict[str, Any]]] = {}
        self._workflows: dict[str, list[dict[str, Any]]] = {}
        self._runs: dict[str, list[dict[str, Any]]] = {}
        self._dispatches: dict[str, list[dict[str, Any]]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # shutdown() waits for the loop to poll; the default half second adds up over many tests.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> GitHubStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GitHubStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting --------------------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        headers: dict[str, str] | None = None,
        message: str = "scripted failure",
        methods: tuple[str, ...] | None = None,
    ) -> None:
        """Answer the next ``count`` requests (of ``methods``, default any) with ``status``."""
        with self._lock:
            self._script += [_Scripted(status, dict(headers or {}), message, methods)] * count

    def rate_limit_next(
        self,
        *,
        count: int = 1,
        status: int = 403,
        retry_after: float | None = None,
        reset_in: float | None = None,
    ) -> None:
        """Answer the next requests as GitHub does when a rate limit is hit."""
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000"}
        headers["x-ratelimit-reset"] = str(int(time.time() + (reset_in or 0)))
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        self.fail_next(
            status, count=count, headers=headers, message="API rate limit exceeded for installation."
        )

    # -- state --------------------------------------------------------------------------------------
    def comments(self, repository: str, number: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._comments.get((repository, number), [])]

    def issues(self, repository: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(i) for i in self._issues.get(repository, [])]

    def pulls(self, repository: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p) for p in self._pulls.get(repository, [])]

    def add_comment(
        self, repository: str, number: int, body: str, *, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Seed a comment (someone else's unless ``user`` says otherwise)."""
        with self._lock:
            return self._new_comment(repository, number, body, user or {"login": "octocat", "type": "User"})

    def add_issue(
        self,
        repository: str,
        title: str,
        body: str,
        *,
        pull_request: bool = False,
        user: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Seed an issue (the token's own unless ``user`` says otherwise)."""
        with self._lock:
            return self._new_issue(
                repository, {"title": title, "body": body}, pull_request=pull_request, user=user
            )

    def close_issue(self, repository: str, number: int) -> None:
        """Close an issue, as someone does once the alert is handled."""
        with self._lock:
            for issue in self._issues.get(repository, []):
                if issue["number"] == number:
                    issue["state"] = "closed"
                    return
        raise KeyError(f"{repository}#{number}")

    def methods(self) -> list[str]:
        """``METHOD /path`` of every request answered, in order."""
        return [f"{r.method} {r.path}" for r in self.requests]

    # -- internals (called with the lock held) ----------------------------------------------------
    def _new_comment(self, repo: str, number: int, body: str, user: dict[str, Any]) -> dict[str, Any]:
        comment_id = next(self._ids)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        comment = {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "body": body,
            "user": user,
            "html_url": f"https://github.com/{repo}/pull/{number}#issuecomment-{comment_id}",
            "issue_url": f"{self.url}/repos/{repo}/issues/{number}",
            "created_at": now,
            "updated_at": now,
        }
        self._comments.setdefault((repo, number), []).append(comment)
        return comment

    def _new_issue(
        self,
        repo: str,
        data: dict[str, Any],
        *,
        pull_request: bool = False,
        user: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        number = next(self._numbers.setdefault(repo, itertools.count(1)))
        issue: dict[str, Any] = {
            "id": next(self._ids),
            "number": number,
            "title": data.get("title", ""),
            "body": data.get("body", ""),
            "labels": [{"name": name} for name in data.get("labels", [])],
            "state": "open",
            "user": dict(user or self.identity),
            "html_url": f"https://github.com/{repo}/issues/{number}",
        }
        if pull_request:
            issue["pull_request"] = {"url": f"{self.url}/repos/{repo}/pulls/{number}"}
        self._issues.setdefault(repo, []).append(issue)
        return issue

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parsed.query))
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = "<not json>"
                status, payload, headers = stand_in._answer(
                    self.command, parsed.path, query, body, self.headers.get("Authorization")
                )
                with stand_in._lock:
                    stand_in.requests.append(
                        Recorded(
                            self.command, parsed.path, query, body, self.headers.get("Authorization"), status
                        )
                    )
                data = b"" if status == 204 else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        return Handler

    def _answer(
        self, method: str, path: str, query: dict[str, str], body: Any, auth: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            for i, scripted in enumerate(self._script):
                if scripted.methods is None or method in scripted.methods:
                    del self._script[i]
                    return scripted.status, {"message": scripted.message}, scripted.headers
            if self.token is not None and auth not in (f"Bearer {self.token}", f"token {self.token}"):
                return 401, {"message": "Bad credentials"}, {}
            return self._route(method, path, query, body)

    def _route(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        not_found: tuple[int, Any, dict[str, str]] = (404, {"message": "Not Found"}, {})
        if path == "/user" and method == "GET":
            if self.installation_token:
                return 403, {"message": "Resource not accessible by integration"}, {}
            return 200, dict(self.identity), {}
        if path == "/graphql" and method == "POST":
            if self.graphql_status is not None:
                return self.graphql_status, {"message": "Not Found"}, {}
            query = body.get("query") if isinstance(body, dict) else None
            if not isinstance(query, str) or "viewer" not in query:
                return 200, {"errors": [{"message": "this stand-in answers only the viewer query"}]}, {}
            viewer = {"login": self.identity["login"], "databaseId": self.identity.get("id")}
            return 200, {"data": {"viewer": viewer}}, {}
        pulls = re.fullmatch(r"/repos/([^/]+/[^/]+)/pulls(?:/(\d+))?", path)
        if pulls:
            return self._route_pulls(method, pulls.group(1), pulls.group(2), query, body)
        if re.match(r"/repos/[^/]+/[^/]+/actions/", path):
            return self._actions(method, path, query, body)
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues(?:/(comments/)?(\d+))?(/comments)?", path)
        if not match:
            return not_found
        repo, is_comment_id, number_text, sub = match.groups()
        number = int(number_text) if number_text else None
        if repo in self.missing or (
            number is not None and not is_comment_id and f"{repo}#{number}" in self.missing
        ):
            return not_found
        if method in ("POST", "PATCH"):
            if self.forbid_writes:
                return 403, {"message": "Resource not accessible by integration"}, {}
            if not isinstance(body, dict):
                return 400, {"message": "Problems parsing JSON"}, {}
            if len(str(body.get("body", ""))) > BODY_LIMIT:
                return 422, {"message": "Validation Failed", "errors": [{"message": "body is too long"}]}, {}
        if sub and number is not None and not is_comment_id:  # .../issues/{n}/comments
            if method == "GET":
                return self._page(self._comments.get((repo, number), []), path, query)
            if method == "POST":
                if not isinstance(body.get("body"), str) or not body["body"]:
                    return 422, {"message": "Validation Failed"}, {}
                return 201, self._new_comment(repo, number, body["body"], dict(self.identity)), {}
        elif is_comment_id and number is not None and not sub:  # .../issues/comments/{id}
            for comments in self._comments.values():
                for comment in comments:
                    if comment["id"] == number:
                        if method == "GET":
                            return 200, comment, {}
                        if method == "PATCH":
                            comment["body"] = body.get("body", comment["body"])
                            comment["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                            return 200, comment, {}
            return not_found
        elif number is None and not sub:  # .../issues
            if method == "GET":
                state = query.get("state", "open")
                issues = [i for i in self._issues.get(repo, []) if state == "all" or i["state"] == state]
                return self._page(issues, path, query)
            if method == "POST":
                if not isinstance(body.get("title"), str) or not body["title"]:
                    return 422, {"message": "Validation Failed"}, {}
                labels = body.get("labels", [])
                if not isinstance(labels, list) or not all(
                    isinstance(name, str) and 0 < len(name) <= 50 for name in labels
                ):
                    return 422, {"message": "Validation Failed", "errors": [{"field": "labels"}]}, {}
                return 201, self._new_issue(repo, body), {}
        elif number is not None and not sub:  # .../issues/{n}
            for issue in self._issues.get(repo, []):
                if issue["number"] == number:
                    if method == "GET":
                        return 200, issue, {}
                    if method == "PATCH":
                        if "title" in body and (not isinstance(body["title"], str) or not body["title"]):
                            return 422, {"message": "Validation Failed"}, {}
                        for key in ("title", "body", "state"):
                            if key in body:
                                issue[key] = body[key]
                        if "labels" in body:  # GitHub replaces the whole set
                            issue["labels"] = [{"name": name} for name in body["labels"]]
                        return 200, issue, {}
            return not_found
        return not_found

    def _route_pulls(
        self, method: str, repo: str, number_text: str | None, query: dict[str, str], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        """``/repos/{repo}/pulls[/{number}]``, with GitHub's shapes (a subset of the fields)."""
        not_found: tuple[int, Any, dict[str, str]] = (404, {"message": "Not Found"}, {})
        if repo in self.missing:
            return not_found
        owner = repo.split("/")[0]
        if method in ("POST", "PATCH"):
            if self.forbid_writes:
                return 403, {"message": "Resource not accessible by integration"}, {}
            if not isinstance(body, dict):
                return 400, {"message": "Problems parsing JSON"}, {}
            if len(str(body.get("body") or "")) > BODY_LIMIT:
                return 422, {"message": "Validation Failed", "errors": [{"message": "body is too long"}]}, {}
        pulls = self._pulls.setdefault(repo, [])
        if number_text is None:
            if method == "GET":
                state = query.get("state", "open")
                found = [p for p in pulls if state == "all" or p["state"] == state]
                if ":" in query.get("head", ""):  # "owner:branch"; without the owner GitHub ignores it
                    found = [p for p in found if p["head"]["label"] == query["head"]]
                if "base" in query:
                    found = [p for p in found if p["base"]["ref"] == query["base"]]
                return self._page(found, f"/repos/{repo}/pulls", query)
            if method == "POST":
                head, base, title = body.get("head"), body.get("base"), body.get("title")
                if not all(isinstance(v, str) and v for v in (head, base, title)):
                    return 422, {"message": "Validation Failed", "errors": [{"code": "missing_field"}]}, {}
                label = head if ":" in head else f"{owner}:{head}"
                if any(
                    p["state"] == "open" and p["head"]["label"] == label and p["base"]["ref"] == base
                    for p in pulls
                ):
                    message = f"A pull request already exists for {label}."
                    return (
                        422,
                        {"message": "Validation Failed", "errors": [{"code": "custom", "message": message}]},
                        {},
                    )
                issue = self._new_issue(
                    repo, {"title": title, "body": body.get("body") or ""}, pull_request=True
                )
                now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                pull = {
                    "id": next(self._ids),
                    "number": issue["number"],
                    "state": "open",
                    "title": title,
                    "body": body.get("body"),
                    "draft": bool(body.get("draft", False)),
                    "merged": False,
                    "user": dict(self.identity),
                    "head": {"label": label, "ref": label.split(":", 1)[1]},
                    "base": {"label": f"{owner}:{base}", "ref": base},
                    "url": f"{self.url}/repos/{repo}/pulls/{issue['number']}",
                    "html_url": f"https://github.com/{repo}/pull/{issue['number']}",
                    "created_at": now,
                    "updated_at": now,
                }
                pulls.append(pull)
                return 201, pull, {}
            return not_found
        for pull in pulls:
            if pull["number"] == int(number_text):
                if method == "GET":
                    return 200, pull, {}
                if method == "PATCH":
                    if "title" in body and (not isinstance(body["title"], str) or not body["title"]):
                        return 422, {"message": "Validation Failed"}, {}
                    for key in ("title", "body", "state"):
                        if key in body:
                            pull[key] = body[key]
                    if "base" in body:
                        pull["base"] = {"label": f"{owner}:{body['base']}", "ref": body["base"]}
                    pull["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                    for issue in self._issues.get(repo, []):  # the pull request's issue side
                        if issue["number"] == pull["number"]:
                            issue.update({k: pull[k] for k in ("title", "body", "state")})
                    return 200, pull, {}
        return not_found

    def _page(
        self, items: list[dict[str, Any]], path: str, query: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = max(1, min(int(query.get("per_page", 30)), self.max_per_page))
        page = max(1, int(query.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        for rel, target in (("next", page + 1), ("last", last)):
            if rel == "next" and page >= last:
                continue
            params = dict(query, per_page=str(per_page), page=str(target))
            links.append(f'<{self.url}{path}?{urllib.parse.urlencode(params)}>; rel="{rel}"')
        return 200, [dict(item) for item in chunk], ({"Link": ", ".join(links)} if links else {})


@pytest.fixture
def github_api() -> Iterator[GitHubStandIn]:
    """A fresh stand-in GitHub API per test."""
    with GitHubStandIn() as server:
        yield server
