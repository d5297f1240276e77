"""The pipeline report: Markdown from verdicts, Mermaid charts, PNG plots, and the PR comment."""

from __future__ import annotations

from mlci_lib.report.github import (
    CommentResult,
    GitHubClient,
    IssueResult,
    marker_for,
    open_or_update_issue,
    post_pr_comment,
)
from mlci_lib.report.render import Report, render_report, write_report
from mlci_lib.report.verdicts import Verdict, load_verdict, validate_verdict

__all__ = [
    "CommentResult",
    "GitHubClient",
    "IssueResult",
    "Report",
    "Verdict",
    "load_verdict",
    "marker_for",
    "open_or_update_issue",
    "post_pr_comment",
    "render_report",
    "validate_verdict",
    "write_report",
]
