"""`mlci monitor receive`, and the retrain dispatch of `mlci monitor check --on-fail dispatch`.

The options naming the retrain workflow and its guard rails are registered here once, for both
commands; the token comes from ``GITHUB_TOKEN`` only (never an option, so it never sits in a
process list or a shell history) and is masked before anything could print it.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command, number
from mlci_lib.runner import Annotation

RECEIVE_DESCRIPTION = """\
An Alertmanager webhook receiver: each firing drift alert of `mlci monitor render`
(MlciFeatureMeanShift, MlciFeatureVarianceShift, MlciPredictionShareShift,
MlciPredictionMeanShift, or the --alert names given) dispatches the retrain workflow through the
GitHub API (workflow_dispatch with the inputs reason, "monitor <model>: drift" from the alert's
model label, and verdict, the alert's link). Guard rails: a reason dispatched within --cooldown
(kept in --state-file, and read from GitHub's run history) is not dispatched again, nor while a
retrain run for it is queued or in progress; `mlci monitor check --on-fail dispatch` gives a
drift the same reason, so the two routes dispatch one retrain per incident. A body that is not
an Alertmanager notification (webhook version 4) is answered 400 and dispatches nothing. The
token is read from GITHUB_TOKEN (it needs actions: write).

Runs until SIGTERM or SIGINT. In alertmanager.yml:

  receivers:
    - name: retrain
      webhook_configs:
        - url: http://127.0.0.1:9095/alerts

examples:
  GITHUB_TOKEN=... mlci monitor receive --repository octo/app --workflow mlci-retrain.yml --port 9095
"""


def add_dispatch_options(parser: argparse.ArgumentParser) -> None:
    from mlci_lib.monitor.dispatch import DEFAULT_COOLDOWN, DEFAULT_STATE_FILE, DEFAULT_WORKFLOW

    group = parser.add_argument_group("retrain dispatch (token from GITHUB_TOKEN)")
    group.add_argument(
        "--repository", metavar="OWNER/NAME", help="repository of the workflow (default: $GITHUB_REPOSITORY)"
    )
    group.add_argument(
        "--workflow",
        default=DEFAULT_WORKFLOW,
        metavar="FILE",
        help=f"retrain workflow file name or id ({DEFAULT_WORKFLOW})",
    )
    group.add_argument(
        "--ref", metavar="REF", help="branch or tag to run it on (default: $GITHUB_REF_NAME, main)"
    )
    group.add_argument(
        "--cooldown",
        default=DEFAULT_COOLDOWN,
        metavar="DURATION",
        help=f"no second dispatch for one reason within this (30m, 6h, 1d; 0: none; {DEFAULT_COOLDOWN})",
    )
    group.add_argument(
        "--state-file",
        default=DEFAULT_STATE_FILE,
        metavar="FILE",
        help=f"where the dispatch times are kept ({DEFAULT_STATE_FILE})",
    )
    group.add_argument("--api-url", metavar="URL", help="GitHub REST API URL (default: $GITHUB_API_URL)")


def add_on_fail_options(parser: argparse.ArgumentParser) -> None:
    """``mlci monitor check``'s options for what a failed verdict does besides exiting 1."""
    parser.add_argument(
        "--on-fail",
        choices=("exit", "dispatch"),
        default="exit",
        help="exit: exit 1; dispatch: also dispatch the retrain workflow (see the dispatch options)",
    )
    parser.add_argument(
        "--verdict-url",
        metavar="URL",
        help="link the retrain gets as its verdict input (default: this workflow run's page)",
    )
    add_dispatch_options(parser)


def dispatch_target(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from mlci_lib.monitor.dispatch import DispatchTarget, parse_duration
    from mlci_lib.report.github import DEFAULT_API_URL

    return DispatchTarget(
        repository=args.repository or os.environ.get("GITHUB_REPOSITORY", ""),
        workflow=args.workflow,
        ref=args.ref or os.environ.get("GITHUB_REF_NAME", "") or "main",
        api_url=args.api_url or os.environ.get("GITHUB_API_URL", "") or DEFAULT_API_URL,
        cooldown=parse_duration(args.cooldown, "--cooldown"),
        state_file=Path(args.state_file) if args.state_file else None,
    )


def _token(ctx: Context) -> str:
    from mlci_lib.errors import UsageError

    token = os.environ.get("GITHUB_TOKEN", "")
    if not token:
        raise UsageError(
            "dispatching a retrain needs a token in GITHUB_TOKEN",
            hint="in a workflow: env GITHUB_TOKEN: ${{ github.token }} with 'permissions: actions: write'",
        )
    ctx.runner.mask(token)
    return token


def check_dispatch_ready(args: argparse.Namespace, ctx: Context) -> tuple[Any, str] | None:
    """The target and token of ``--on-fail dispatch``, checked before the monitor does any work."""
    if args.on_fail != "dispatch":
        return None
    return dispatch_target(args), _token(ctx)


def run_url() -> str:
    server = os.environ.get("GITHUB_SERVER_URL", "") or "https://github.com"
    repository, run_id = os.environ.get("GITHUB_REPOSITORY", ""), os.environ.get("GITHUB_RUN_ID", "")
    return f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else ""


def dispatch_on_fail(
    args: argparse.Namespace, ready: tuple[Any, str] | None, verdict: Any, outcome: Outcome
) -> None:
    """After a failed verdict: dispatch the retrain, and add what happened to ``outcome``."""
    from mlci_lib.errors import ServiceError
    from mlci_lib.monitor.dispatch import reason_of_verdict

    if ready is None:
        return
    target, token = ready
    outcome.outputs.setdefault("dispatch-action", "none")
    reason = reason_of_verdict(verdict)
    if reason is None:
        why = "the verdict passed" if verdict.passed else "no logged row: a serving problem, not a model's"
        outcome.text += f"\n  retrain: not dispatched ({why})"
        return
    try:
        from mlci_lib.monitor.dispatch import dispatch_retrain

        result = dispatch_retrain(reason, args.verdict_url or run_url(), target, token=token)
    except ServiceError as exc:
        outcome.outputs["dispatch-action"] = "failed"
        outcome.text += f"\n  retrain: dispatch FAILED: {exc.one_line()}"
        outcome.annotations.append(Annotation("error", exc.one_line(), title="mlci monitor: dispatch failed"))
        return
    outcome.outputs["dispatch-action"] = result.action
    outcome.outputs["dispatch-reason"] = result.reason
    outcome.text += f"\n  retrain: {result.action}: {result.reason} ({result.detail})"
    if outcome.summary is not None:
        outcome.summary += f"\nRetrain ({target.workflow}): **{result.action}**, {result.detail}.\n"


def register_receive(group: Any) -> None:
    receive = add_command(
        group,
        "receive",
        handle_receive,
        "dispatch retraining on Alertmanager's drift alerts",
        RECEIVE_DESCRIPTION,
    )
    receive.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    receive.add_argument(
        "--port",
        type=number(int, low=0, high=65535),
        default=9095,
        metavar="PORT",
        help="port (9095; 0: any)",
    )
    receive.add_argument(
        "--alert",
        action="append",
        default=[],
        metavar="NAME",
        help="an alert name that dispatches (repeatable; default: the drift alerts)",
    )
    add_dispatch_options(receive)


def handle_receive(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.monitor.receive import RETRAIN_ALERTS, AlertReceiver, serve_receiver

    target = dispatch_target(args)
    receiver = AlertReceiver(
        target,
        token=_token(ctx),
        alerts=tuple(args.alert) or RETRAIN_ALERTS,
        log=lambda text: ctx.runner.print(text, to_stderr=True),
    )
    summary = serve_receiver(
        receiver, args.host, args.port, log=lambda text: ctx.runner.print(text, to_stderr=True)
    )
    text = (
        f"mlci monitor receive: stopped by {summary.stopped_by} after {summary.notifications} notifications "
        f"({summary.refused} refused): {summary.dispatched} dispatched, {summary.held_back} held back"
    )
    return Outcome(result=summary, text=text)
