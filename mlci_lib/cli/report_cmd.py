"""`mlci report`: render the pipeline report and post it on the pull request."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command

DEFAULT_REPORT_FILE = "mlci-report.md"
DEFAULT_PLOTS_DIR = "mlci-plots"

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

examples:
  mlci report mlci-verdict.json
  mlci report mlci-gate-verdict.json data-check.json --predictions eval/candidate.parquet
  mlci report mlci-verdict.json --comment true --pr-number 42 --key nightly

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
    parser.add_argument(
        "--report-file",
        default=DEFAULT_REPORT_FILE,
        metavar="FILE",
        help=f"where to write the Markdown report (default {DEFAULT_REPORT_FILE})",
    )
    parser.add_argument("--title", default="mlci", help="the report's title (default mlci)")
    plots = parser.add_argument_group("plots from a per-row predictions file")
    plots.add_argument("--predictions", default="", metavar="FILE", help="predictions (CSV, Parquet, JSONL)")
    plots.add_argument(
        "--plots-dir",
        default="",
        metavar="DIR",
        help=f"where to write the PNG plots (default {DEFAULT_PLOTS_DIR})",
    )
    plots.add_argument("--label-column", default="label", metavar="NAME", help="true label (default label)")
    plots.add_argument(
        "--prediction-column", default="prediction", metavar="NAME", help="prediction (default prediction)"
    )
    plots.add_argument(
        "--score-column", default="score", metavar="NAME", help="positive-class probability (default score)"
    )
    plots.add_argument(
        "--proba-prefix",
        default="proba_",
        metavar="PREFIX",
        help="class probability columns (default proba_)",
    )
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
        help="which report comment to keep updated, for several pipelines in one repository (default)",
    )
    comment.add_argument(
        "--pr-number", type=_positive, metavar="N", help="pull request (default: from the event)"
    )
    comment.add_argument("--repository", default="", metavar="OWNER/NAME", help="default: GITHUB_REPOSITORY")
    comment.add_argument(
        "--api-url", default="", metavar="URL", help="default: GITHUB_API_URL, else GitHub.com"
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a pull request number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a pull request number, got {text!r}")
    return value


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    import os

    from mlci_lib.errors import ServiceError
    from mlci_lib.gitcontext import git_context
    from mlci_lib.report.fit import SUMMARY_BUDGET
    from mlci_lib.report.github import DEFAULT_API_URL, marker_for, post_pr_comment, pr_number_from_event
    from mlci_lib.report.render import render_report, write_report
    from mlci_lib.runner import Annotation

    marker_for(args.key)  # a bad key is a usage error before any work
    git = git_context()
    report = render_report(
        *args.verdict,
        plots_dir=args.plots_dir or DEFAULT_PLOTS_DIR,
        predictions=args.predictions or None,
        title=args.title,
        git={k: v for k, v in _git_links(git).items() if v},
        columns={
            "label_column": args.label_column,
            "prediction_column": args.prediction_column,
            "score_column": args.score_column,
            "proba_prefix": args.proba_prefix,
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
    }
    verdict = (
        "passed" if report.passed else "failed" + (f" at {', '.join(report.failed)}" if report.failed else "")
    )
    lines = [f"report: {path} ({verdict})"]
    if report.plots:
        lines.append(f"plots: {len(report.plots)} PNG files in {report.plots_dir}")
    annotations: list[Annotation] = []
    ok = True
    if args.comment != "false":
        token = os.environ.get("GITHUB_TOKEN", "")
        ctx.runner.mask(token)
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
                    repository=args.repository or os.environ.get("GITHUB_REPOSITORY", ""),
                    pr_number=number,
                    api_url=args.api_url or os.environ.get("GITHUB_API_URL", "") or DEFAULT_API_URL,
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
    return Outcome(
        result=report,
        passed=ok,
        text="\n".join(lines),
        summary=report.fitted(SUMMARY_BUDGET),
        outputs=outputs,
        annotations=annotations,
        failed_exit_code=2,
    )


def _git_links(git: Any) -> dict[str, Any]:
    return {
        "commit": git.commit,
        "ref": git.ref,
        "branch": git.branch,
        "repository": git.repository,
        "run_url": git.run_url,
    }
