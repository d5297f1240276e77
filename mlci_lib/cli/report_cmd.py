"""`mlci report`: render the pipeline report and post it on the pull request."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.columns import add_column_options, columns_from
from mlci_lib.cli.framework import Context, Outcome, add_command, add_result_file, number

DEFAULT_REPORT_FILE = "mlci-report.md"
DEFAULT_PLOTS_DIR = "mlci-plots"
ISSUE_MODES = ("auto", "when-failed", "always", "never")

_DESCRIPTION = """\
Render one Markdown report from VERDICT files: a pipeline verdict (mlci run) with its stages, or
gate, data-check and drift verdicts. The report starts with the overall verdict and the links
commit -> data -> model -> image, then the gate table with deltas and intervals, slices, latency,
data-check failures and the drift table, with Mermaid charts GitHub renders in place. With
--predictions it also writes PNG plots (confusion matrix, ROC, precision-recall, calibration).

The report goes to --report-file, to the job summary, and (on a pull request) into one comment
that reruns update in place. The token is read from GITHUB_TOKEN, the repository from
GITHUB_REPOSITORY, the pull request from the event payload (GITHUB_EVENT_PATH). A token that
cannot comment (pull requests from forks) gives a warning, not a failure.

With --issue-title (scheduled checks such as drift monitoring, where there is no pull request) a
failed verdict also opens one issue, or updates it while it is open: it is found by a hidden marker
of --key, so the title may change. --issue always writes it whatever the verdict.

examples:
  mlci report mlci-verdict.json
  mlci report mlci-gate-verdict.json data-check.json --predictions eval/candidate.parquet
  mlci report mlci-verdict.json --comment true --pr-number 42 --key nightly
  mlci report drift.json --comment false --issue-title "mlci: data drift detected" --issue-labels drift

exit codes: 0 the report was written (whatever the verdict says: see the passed output),
2 bad usage, a malformed verdict file, or GitHub failing after retries
"""


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "report",
        handle,
        "render the pipeline report and post it on the pull request",
        description=_DESCRIPTION,
    )
    parser.add_argument(
        "verdict", nargs="+", metavar="VERDICT", help="verdict JSON files (pipeline, gate, data check, drift)"
    )
    add_result_file(
        parser,
        "--report-file",
        what="report file",
        json_record=False,
        default=DEFAULT_REPORT_FILE,
        metavar="FILE",
        help=f"where to write the Markdown report (default {DEFAULT_REPORT_FILE})",
    )
    parser.add_argument("--title", default="mlci", help="the report's title (default mlci)")
    plots = parser.add_argument_group("plots from a per-row predictions file")
    plots.add_argument(
        "--predictions",
        default="",
        metavar="FILE",
        help="predictions (CSV, Parquet, JSONL): the candidate file a gate verdict of the report read",
    )
    plots.add_argument(
        "--plots-dir",
        default="",
        metavar="DIR",
        help=f"where to write the PNG plots (default {DEFAULT_PLOTS_DIR})",
    )
    add_column_options(plots, ("label", "prediction", "score", "proba-prefix"))
    plots.add_argument("--pos-label", default="", metavar="CLASS", help="the positive class (default 1)")
    plots.add_argument(
        "--task", choices=("binary", "multiclass", "regression"), help="the task (default: inferred)"
    )
    comment = parser.add_argument_group("pull-request comment")
    comment.add_argument(
        "--comment",
        choices=("auto", "true", "false"),
        default="auto",
        help="auto: comment when on a pull request; true: also warn when it cannot; false: never",
    )
    comment.add_argument(
        "--key",
        default="default",
        help="which report comment and issue to keep updated, for several pipelines in one repository"
        " (default)",
    )
    comment.add_argument(
        "--pr-number", type=number(int, low=1), metavar="N", help="pull request (default: from the event)"
    )
    comment.add_argument("--repository", default="", metavar="OWNER/NAME", help="default: GITHUB_REPOSITORY")
    comment.add_argument(
        "--api-url", default="", metavar="URL", help="default: GITHUB_API_URL, else GitHub.com"
    )
    issue = parser.add_argument_group("issue (for scheduled checks, e.g. drift monitoring)")
    issue.add_argument(
        "--issue",
        choices=ISSUE_MODES,
        default="auto",
        help="auto: when-failed if --issue-title is given, else never; when-failed: open or update the"
        " issue when the verdict failed; always: whatever the verdict; never",
    )
    # None tells "not given" from an explicit empty title, which is a mistake worth stopping on.
    issue.add_argument("--issue-title", default=None, metavar="TITLE", help="the issue's title")
    issue.add_argument(
        "--issue-labels",
        default=None,
        metavar="NAMES",
        help="labels for a new issue, comma-separated (an update keeps the issue's labels)",
    )


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    import os

    from mlci_lib.errors import ServiceError
    from mlci_lib.gitcontext import git_context
    from mlci_lib.report.fit import SUMMARY_BUDGET
    from mlci_lib.report.github import (
        DEFAULT_API_URL,
        marker_for,
        open_or_update_issue,
        post_pr_comment,
        pr_number_from_event,
    )
    from mlci_lib.report.render import render_report, write_report
    from mlci_lib.runner import Annotation

    marker_for(args.key)  # bad options are usage errors before any work
    issue_mode, issue_title, labels = _issue_options(args)
    from pathlib import Path

    from mlci_lib.report.plots import PLOT_FILES

    # Plots of an earlier run (another model's) never sit in the folder beside this report.
    for name in PLOT_FILES:
        ctx.results.claim(Path(args.plots_dir or DEFAULT_PLOTS_DIR) / name, what="plot", json_record=False)
    git = git_context()
    columns = columns_from(args)
    report = render_report(
        *args.verdict,
        plots_dir=args.plots_dir or DEFAULT_PLOTS_DIR,
        predictions=args.predictions or None,
        title=args.title,
        git={k: v for k, v in _git_links(git).items() if v},
        columns={
            "label_column": columns.label,
            "prediction_column": columns.prediction,
            "score_column": columns.score,
            "proba_prefix": columns.proba_prefix,
            "pos_label": args.pos_label or None,
            "task": args.task,
        },
    )
    path = write_report(report, args.report_file)
    outputs = {
        "passed": "true" if report.passed else "false",
        "report-file": str(path),
        "plots-dir": report.plots_dir or "",
        "comment-url": "",
        "comment-id": "",
        "comment-action": "skipped",
        "issue-action": "skipped",
        "issue-number": "",
        "issue-url": "",
    }
    verdict = (
        "passed" if report.passed else "failed" + (f" at {', '.join(report.failed)}" if report.failed else "")
    )
    lines = [f"report: {path} ({verdict})"]
    if report.plots:
        lines.append(f"plots: {len(report.plots)} PNG files in {report.plots_dir}")
    annotations: list[Annotation] = []
    ok = True
    token = os.environ.get("GITHUB_TOKEN", "")
    repository = args.repository or os.environ.get("GITHUB_REPOSITORY", "")
    api_url = args.api_url or os.environ.get("GITHUB_API_URL", "") or DEFAULT_API_URL
    if args.comment != "false" or issue_mode != "never":
        ctx.runner.mask(token)
    if args.comment != "false":
        event_number, event_note = pr_number_from_event(os.environ)
        number = args.pr_number or event_number
        wanted = args.comment == "true" or number is not None
        if not wanted:
            lines.append("comment: not a pull request, so no comment (--comment true to insist)")
        else:
            try:
                result = post_pr_comment(
                    report,
                    token=token,
                    repository=repository,
                    pr_number=number,
                    api_url=api_url,
                    marker=args.key,
                )
            except ServiceError as error:
                ok = False
                annotations.append(Annotation("error", error.one_line(), title="mlci report: comment failed"))
                lines.append(f"comment: FAILED: {error.one_line()}")
            else:
                outputs["comment-action"] = result.action
                if result.skipped:
                    reason = result.reason + (f" ({event_note})" if event_note and number is None else "")
                    annotations.append(Annotation("warning", reason, title="mlci report: no PR comment"))
                    lines.append(f"comment: skipped: {reason}")
                else:
                    outputs["comment-url"] = result.url or ""
                    outputs["comment-id"] = str(result.comment_id)
                    lines.append(f"comment: {result.action} {result.url or result.comment_id}")
                    if result.truncated:
                        lines.append("comment: the report was cut to fit GitHub's comment limit")
    if issue_mode == "when-failed" and report.passed:
        lines.append("issue: the verdict passed, so no issue (--issue always to write it anyway)")
    elif issue_mode != "never":
        assert issue_title is not None
        try:
            issue = open_or_update_issue(
                issue_title,
                report,
                token=token,
                repository=repository,
                api_url=api_url,
                marker=args.key,
                labels=labels,
            )
        except ServiceError as error:
            ok = False
            annotations.append(Annotation("error", error.one_line(), title="mlci report: issue failed"))
            lines.append(f"issue: FAILED: {error.one_line()}")
        else:
            outputs["issue-action"] = issue.action
            if issue.skipped:
                annotations.append(Annotation("warning", issue.reason, title="mlci report: no issue"))
                lines.append(f"issue: skipped: {issue.reason}")
            else:
                outputs["issue-number"] = str(issue.number)
                outputs["issue-url"] = issue.url or ""
                lines.append(f"issue: {issue.action} #{issue.number} {issue.url or ''}".rstrip())
                if issue.truncated:
                    lines.append("issue: the report was cut to fit GitHub's issue limit")
    return Outcome(
        result=report,
        passed=ok,
        text="\n".join(lines),
        summary=report.fitted(SUMMARY_BUDGET),
        outputs=outputs,
        annotations=annotations,
        failed_exit_code=2,
    )


def _issue_options(args: argparse.Namespace) -> tuple[str, str | None, tuple[str, ...]]:
    """The issue mode with "auto" resolved, the checked title and the checked labels."""
    from mlci_lib.errors import UsageError
    from mlci_lib.options import parse_list
    from mlci_lib.report.github import issue_labels, issue_title

    title = None if args.issue_title is None else issue_title(args.issue_title)
    labels: tuple[str, ...] = ()
    if args.issue_labels is not None:
        labels = issue_labels(parse_list(args.issue_labels))
        if not labels:
            raise UsageError(
                f"--issue-labels {args.issue_labels!r} names no label", hint="e.g. --issue-labels drift"
            )
    mode = args.issue
    if mode == "auto":
        mode = "when-failed" if title is not None else "never"
        if labels and title is None:
            raise UsageError("--issue-labels needs --issue-title", hint="e.g. --issue-title 'mlci: drift'")
    if mode in ("when-failed", "always") and title is None:
        raise UsageError(f"--issue {mode} needs --issue-title", hint="e.g. --issue-title 'mlci: drift'")
    return mode, title, labels


def _git_links(git: Any) -> dict[str, Any]:
    return {
        "commit": git.commit,
        "ref": git.ref,
        "branch": git.branch,
        "repository": git.repository,
        "run_url": git.run_url,
    }
