"""`mlci monitor`: alert rules and a dashboard for a served model; drift over its prediction logs."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command, add_group, number

RENDER_DESCRIPTION = """\
Render, for MODEL as `mlci serve` exposes it on /metrics, a Prometheus rules file (alerts.yml),
its promtool unit tests (alerts.test.yml: series in which each alert fires and stays silent), a
Grafana dashboard (dashboard.json, with a Prometheus datasource variable) and the reference
figures they compare with (reference.json: each numeric input's mean and standard deviation on
--reference, and the model's predicted class shares on it).

Alerts: 5xx and 4xx rates, latency against the gate file's latency max rules (default p95 <=
500 ms), no traffic, input mean or variance moved from the reference, predicted class shares
(or mean prediction) moved, prediction-log rows dropped. Every query selects job="JOB" (default:
the model's name): give the scrape job that scrapes the server the same name.

examples:
  mlci monitor render --model model/ --reference train.csv --gate gate.yaml -o monitoring/
  promtool test rules monitoring/alerts.test.yml
"""

CHECK_DESCRIPTION = """\
Compare the inputs and predictions logged by `mlci serve --log-dir` with the training reference:
each input with the drift statistics of `mlci drift` (PSI by default), and the predictions with
the model's predictions on the reference. One verdict, mlci.monitor-verdict; exit 1 when it
fails. Only rows of the model given by --model (its digest) are read: a log of another model is
an input error.

examples:
  mlci monitor check --logs 'logs/*.jsonl' --reference train.csv --model model/ --window 24h
"""


def register(subparsers: Any) -> None:
    group = add_group(subparsers, "monitor", "alert rules, dashboard and drift checks for a served model")
    render = add_command(
        group,
        "render",
        handle_render,
        "render Prometheus alert rules and a Grafana dashboard",
        RENDER_DESCRIPTION,
    )
    render.add_argument("--model", required=True, metavar="MODEL", help="the served model (folder or file)")
    render.add_argument(
        "--reference", required=True, metavar="DATA", help="training data (CSV, Parquet, JSON Lines)"
    )
    render.add_argument("--gate", metavar="FILE", help="gate file whose latency rules the alerts follow")
    render.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write the files to")
    render.add_argument("--job", metavar="JOB", help="Prometheus job of the server (default: model name)")
    render.add_argument("--window", default="1h", metavar="DURATION", help="drift window (default: 1h)")
    render.add_argument(
        "--min-rows", type=number(int, low=1), default=100, help="rows a window needs to judge drift (100)"
    )
    render.add_argument(
        "--mean-shift",
        type=number(float, low=0, low_open=True),
        default=0.25,
        help="input mean moved by this many reference standard deviations (0.25)",
    )
    render.add_argument(
        "--variance-ratio",
        type=number(float, low=1, low_open=True),
        default=2.0,
        help="input variance this many times larger or smaller than the reference (2)",
    )
    render.add_argument(
        "--share-shift",
        type=number(float, low=0, high=1, low_open=True, high_open=True),
        default=0.1,
        help="predicted class share moved by this much (0.1)",
    )
    render.add_argument(
        "--error-rate",
        type=number(float, low=0, high=1, low_open=True, high_open=True),
        default=0.05,
        help="share of 5xx answers that alerts (0.05)",
    )
    render.add_argument(
        "--reject-rate",
        type=number(float, low=0, high=1, low_open=True, high_open=True),
        default=0.2,
        help="share of 4xx answers that alerts (0.2)",
    )
    render.add_argument("--no-traffic", default="15m", metavar="DURATION", help="silence that alerts (15m)")
    render.add_argument("--hold", default="10m", metavar="DURATION", help="drift alerts' 'for' (10m)")
    render.add_argument("--allow-pickle", action="store_true", help="load pickle models (runs their code)")
    render.add_argument(
        "--trust-type", action="append", default=[], metavar="TYPE", help="an extra type skops may load"
    )

    check = add_command(group, "check", handle_check, "drift of a model's prediction logs", CHECK_DESCRIPTION)
    check.add_argument(
        "--logs",
        action="append",
        required=True,
        metavar="PATH",
        help="prediction log files, folders or globs (repeatable)",
    )
    check.add_argument("--reference", required=True, metavar="DATA", help="training data of the model")
    check.add_argument("--model", required=True, metavar="MODEL", help="the model that wrote the logs")
    check.add_argument(
        "--window", metavar="DURATION", help="only rows of the last 90m, 24h, 7d... (default: all)"
    )
    check.add_argument("--until", metavar="TIME", help="end of the window, ISO 8601 (default: now)")
    check.add_argument("--drift-config", metavar="FILE", help="drift config as for mlci drift --config")
    check.add_argument("--verdict-file", default="", metavar="FILE", help="write the verdict JSON here")
    check.add_argument("--allow-pickle", action="store_true", help="load pickle models (runs their code)")
    check.add_argument(
        "--trust-type", action="append", default=[], metavar="TYPE", help="an extra type skops may load"
    )


def handle_check(args: argparse.Namespace, ctx: Context) -> Outcome:
    import datetime

    from mlci_lib.errors import UsageError
    from mlci_lib.files import write_json_atomic
    from mlci_lib.models import trusted_types_from
    from mlci_lib.monitor.monitor import monitor_logs
    from mlci_lib.runner import Annotation

    until = None
    if args.until:
        try:
            until = datetime.datetime.fromisoformat(args.until.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"option --until must be an ISO 8601 time, got {args.until!r}") from None
        if until.tzinfo is None:
            until = until.replace(tzinfo=datetime.timezone.utc)
    verdict = monitor_logs(
        args.logs,
        args.reference,
        args.model,
        window=args.window,
        until=until,
        drift_config=args.drift_config,
        allow_pickle=args.allow_pickle,
        trusted_types=trusted_types_from(args.trust_type),
    )
    outputs = {"passed": str(verdict.passed).lower()}
    if args.verdict_file:
        write_json_atomic(args.verdict_file, verdict.to_dict())
        outputs["verdict-file"] = args.verdict_file
    status = "passed" if verdict.passed else "FAILED"
    text = f"monitor {status}: {verdict.rows} logged rows of {verdict.model['name']}"
    if verdict.drift is not None:
        text += f", {len(verdict.drift.drifted_features)} of {len(verdict.drift.features)} inputs drifted"
        if verdict.drift.prediction is not None and verdict.drift.prediction.drifted:
            text += ", predictions drifted"
    for reason in verdict.reasons:
        text += f"\n  {reason}"
    text += "\n  not checked yet: " + "; ".join(verdict.not_checked)
    return Outcome(
        result=verdict,
        passed=verdict.passed,
        text=text,
        summary=verdict.markdown(),
        outputs=outputs,
        annotations=[Annotation("error", r, title="mlci monitor") for r in verdict.reasons],
    )


def handle_render(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.models import trusted_types_from
    from mlci_lib.monitor.render import render_monitoring

    result = render_monitoring(
        args.model,
        args.reference,
        args.output,
        gate=args.gate,
        job=args.job,
        allow_pickle=args.allow_pickle,
        trusted_types=trusted_types_from(args.trust_type),
        window=args.window,
        min_rows=args.min_rows,
        mean_shift=args.mean_shift,
        variance_ratio=args.variance_ratio,
        share_shift=args.share_shift,
        error_rate=args.error_rate,
        reject_rate=args.reject_rate,
        no_traffic=args.no_traffic,
        hold=args.hold,
    )
    names = sorted({a["name"] for a in result.alerts})
    text = (
        f"mlci monitor render: {len(result.alerts)} alert rules ({', '.join(names)}) for job {result.job!r} "
        f"in {result.rules}; tests in {result.rules_test}; dashboard in {result.dashboard}"
    )
    for what, why in result.skipped.items():
        text += f"\n  skipped {what}: {why}"
    return Outcome(
        result=result, passed=True, text=text, outputs={"rules": result.rules, "dashboard": result.dashboard}
    )
