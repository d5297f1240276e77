"""The few GitHub REST calls the report needs: one pull-request comment and one issue, kept current.

Each report lives in one comment found by a hidden marker (``<!-- mlci-report:<key> -->``), so a
rerun edits it instead of adding another; an issue works the same way with
``<!-- mlci-issue:<key> -->``, among the open issues. Anyone can paste the marker into a comment
or an issue of their own, so only those written by the token's own identity are candidates for
editing: the identity comes from GraphQL's ``viewer`` (which answers for installation tokens such
as ``GITHUB_TOKEN`` and for personal tokens), else ``GET /user``; when neither tells, nothing is
edited and a new comment or issue is written. Rate limits (403/429 with ``Retry-After`` or
``x-ratelimit-reset``) and transient failures are retried through :mod:`mlci_lib.retry`. When the
token cannot comment at all (no token, no pull request, 401/403/404 as on pull requests from
forks), the call returns ``skipped`` with the reason instead of raising: a report must not fail
a pipeline. The token is sent only to the API host it was given for (no redirects are followed).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from mlci_lib.errors import ServiceError, UsageError
from mlci_lib.report.fit import COMMENT_BUDGET, fit_markdown
from mlci_lib.results import Result
from mlci_lib.retry import (
    TRANSIENT_HTTP_STATUSES,
    RetryPolicy,
    Transient,
    call_with_retries,
    parse_retry_after,
)

DEFAULT_API_URL = "https://api.github.com"
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_FULL_MARKER = re.compile(r"<!-- [A-Za-z0-9_.:-]{1,80} -->")
_USER_AGENT = "mlci-report"
#: Pages of 100 comments read at most (10,000 comments) before giving up on finding ours.
MAX_PAGES = 100
#: GitHub refuses longer issue titles and label names (HTTP 422); checking them first makes that
#: a usage error before the report is rendered or any request is sent.
MAX_TITLE = 256
MAX_LABEL = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

CREATED, UPDATED, SKIPPED = "created", "updated", "skipped"


@dataclasses.dataclass(frozen=True)
class CommentResult(Result):
    """What happened to the pull-request comment: created, updated or skipped (with the reason)."""

    SCHEMA: ClassVar[str] = "mlci.pr-comment"
    SCHEMA_VERSION: ClassVar[int] = 1

    action: str
    reason: str
    repository: str | None
    number: int | None
    comment_id: int | None = None
    url: str | None = None
    truncated: bool = False

    @property
    def skipped(self) -> bool:
        return self.action == SKIPPED


@dataclasses.dataclass(frozen=True)
class IssueResult(Result):
    """What happened to the issue: created, updated or skipped (with the reason)."""

    SCHEMA: ClassVar[str] = "mlci.issue"
    SCHEMA_VERSION: ClassVar[int] = 1

    action: str
    reason: str
    repository: str | None
    number: int | None = None
    url: str | None = None
    truncated: bool = False

    @property
    def skipped(self) -> bool:
        return self.action == SKIPPED


class GitHubHttpError(ServiceError):
    """GitHub answered with an HTTP error status."""

    def __init__(self, status: int, method: str, path: str, message: str, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers
        self.api_message = message
        super().__init__(f"GitHub API {method} {path} answered HTTP {status}: {message}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None  # the error surfaces as an HTTPError with the 3xx status


def marker_for(key: str, *, kind: str = "report") -> str:
    """The hidden marker of report ``key`` (a full ``<!-- ... -->`` marker is taken as is)."""
    if key.startswith("<!--") and key.endswith("-->"):
        # Taken as is only when it is one plain comment: the marker opens the body unescaped.
        if not _FULL_MARKER.fullmatch(key):
            raise UsageError(
                f"report marker {key!r} must be one HTML comment of letters, digits and '.:_-'",
                hint="e.g. <!-- mlci-report:nightly -->, or pass a key such as nightly",
            )
        return key
    if not _KEY.match(key):
        raise UsageError(
            f"report key {key!r} may use only letters, digits, '.', '_' and '-' (up to 64)",
            hint="e.g. --key default, or --key nightly",
        )
    return f"<!-- mlci-{kind}:{key} -->"


def issue_title(title: str) -> str:
    """``title`` on one line, or a UsageError when it is empty or longer than GitHub accepts."""
    if not isinstance(title, str):
        raise UsageError(f"the issue title must be text, not {type(title).__name__}")
    line = " ".join(title.split())
    if not line:
        raise UsageError("the issue title is empty", hint="e.g. --issue-title 'mlci: data drift detected'")
    if len(line) > MAX_TITLE:
        raise UsageError(f"the issue title has {len(line)} characters; GitHub takes at most {MAX_TITLE}")
    return line


def issue_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """The label names, checked and without repeats, or a UsageError naming the bad one."""
    if isinstance(labels, str):
        # A bare string would be read as one label per character.
        raise UsageError(f"issue labels must be a list of names, not the string {labels!r}")
    names: list[str] = []
    for label in labels:
        name = label.strip() if isinstance(label, str) else ""
        if not name:
            raise UsageError(
                f"issue label {label!r} is not a label name", hint="e.g. --issue-labels drift,monitoring"
            )
        if "," in name or _CONTROL.search(name):
            raise UsageError(f"issue label {name!r} may not hold commas or control characters")
        if len(name) > MAX_LABEL:
            raise UsageError(
                f"issue label {name[:20]!r}... has {len(name)} characters; GitHub takes at most {MAX_LABEL}"
            )
        if name not in names:
            names.append(name)
    return tuple(names)


def _rate_limit_wait(error: GitHubHttpError) -> float | None:
    """Seconds to wait when ``error`` is a rate limit, else None."""
    headers = error.headers
    limited = error.status == 429 or (
        error.status == 403
        and (
            headers.get("x-ratelimit-remaining") == "0"
            or "retry-after" in headers
            or "rate limit" in error.api_message.lower()
        )
    )
    if not limited:
        return None
    retry_after = parse_retry_after(headers.get("retry-after"))
    if retry_after is not None:
        return retry_after
    reset = headers.get("x-ratelimit-reset")
    if reset and reset.strip().isdigit():
        return max(int(reset) - time.time(), 0.0) + 1.0
    return 60.0  # GitHub's advice for a secondary limit without headers: wait at least a minute


def classify(error: BaseException) -> Transient | None:
    if isinstance(error, GitHubHttpError):
        wait = _rate_limit_wait(error)
        if wait is not None:
            return Transient(retry_after=wait)
        if error.status in TRANSIENT_HTTP_STATUSES or error.status == 500:
            return Transient(retry_after=parse_retry_after(error.headers.get("retry-after")))
        return None
    if isinstance(error, (urllib.error.URLError, ConnectionError, TimeoutError)):
        return Transient()
    return None


class GitHubClient:
    """A minimal GitHub REST client: JSON in and out, retries, pagination, no redirects."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        policy: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(api_url.rstrip("/"))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(
                f"GitHub API URL {api_url!r} is not an http(s) URL", hint="e.g. https://api.github.com"
            )
        self.api_url = api_url.rstrip("/")
        self._origin = (parsed.scheme, parsed.netloc)
        self._token = token
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)
        self.calls = 0

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            parsed = urllib.parse.urlsplit(path_or_url)
            if (parsed.scheme, parsed.netloc) != self._origin:
                raise ServiceError(
                    f"GitHub API sent a link to another host ({parsed.netloc}); "
                    "refusing to send the token there"
                )
            return path_or_url
        return self.api_url + path_or_url

    def _once(self, method: str, url: str, body: Any) -> tuple[Any, dict[str, str]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        request.add_header("User-Agent", _USER_AGENT)
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        path = urllib.parse.urlsplit(url).path
        self.calls += 1
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
                headers = {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as error:
            headers = {k.lower(): v for k, v in (error.headers or {}).items()}
            try:
                payload = json.loads(error.read() or b"{}")
                message = str(payload.get("message", "")) if isinstance(payload, dict) else ""
            except (ValueError, OSError):
                message = ""
            raise GitHubHttpError(error.code, method, path, message or error.reason or "", headers) from None
        try:
            return (json.loads(raw) if raw else None), headers
        except ValueError:
            raise ServiceError(
                f"GitHub API {method} {path} answered with something that is not JSON"
            ) from None

    def request(self, method: str, path_or_url: str, body: Any = None) -> tuple[Any, dict[str, str]]:
        url = self._url(path_or_url)
        return call_with_retries(lambda: self._once(method, url, body), classify, policy=self.policy)

    def paginate(self, path: str) -> Any:
        """Yield the items of every page of a list endpoint, following ``Link: rel="next"``."""
        url: str | None = path
        for _ in range(MAX_PAGES):
            if url is None:
                return
            items, headers = self.request("GET", url)
            if not isinstance(items, list):
                raise ServiceError(f"GitHub API GET {path} did not answer with a list")
            yield from items
            url = _next_link(headers.get("link", ""))
        raise ServiceError(f"GitHub API GET {path} has more than {MAX_PAGES} pages; giving up")


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who the token acts as: a user, or an app's bot (``github-actions[bot]`` for GITHUB_TOKEN)."""

    login: str
    id: int | None

    def wrote(self, item: Mapping[str, Any]) -> bool:
        """True when ``item`` (a comment or an issue) was written by this identity."""
        user = item.get("user")
        if not isinstance(user, dict):
            return False
        user_id = user.get("id")
        if self.id is not None and isinstance(user_id, int) and not isinstance(user_id, bool):
            return user_id == self.id
        login = user.get("login")
        return isinstance(login, str) and _bare_login(login) == _bare_login(self.login)


def _bare_login(login: str) -> str:
    # REST names an app's bot "name[bot]"; compare without the suffix and without case.
    return login.lower().removesuffix("[bot]")


def graphql_url(api_url: str) -> str:
    """GraphQL's endpoint next to the REST ``api_url`` (GitHub Enterprise: ``/api/graphql``)."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


def token_identity(client: GitHubClient) -> Identity | None:
    """The token's identity, or None when GitHub does not tell (then nothing may be edited)."""
    try:
        data, _ = client.request(
            "POST", graphql_url(client.api_url), {"query": "query { viewer { login databaseId } }"}
        )
        viewer = ((data or {}).get("data") or {}).get("viewer") if isinstance(data, dict) else None
        if isinstance(viewer, dict) and isinstance(viewer.get("login"), str) and viewer["login"]:
            number = viewer.get("databaseId")
            return Identity(viewer["login"], number if isinstance(number, int) else None)
    except (GitHubHttpError, ServiceError):
        pass
    try:
        # A personal token also answers GET /user; an installation token gets 403 here.
        data, _ = client.request("GET", "/user")
    except GitHubHttpError:
        return None
    if isinstance(data, dict) and isinstance(data.get("login"), str) and data["login"]:
        number = data.get("id")
        return Identity(data["login"], number if isinstance(number, int) else None)
    return None


def _next_link(header: str) -> str | None:
    for part in header.split(","):
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', part)
        if match:
            return match.group(1)
    return None


def _body(markdown: Any, marker: str) -> tuple[str, bool]:
    text = markdown.markdown if hasattr(markdown, "markdown") else str(markdown)
    # The marker identifies our comment; no other copy of it may sit in the body.
    text = text.replace(marker, "")
    budget = COMMENT_BUDGET - len(marker) - 1
    fitted = fit_markdown(text, budget)
    return f"{marker}\n{fitted}", fitted != text


def _soft(error: GitHubHttpError, what: str) -> str | None:
    """The reason to skip for a permission-like failure, or None when it is a real failure."""
    if _rate_limit_wait(error) is not None:
        return None  # still rate limited after every retry: that is an outage, not a permission
    if error.status in (401, 403):
        return (
            f"the token cannot {what} (HTTP {error.status}: {error.api_message or 'forbidden'}); "
            "pull requests from forks get a read-only token, and the workflow needs "
            "'permissions: pull-requests: write'"
        )
    if error.status == 404:
        return (
            f"GitHub answered 404 when trying to {what}: the repository or number does not exist, "
            "or the token cannot see it"
        )
    return None


def _check_target(token: str | None, repository: str | None) -> str | None:
    if not token:
        return "no token: set GITHUB_TOKEN (the action passes github.token by default)"
    if not repository:
        return "no repository: set GITHUB_REPOSITORY or --repository"
    if not _REPOSITORY.match(repository):
        raise UsageError(
            f"repository {repository!r} is not owner/name", hint="e.g. --repository octo/project"
        )
    return None


def post_pr_comment(
    markdown: Any,
    *,
    token: str | None,
    repository: str | None,
    pr_number: int | None,
    api_url: str = DEFAULT_API_URL,
    marker: str = "default",
    policy: RetryPolicy | None = None,
) -> CommentResult:
    """Create or update the one comment of report ``marker`` (a key) on pull request ``pr_number``."""
    hidden = marker_for(marker)
    reason = _check_target(token, repository)
    if reason is None and not pr_number:
        reason = "no pull request number (not a pull_request event; pass --pr-number to comment anyway)"
    if reason is not None:
        return CommentResult(SKIPPED, reason, repository, pr_number)
    assert token and repository and pr_number
    if isinstance(pr_number, bool) or not isinstance(pr_number, int) or pr_number < 1:
        raise UsageError(f"pull request number must be a positive whole number, got {pr_number!r}")
    body, truncated = _body(markdown, hidden)
    client = GitHubClient(token, api_url=api_url, policy=policy)
    base = f"/repos/{repository}/issues"
    try:
        ours = None
        matches = []
        for comment in client.paginate(f"{base}/{pr_number}/comments?per_page=100"):
            if isinstance(comment, dict) and str(comment.get("body") or "").startswith(hidden):
                matches.append(comment)
        note = ""
        if matches:
            # Someone else may have pasted the marker: only the token's own comment is ours.
            identity = token_identity(client)
            if identity is None:
                note = " (GitHub did not say who the token is, so no comment was edited)"
            else:
                ours = next((c for c in matches if identity.wrote(c)), None)
        if ours is not None:
            data, _ = client.request("PATCH", f"{base}/comments/{int(ours['id'])}", {"body": body})
            action, reason = UPDATED, f"updated comment {ours['id']} in place"
        else:
            data, _ = client.request("POST", f"{base}/{pr_number}/comments", {"body": body})
            action, reason = CREATED, "created the report comment" + note
    except GitHubHttpError as error:
        soft = _soft(error, f"comment on {repository}#{pr_number}")
        if soft is None:
            raise
        return CommentResult(SKIPPED, soft, repository, pr_number)
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        raise ServiceError(f"GitHub API did not return the comment it wrote on {repository}#{pr_number}")
    return CommentResult(
        action, reason, repository, pr_number, data["id"], data.get("html_url"), truncated=truncated
    )


def open_or_update_issue(
    title: str,
    body: Any,
    *,
    token: str | None,
    repository: str | None,
    api_url: str = DEFAULT_API_URL,
    marker: str = "default",
    labels: Sequence[str] = (),
    policy: RetryPolicy | None = None,
) -> IssueResult:
    """Open the issue of ``marker`` (a key), or update it while it is open, e.g. for drift alerts.

    An update replaces the title and body but leaves the labels alone: people may have relabelled
    the issue while triaging it. Closing the issue ends it; the next call opens a new one.
    """
    hidden = marker_for(marker, kind="issue")
    title = issue_title(title)
    names = issue_labels(labels)
    reason = _check_target(token, repository)
    if reason is not None:
        return IssueResult(SKIPPED, reason, repository)
    assert token and repository
    text, truncated = _body(body, hidden)
    client = GitHubClient(token, api_url=api_url, policy=policy)
    base = f"/repos/{repository}/issues"
    try:
        found = None
        marked = []
        for issue in client.paginate(f"{base}?state=open&per_page=100"):
            if not isinstance(issue, dict) or "pull_request" in issue:
                continue
            if str(issue.get("body") or "").startswith(hidden):
                marked.append(issue)
        note = ""
        if marked:
            # Only an issue the token itself opened is ours to edit (anyone can paste a marker).
            identity = token_identity(client)
            if identity is None:
                note = " (GitHub did not say who the token is, so no issue was edited)"
            else:
                found = next((i for i in marked if identity.wrote(i)), None)
        if found is not None:
            payload: dict[str, Any] = {"title": title, "body": text}
            data, _ = client.request("PATCH", f"{base}/{int(found['number'])}", payload)
            action, reason = UPDATED, f"updated issue #{found['number']}"
        else:
            payload = {"title": title, "body": text}
            if names:
                payload["labels"] = list(names)
            data, _ = client.request("POST", base, payload)
            action, reason = CREATED, "opened a new issue" + note
    except GitHubHttpError as error:
        soft = _soft(error, f"open or edit issues of {repository}")
        if soft is None:
            raise
        return IssueResult(SKIPPED, soft.replace("pull-requests: write", "issues: write"), repository)
    if not isinstance(data, dict) or not isinstance(data.get("number"), int):
        raise ServiceError(f"GitHub API did not return the issue it wrote in {repository}")
    return IssueResult(action, reason, repository, data["number"], data.get("html_url"), truncated=truncated)


def pr_number_from_event(environ: Mapping[str, str]) -> tuple[int | None, str | None]:
    """The pull request number of the running event (``GITHUB_EVENT_PATH``), and a note when none.

    ``pull_request`` and ``pull_request_target`` events carry ``pull_request.number``; an
    ``issue_comment`` on a pull request carries ``issue.number`` with ``issue.pull_request``.
    """
    path = environ.get("GITHUB_EVENT_PATH", "")
    if not path:
        return None, None
    try:
        with open(path, encoding="utf-8") as handle:
            event = json.load(handle)
    except (OSError, ValueError) as error:
        return None, f"the event file {path} cannot be read: {' '.join(str(error).split())[:120]}"
    if not isinstance(event, dict):
        return None, f"the event file {path} is not a JSON object"
    for holder in (
        event.get("pull_request"),
        event.get("issue")
        if isinstance(event.get("issue"), dict) and "pull_request" in event["issue"]
        else None,
    ):
        number = holder.get("number") if isinstance(holder, dict) else None
        if isinstance(number, int) and not isinstance(number, bool) and number > 0:
            return number, None
    return None, None
