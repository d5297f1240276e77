"""The pull-request comment and the issue, against the stand-in GitHub API (tests/helpers/github_api.py).

GitHub itself cannot be reached from tests; the stand-in answers as GitHub does, including
pagination, rate limits and the permission errors a fork's token gets.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlci_lib.cli import main
from mlci_lib.drift import detect_drift
from mlci_lib.errors import ServiceError, UsageError
from mlci_lib.files import write_json_atomic
from mlci_lib.report import open_or_update_issue, post_pr_comment
from mlci_lib.report.fit import COMMENT_BUDGET, TRUNCATED_NOTE
from mlci_lib.report.github import GitHubClient, pr_number_from_event
from mlci_lib.retry import RetryPolicy
from mlci_lib.runner import CiRunner
from tests.helpers.github_api import GitHubStandIn

REPO = "octo/app"
TOKEN = "ghs_standin_token_0123456789"
MARKER = "<!-- mlci-report:default -->"
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def github_api() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as server:
        yield server


def post(server: GitHubStandIn, markdown: str, *, number: int = 7, **kwargs: object):  # type: ignore[no-untyped-def]
    options = {"token": TOKEN, "repository": REPO, "pr_number": number, "api_url": server.url, "policy": FAST}
    options.update(kwargs)
    return post_pr_comment(markdown, **options)  # type: ignore[arg-type]


def test_create_then_update_keeps_one_comment(github_api: GitHubStandIn) -> None:
    github_api.token = TOKEN
    github_api.add_comment(REPO, 7, "LGTM")
    first = post(github_api, "## ✅ mlci: passed\n\nfirst run")
    assert (first.action, first.comment_id) == ("created", 1002)
    second = post(github_api, "## ❌ mlci: failed at **gate**\n\nsecond run")
    assert second.action == "updated" and second.comment_id == first.comment_id
    comments = github_api.comments(REPO, 7)
    assert [c["body"].startswith(MARKER) for c in comments] == [False, True]
    assert comments[1]["body"] == f"{MARKER}\n## ❌ mlci: failed at **gate**\n\nsecond run"
    assert second.url == comments[1]["html_url"]
    assert all(r.authorization == f"Bearer {TOKEN}" for r in github_api.requests)


def test_each_key_keeps_its_own_comment(github_api: GitHubStandIn) -> None:
    post(github_api, "nightly", marker="nightly")
    post(github_api, "pr")
    post(github_api, "nightly again", marker="nightly")
    bodies = [c["body"] for c in github_api.comments(REPO, 7)]
    assert bodies == ["<!-- mlci-report:nightly -->\nnightly again", f"{MARKER}\npr"]


def test_finds_its_comment_on_a_later_page(github_api: GitHubStandIn) -> None:
    github_api.max_per_page = 25
    for i in range(60):
        github_api.add_comment(REPO, 7, f"comment {i}")
    ours = github_api.add_comment(
        REPO, 7, f"{MARKER}\nold report", user={"login": "github-actions[bot]", "type": "Bot"}
    )
    for i in range(10):
        github_api.add_comment(REPO, 7, f"later {i}")
    result = post(github_api, "new report")
    assert result.action == "updated" and result.comment_id == ours["id"]
    pages = [r.query.get("page", "1") for r in github_api.requests if r.method == "GET"]
    assert pages == ["1", "2", "3"]
    assert len(github_api.comments(REPO, 7)) == 71


def test_prefers_the_bot_comment_and_ignores_quoted_markers(github_api: GitHubStandIn) -> None:
    github_api.add_comment(REPO, 7, f"> {MARKER}\n> quoted report")
    github_api.add_comment(REPO, 7, f"{MARKER}\nsomeone pasted our marker")
    bot = github_api.add_comment(
        REPO, 7, f"{MARKER}\nours", user={"login": "github-actions[bot]", "type": "Bot"}
    )
    result = post(github_api, "fresh")
    assert result.comment_id == bot["id"]
    assert [c["body"] for c in github_api.comments(REPO, 7)][:2] == [
        f"> {MARKER}\n> quoted report",
        f"{MARKER}\nsomeone pasted our marker",
    ]


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        pytest.param(403, {"retry_after": 0}, id="403-retry-after"),
        pytest.param(429, {"retry_after": 0}, id="429-retry-after"),
        pytest.param(403, {"reset_in": 0}, id="403-ratelimit-reset"),
    ],
)
@pytest.mark.slow
def test_rate_limit_then_success(github_api: GitHubStandIn, status: int, headers: dict[str, float]) -> None:
    github_api.rate_limit_next(count=2, status=status, **headers)
    result = post(github_api, "report")
    assert result.action == "created"
    assert [r.status for r in github_api.requests] == [status, status, 200, 201]
    assert len(github_api.comments(REPO, 7)) == 1


def test_server_errors_are_retried(github_api: GitHubStandIn) -> None:
    github_api.fail_next(502, methods=("POST",))
    result = post(github_api, "report")
    assert result.action == "created"
    assert [r.status for r in github_api.requests] == [200, 502, 201]
    assert len(github_api.comments(REPO, 7)) == 1


def test_rate_limit_that_does_not_lift_fails_without_posting(github_api: GitHubStandIn) -> None:
    github_api.rate_limit_next(count=10, retry_after=0)
    with pytest.raises(ServiceError, match="HTTP 403: API rate limit exceeded"):
        post(github_api, "report")
    assert github_api.comments(REPO, 7) == []
    assert len(github_api.requests) == FAST.attempts


def test_a_failed_listing_never_creates_a_duplicate(github_api: GitHubStandIn) -> None:
    github_api.max_per_page = 1
    github_api.add_comment(REPO, 7, "other")
    github_api.add_comment(REPO, 7, f"{MARKER}\nold", user={"login": "github-actions[bot]", "type": "Bot"})
    github_api.fail_next(500, count=10, methods=("GET",))
    with pytest.raises(ServiceError):
        post(github_api, "new")
    assert [r.method for r in github_api.requests] == ["GET"] * FAST.attempts
    assert len(github_api.comments(REPO, 7)) == 2


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        pytest.param(
            lambda s: setattr(s, "forbid_writes", True), "HTTP 403: Resource not accessible", id="fork-403"
        ),
        pytest.param(lambda s: s.missing.add(REPO), "404", id="repo-404"),
        pytest.param(lambda s: s.missing.add(f"{REPO}#7"), "404", id="pr-404"),
        pytest.param(
            lambda s: setattr(s, "token", "another"), "HTTP 401: Bad credentials", id="bad-token-401"
        ),
    ],
)
def test_token_that_cannot_comment_is_skipped(github_api: GitHubStandIn, setup, reason: str) -> None:  # type: ignore[no-untyped-def]
    setup(github_api)
    result = post(github_api, "report")
    assert result.action == "skipped" and reason in result.reason, result.reason
    assert result.comment_id is None
    assert github_api.comments(REPO, 7) == []


def test_missing_token_repository_or_number_is_skipped_without_a_request(github_api: GitHubStandIn) -> None:
    assert "no token" in post(github_api, "r", token="").reason
    assert "no repository" in post(github_api, "r", repository="").reason
    assert "no pull request number" in post(github_api, "r", number=None).reason
    assert github_api.requests == []
    with pytest.raises(UsageError, match="not owner/name"):
        post(github_api, "r", repository="octo/app/../../x")


def test_body_stays_under_the_limit_with_the_marker_first(github_api: GitHubStandIn) -> None:
    table = "\n".join(f"| row {i} | {'z' * 100} |" for i in range(2000))
    markdown = f"## ❌ mlci: failed\n\n### Drift\n\n| a | b |\n| --- | --- |\n{table}\n\n{MARKER}\n"
    result = post(github_api, markdown)
    assert result.action == "created" and result.truncated
    body = github_api.comments(REPO, 7)[0]["body"]
    assert len(body) <= COMMENT_BUDGET < 65_536
    assert body.startswith(MARKER + "\n## ❌ mlci: failed") and body.count(MARKER) == 1
    assert TRUNCATED_NOTE in body


def test_links_to_another_host_are_refused() -> None:
    client = GitHubClient(TOKEN, api_url="http://127.0.0.1:9")
    with pytest.raises(ServiceError, match="another host"):
        client._url("https://attacker.example/repos/x")
    with pytest.raises(UsageError, match="not an http"):
        GitHubClient(TOKEN, api_url="file:///etc/passwd")


# -- whose comment and issue ----------------------------------------------------------------------


def test_a_marker_planted_by_another_user_or_app_is_not_taken_over(github_api: GitHubStandIn) -> None:
    planted = [
        github_api.add_comment(REPO, 7, f"{MARKER}\nplanted by a user"),
        github_api.add_comment(
            REPO, 7, f"{MARKER}\nplanted by an app", user={"login": "evil[bot]", "id": 666, "type": "Bot"}
        ),
        github_api.add_comment(
            REPO, 7, f"{MARKER}\nsame login, another account",
            user={"login": "github-actions[bot]", "id": 1, "type": "Bot"},
        ),
    ]  # fmt: skip
    first = post(github_api, "report one")
    assert first.action == "created"
    second = post(github_api, "report two")
    assert second.action == "updated" and second.comment_id == first.comment_id
    comments = {c["id"]: c["body"] for c in github_api.comments(REPO, 7)}
    assert [comments[c["id"]] for c in planted] == [c["body"] for c in planted]
    assert comments[first.comment_id] == f"{MARKER}\nreport two"
    assert "/graphql" in [r.path for r in github_api.requests]


def test_a_personal_token_edits_only_its_own_comment(github_api: GitHubStandIn) -> None:
    github_api.installation_token = False
    github_api.graphql_status = 404  # no GraphQL: the identity comes from GET /user
    github_api.identity = {"login": "alice", "id": 5, "type": "User"}
    github_api.add_comment(REPO, 7, f"{MARKER}\nbob's", user={"login": "bob", "id": 6, "type": "User"})
    mine = github_api.add_comment(REPO, 7, f"{MARKER}\nalice's", user=dict(github_api.identity))
    result = post(github_api, "fresh")
    assert result.action == "updated" and result.comment_id == mine["id"]
    assert [c["body"] for c in github_api.comments(REPO, 7)] == [f"{MARKER}\nbob's", f"{MARKER}\nfresh"]


def test_when_github_does_not_say_who_the_token_is_nothing_is_edited(github_api: GitHubStandIn) -> None:
    github_api.graphql_status = 404  # and GET /user answers 403 to an installation token
    ours = github_api.add_comment(REPO, 7, f"{MARKER}\nold", user=dict(github_api.identity))
    result = post(github_api, "fresh")
    assert result.action == "created" and "no comment was edited" in result.reason
    assert github_api.comments(REPO, 7)[0]["body"] == ours["body"]


def test_the_stand_in_answers_who_the_token_is_as_github_does(github_api: GitHubStandIn) -> None:
    from mlci_lib.report.github import GitHubHttpError, token_identity

    github_api.token = TOKEN
    client = GitHubClient(TOKEN, api_url=github_api.url, policy=FAST)
    with pytest.raises(GitHubHttpError) as refused:
        client.request("GET", "/user")  # an installation token may not read /user
    assert refused.value.status == 403 and "not accessible by integration" in refused.value.api_message
    identity = token_identity(client)
    assert identity is not None and (identity.login, identity.id) == ("github-actions[bot]", 41898282)
    # A token GitHub does not accept has no identity: nothing may be edited with it.
    assert token_identity(GitHubClient("wrong", api_url=github_api.url, policy=FAST)) is None


@pytest.mark.parametrize("marker", ["<!-- a --><img src=x><!-- b -->", "<!-- @admin -->", "<!--\n# h -->"])
def test_a_full_marker_must_be_one_plain_comment(github_api: GitHubStandIn, marker: str) -> None:
    with pytest.raises(UsageError, match="one HTML comment"):
        post(github_api, "body", marker=marker)
    assert github_api.requests == []


def test_an_issue_planted_with_the_marker_is_not_edited(github_api: GitHubStandIn) -> None:
    other = {"login": "mallory", "id": 77, "type": "User"}
    planted = github_api.add_issue(REPO, "planted", "<!-- mlci-issue:default -->\nplanted", user=other)
    options = {"token": TOKEN, "repository": REPO, "api_url": github_api.url, "policy": FAST}
    first = open_or_update_issue("Drift", "body one", **options)  # type: ignore[arg-type]
    assert first.action == "created" and first.number != planted["number"]
    second = open_or_update_issue("Drift", "body two", **options)  # type: ignore[arg-type]
    assert second.action == "updated" and second.number == first.number
    issues = {i["number"]: i for i in github_api.issues(REPO)}
    assert issues[planted["number"]]["body"] == "<!-- mlci-issue:default -->\nplanted"
    assert issues[planted["number"]]["title"] == "planted"


# -- issues ----------------------------------------------------------------------------------------


def test_issue_opened_once_then_updated(github_api: GitHubStandIn) -> None:
    github_api.add_issue(REPO, "a pull request", "<!-- mlci-issue:drift -->\nnot an issue", pull_request=True)
    github_api.add_issue(REPO, "unrelated", "hello")
    options = {
        "token": TOKEN,
        "repository": REPO,
        "api_url": github_api.url,
        "marker": "drift",
        "policy": FAST,
    }
    first = open_or_update_issue("Drift in production", "2 features drifted", labels=["drift"], **options)  # type: ignore[arg-type]
    assert first.action == "created" and first.number == 3
    second = open_or_update_issue("Drift in production (again)", "3 features drifted", **options)  # type: ignore[arg-type]
    assert second.action == "updated" and second.number == 3
    issues = [i for i in github_api.issues(REPO) if "pull_request" not in i]
    assert len(issues) == 2
    ours = issues[1]
    assert ours["title"] == "Drift in production (again)"
    assert ours["body"] == "<!-- mlci-issue:drift -->\n3 features drifted"
    assert ours["labels"] == [{"name": "drift"}]


def test_issue_without_permission_is_skipped(github_api: GitHubStandIn) -> None:
    github_api.forbid_writes = True
    result = open_or_update_issue("t", "b", token=TOKEN, repository=REPO, api_url=github_api.url, policy=FAST)
    assert result.action == "skipped" and "issues: write" in result.reason


# -- the event payload and the CLI -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "number"),
    [
        pytest.param({"pull_request": {"number": 12}, "number": 12}, 12, id="pull_request"),
        pytest.param({"issue": {"number": 5, "pull_request": {}}}, 5, id="issue_comment-on-pr"),
        pytest.param({"issue": {"number": 5}}, None, id="issue_comment-on-issue"),
        pytest.param({"ref": "refs/heads/main"}, None, id="push"),
        pytest.param({"pull_request": {"number": "12; rm -rf /"}}, None, id="hostile-number"),
    ],
)
def test_pr_number_from_event(tmp_path: Path, payload: dict[str, object], number: int | None) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps(payload))
    assert pr_number_from_event({"GITHUB_EVENT_PATH": str(event)}) == (number, None)


def test_unreadable_event_file_is_noted(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text("{trunc")
    number, note = pr_number_from_event({"GITHUB_EVENT_PATH": str(event)})
    assert number is None and note and "cannot be read" in note


def _verdict(tmp_path: Path, passed: bool = True) -> Path:
    """A drift verdict written by mlci drift on data that drifts or does not."""
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"age": rng.normal(40, 8, 300)})
    current = pd.DataFrame({"age": rng.normal(40 if passed else 60, 8, 300)})
    reference.to_csv(tmp_path / "reference.csv", index=False)
    current.to_csv(tmp_path / "current.csv", index=False)
    path = tmp_path / "drift.json"
    verdict = detect_drift(tmp_path / "reference.csv", tmp_path / "current.csv")
    assert verdict.passed is passed
    write_json_atomic(path, verdict.to_dict())
    return path


def _run(
    tmp_path: Path, server: GitHubStandIn, argv: list[str], *, from_env: bool = False, **env: str
) -> tuple[int, str, str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    environ = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": server.url,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        **env,
    }
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)  # the default report file lands here, not in the work tree
        for name, value in environ.items():
            patch.setenv(name, value)
        command = ["--from-env", "report"] if from_env else ["report", *argv]
        code = main(command, runner=CiRunner(environ=environ, stdout=out, stderr=err))
    outputs = (tmp_path / "output.txt").read_text() if (tmp_path / "output.txt").exists() else ""
    return code, out.getvalue(), err.getvalue(), outputs


def test_cli_comments_on_the_event_pull_request_and_masks_the_token(
    tmp_path: Path, github_api: GitHubStandIn
) -> None:
    github_api.token = TOKEN
    verdict = _verdict(tmp_path)
    code, out, err, outputs = _run(
        tmp_path, github_api, [str(verdict), "--report-file", str(tmp_path / "r.md")]
    )
    assert code == 0, out + err
    assert out.startswith(f"::add-mask::{TOKEN}\n") and out.count(TOKEN) == 1
    assert re.search(r"comment-action<<\S+\ncreated\n", outputs)
    assert re.search(r"comment-id<<\S+\n1001\n", outputs)
    code, out, err, outputs = _run(
        tmp_path, github_api, [str(verdict), "--report-file", str(tmp_path / "r.md")]
    )
    assert code == 0 and re.search(r"comment-action<<\S+\nupdated\n", outputs), out + err
    assert len(github_api.comments(REPO, 7)) == 1


def test_cli_fork_token_warns_and_exits_0(tmp_path: Path, github_api: GitHubStandIn) -> None:
    github_api.forbid_writes = True
    code, out, err, outputs = _run(tmp_path, github_api, [str(_verdict(tmp_path, passed=False))])
    assert code == 0, out + err
    assert (
        "::warning title=mlci report%3A no PR comment::the token cannot comment on octo/app#7 (HTTP 403"
        in out
    )
    assert re.search(r"comment-action<<\S+\nskipped\n", outputs)
    assert re.search(r"passed<<\S+\nfalse\n", outputs)
    assert "## ❌ mlci: failed at **drift**" in (tmp_path / "summary.md").read_text()


def test_cli_insisting_without_a_pull_request_warns(tmp_path: Path, github_api: GitHubStandIn) -> None:
    code, out, _, _ = _run(
        tmp_path, github_api, [str(_verdict(tmp_path)), "--comment", "true"], GITHUB_EVENT_PATH=""
    )
    assert code == 0 and "::warning title=mlci report%3A no PR comment::no pull request number" in out
    assert github_api.requests == []


def test_cli_never_comments_with_comment_false(tmp_path: Path, github_api: GitHubStandIn) -> None:
    code, out, _, _ = _run(tmp_path, github_api, [str(_verdict(tmp_path)), "--comment", "false"])
    assert code == 0 and github_api.requests == [] and "::warning" not in out


def test_cli_github_outage_exits_2_but_keeps_the_report(tmp_path: Path, github_api: GitHubStandIn) -> None:
    github_api.fail_next(503, count=50, headers={"retry-after": "0"})
    report = tmp_path / "r.md"
    code, out, err, outputs = _run(
        tmp_path, github_api, [str(_verdict(tmp_path)), "--report-file", str(report)]
    )
    assert code == 2, out + err
    assert (
        "::error title=mlci report%3A comment failed::GitHub API GET /repos/octo/app/issues/7/comments" in out
    )
    assert report.read_text().startswith("## ✅ mlci: passed")
    assert re.search(rf"report-file<<\S+\n{re.escape(str(report))}\n", outputs)


# -- the issue from the CLI (scheduled runs: no pull request) ---------------------------------------

ISSUE_MARKER = "<!-- mlci-issue:default -->"


def _issue_run(
    tmp_path: Path, server: GitHubStandIn, verdict: Path, *extra: str
) -> tuple[int, str, str, str]:
    argv = [str(verdict), "--report-file", str(tmp_path / "r.md"), "--comment", "false", *extra]
    return _run(tmp_path, server, argv, GITHUB_EVENT_PATH="")


def _output(outputs: str, name: str) -> str:
    """The value last written to output ``name`` (the outputs file grows over a test's runs)."""
    found = re.findall(rf"^{re.escape(name)}<<(\S+)\n(.*?)\n\1$", outputs, re.MULTILINE | re.DOTALL)
    assert found, f"no output {name} in {outputs!r}"
    return str(found[-1][1])


def test_cli_failed_verdict_opens_the_issue_then_updates_it(
    tmp_path: Path, github_api: GitHubStandIn
) -> None:
    github_api.token = TOKEN
    github_api.add_issue(REPO, "someone else's", "hello")
    verdict = _verdict(tmp_path, passed=False)
    code, out, err, outputs = _issue_run(
        tmp_path,
        github_api,
        verdict,
        "--issue-title",
        "Data drift",
        "--issue-labels",
        "drift, monitoring,drift",
    )
    assert code == 0, out + err
    assert out.startswith(f"::add-mask::{TOKEN}\n") and out.count(TOKEN) == 1
    assert "issue: created #2 https://github.com/octo/app/issues/2" in out
    assert (_output(outputs, "issue-action"), _output(outputs, "issue-number")) == ("created", "2")
    assert _output(outputs, "issue-url") == "https://github.com/octo/app/issues/2"
    assert _output(outputs, "comment-action") == "skipped"

    # People triage it in between; the rerun keeps their labels and edits the same issue.
    github_api.add_issue(REPO, "Data drift", "opened by hand, no marker")
    code, out, err, outputs = _issue_run(
        tmp_path, github_api, verdict, "--issue-title", "Data drift (still)", "--issue-labels", "drift"
    )
    assert code == 0, out + err
    assert (_output(outputs, "issue-action"), _output(outputs, "issue-number")) == ("updated", "2")
    ours = [i for i in github_api.issues(REPO) if i["body"].startswith(ISSUE_MARKER)]
    assert len(ours) == 1 and len(github_api.issues(REPO)) == 3
    assert ours[0]["title"] == "Data drift (still)"
    assert ours[0]["labels"] == [{"name": "drift"}, {"name": "monitoring"}]
    assert ours[0]["body"] == f"{ISSUE_MARKER}\n{(tmp_path / 'r.md').read_text()}"
    assert "## ❌ mlci: failed at **drift**" in ours[0]["body"]
    # One issue opened; the other POST asks GraphQL who the token is, before editing.
    assert [r.method for r in github_api.requests if r.path.endswith("/issues")].count("POST") == 1


def test_cli_closed_issue_is_not_reopened_a_new_one_is(tmp_path: Path, github_api: GitHubStandIn) -> None:
    verdict = _verdict(tmp_path, passed=False)
    _issue_run(tmp_path, github_api, verdict, "--issue-title", "Data drift")
    github_api.close_issue(REPO, 1)
    code, _, err, outputs = _issue_run(tmp_path, github_api, verdict, "--issue-title", "Data drift")
    assert code == 0 and _output(outputs, "issue-action") == "created", err
    assert [i["state"] for i in github_api.issues(REPO)] == ["closed", "open"]


def test_cli_passed_verdict_leaves_the_issue_alone(tmp_path: Path, github_api: GitHubStandIn) -> None:
    code, out, err, outputs = _issue_run(
        tmp_path, github_api, _verdict(tmp_path, passed=True), "--issue-title", "Data drift"
    )
    assert code == 0, out + err
    assert github_api.requests == [] and "::warning" not in out
    assert "issue: the verdict passed, so no issue" in out
    assert _output(outputs, "issue-action") == "skipped" and _output(outputs, "issue-number") == ""


def test_cli_issue_always_writes_a_passed_report(tmp_path: Path, github_api: GitHubStandIn) -> None:
    code, out, err, outputs = _issue_run(
        tmp_path, github_api, _verdict(tmp_path), "--issue", "always", "--issue-title", "Weekly drift report"
    )
    assert code == 0 and _output(outputs, "issue-action") == "created", out + err
    assert github_api.issues(REPO)[0]["body"].startswith(f"{ISSUE_MARKER}\n## ✅ mlci: passed")


def test_cli_issue_never_and_no_title_make_no_request(tmp_path: Path, github_api: GitHubStandIn) -> None:
    verdict = _verdict(tmp_path, passed=False)
    for extra in ((), ("--issue", "never", "--issue-title", "Data drift", "--issue-labels", "drift")):
        code, out, err, outputs = _issue_run(tmp_path, github_api, verdict, *extra)
        assert code == 0 and _output(outputs, "issue-action") == "skipped", out + err
    assert github_api.requests == []


def test_cli_issue_forbidden_warns_and_exits_0(tmp_path: Path, github_api: GitHubStandIn) -> None:
    github_api.forbid_writes = True
    code, out, err, outputs = _issue_run(
        tmp_path, github_api, _verdict(tmp_path, passed=False), "--issue-title", "Data drift"
    )
    assert code == 0, out + err
    assert "::warning title=mlci report%3A no issue::the token cannot open or edit issues of octo/app" in out
    assert "issues: write" in out
    assert _output(outputs, "issue-action") == "skipped" and _output(outputs, "issue-url") == ""
    assert "## ❌ mlci: failed at **drift**" in (tmp_path / "summary.md").read_text()
    assert github_api.issues(REPO) == []


def test_cli_issue_outage_exits_2_but_keeps_the_report(tmp_path: Path, github_api: GitHubStandIn) -> None:
    github_api.fail_next(503, count=50, headers={"retry-after": "0"})
    code, out, err, outputs = _issue_run(
        tmp_path, github_api, _verdict(tmp_path, passed=False), "--issue-title", "Data drift"
    )
    assert code == 2, out + err
    assert "::error title=mlci report%3A issue failed::GitHub API GET /repos/octo/app/issues" in out
    assert (tmp_path / "r.md").read_text().startswith("## ❌ mlci: failed at **drift**")
    assert _output(outputs, "issue-action") == "skipped"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(["--issue-title", ""], "the issue title is empty", id="empty-title"),
        pytest.param(["--issue-title", " \n "], "the issue title is empty", id="blank-title"),
        pytest.param(["--issue-title", "x" * 257], "GitHub takes at most 256", id="long-title"),
        pytest.param(["--issue", "when-failed"], "--issue when-failed needs --issue-title", id="no-title"),
        pytest.param(["--issue", "always"], "--issue always needs --issue-title", id="always-no-title"),
        pytest.param(["--issue-labels", "drift"], "--issue-labels needs --issue-title", id="labels-no-title"),
        pytest.param(["--issue-title", "t", "--issue-labels", " , "], "names no label", id="no-labels"),
        pytest.param(
            ["--issue-title", "t", "--issue-labels", "drift," + "y" * 51],
            "GitHub takes at most 50",
            id="long-label",
        ),
        pytest.param(["--issue-title", "t", "--issue-labels", "a\tb"], "control characters", id="tab-label"),
        pytest.param(["--issue", "sometimes", "--issue-title", "t"], "invalid choice", id="bad-mode"),
    ],
)
def test_cli_bad_issue_options_exit_2_before_any_work(
    tmp_path: Path, github_api: GitHubStandIn, extra: list[str], message: str
) -> None:
    code, out, err, _ = _issue_run(tmp_path, github_api, _verdict(tmp_path, passed=False), *extra)
    assert code == 2, out + err
    # On GitHub the error is an annotation in the one log stream (stdout, as there is no --json).
    log = out + err
    assert message in log and len(log.strip().splitlines()) == 1 and "Traceback" not in log, log
    assert not (tmp_path / "r.md").exists() and github_api.requests == []


def test_cli_issue_options_from_action_inputs(tmp_path: Path, github_api: GitHubStandIn) -> None:
    verdict = _verdict(tmp_path, passed=False)
    code, out, err, outputs = _run(
        tmp_path,
        github_api,
        [],
        GITHUB_EVENT_PATH="",
        MLCI_INPUT_VERDICT=str(verdict),
        MLCI_INPUT_REPORT_FILE=str(tmp_path / "r.md"),
        MLCI_INPUT_COMMENT="false",
        MLCI_INPUT_KEY="drift",
        MLCI_INPUT_ISSUE="auto",
        MLCI_INPUT_ISSUE_TITLE="mlci: data drift detected",
        MLCI_INPUT_ISSUE_LABELS="drift\nmonitoring\n",
        from_env=True,
    )
    assert code == 0 and _output(outputs, "issue-action") == "created", out + err
    (issue,) = github_api.issues(REPO)
    assert issue["title"] == "mlci: data drift detected"
    assert issue["body"].startswith("<!-- mlci-issue:drift -->\n")
    assert issue["labels"] == [{"name": "drift"}, {"name": "monitoring"}]


def test_issue_labels_and_title_are_checked_before_any_request(github_api: GitHubStandIn) -> None:
    options = {"token": TOKEN, "repository": REPO, "api_url": github_api.url, "policy": FAST}
    with pytest.raises(UsageError, match="not the string 'drift'"):
        open_or_update_issue("t", "b", labels="drift", **options)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="is not a label name"):
        open_or_update_issue("t", "b", labels=["drift", ""], **options)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="the issue title is empty"):
        open_or_update_issue("  ", "b", token=None, repository=None)
    assert github_api.requests == []
    result = open_or_update_issue("Drift\nin production ", "b", labels=[" drift "], **options)  # type: ignore[arg-type]
    assert result.action == "created"
    assert github_api.issues(REPO)[0]["title"] == "Drift in production"
    assert github_api.issues(REPO)[0]["labels"] == [{"name": "drift"}]
