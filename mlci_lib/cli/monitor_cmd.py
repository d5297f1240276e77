"""`mlci monitor`: alert rules and a dashboard for a served model; drift over its prediction logs."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command, add_group, number
from mlci_lib.cli.monitor_dispatch import (
    add_on_fail_options,
    check_dispatch_ready,
    dispatch_on_fail,
    register_receive,
)

RENDER_DESCRIPTION = """\
Render, for MODEL as `mlci serve` exposes it on /metrics, a Prometheus rules file (alerts.yml),
its promtool unit tests (alerts.test.yml: series in which each alert fires and stays silent), a
Grafana dashboard (dashboard.json, with a Prometheus datasource variable) and the reference
figures they compare with (reference.json: each numeric input's mean and standard deviation on
--reference, and the model's predicted class shares on it).

Alerts: 5xx and 4xx rates, latency against the gate file's latency max rules (default p95 <=
500 ms), no traffic, input mean or variance moved from the reference, predicted class shares
(or mean prediction) moved, prediction-log rows dropped. Every query selects job="JOB" (default:
the model's name; with --deploy-config mlci.yaml, the name of the Service its deploy: section
renders, which its ServiceMonitor gives the series): give the scrape job the same name. Every
alert carries the label model, the model's name.

examples:
  mlci monitor render --model model/ --reference train.csv --gate gate.yaml -o monitoring/
  promtool test rules monitoring/alerts.test.yml
"""

CHECK_DESCRIPTION = """\
Judge the rows `mlci serve --log-dir` logged in a window, per model version (several --model for
a canary and its stable release sharing the logs): input drift against the training reference
(the drift statistics of `mlci drift`, PSI by default); prediction drift against the model's
predictions on --evaluation (else on --reference); data quality (the training suite of `mlci data
check`, with --suite); realized performance on the rows a --labels file joins (the gate's
metrics and bootstrap intervals); and estimated performance from the logged probabilities
(confidence-based estimation, valid only when the model is calibrated on --evaluation: the
verdict flags it when not). Rules in --config use the gate file's grammar (metrics: accuracy:
{min: 0.8}; estimated_accuracy: {min: 0.8}; drift; data-quality; min-rows; on-inconclusive;
on-no-traffic). One verdict, mlci.monitor-verdict; exit 1 when it does not pass (an empty
window never passes). Rows of a model not given by --model are an input error (exit 2), and so
are labels that join no logged row.

examples:
  mlci monitor check --logs 'logs/*.jsonl' --reference train.csv --model model/ --window 24h
  mlci monitor check --logs logs/ --reference train.csv --model model/ --evaluation test.csv \\
      --suite suite.yml --labels labels.csv --config monitor.yml --verdict-file verdict.json
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
    render.add_argument(
        "--deploy-config",
        metavar="FILE",
        help="for the deployment of this mlci.yaml's deploy: section: the job its ServiceMonitor gives",
    )
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
    check.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="MODEL",
        help="the model that wrote the logs (repeatable: one per version in the logs)",
    )
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
    check.add_argument("--config", metavar="FILE", help="monitor rules (YAML), in the gate file's grammar")
    check.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="RULE",
        help="an inline rule: 'estimated_accuracy min=0.8'",
    )
    check.add_argument(
        "--labels", metavar="FILE", help="labels that arrived later (CSV, Parquet, JSON Lines)"
    )
    check.add_argument(
        "--label-column", default="label", metavar="NAME", help="label column (default: label)"
    )
    check.add_argument(
        "--label-id-column",
        metavar="NAME",
        help="join labels on this logged input (a user id) instead of request_id (and row)",
    )
    check.add_argument(
        "--evaluation", metavar="DATA", help="labelled evaluation data: calibration and reference predictions"
    )
    check.add_argument("--suite", metavar="FILE", help="the training data's expectation suite (data quality)")
    add_on_fail_options(check)
    register_receive(group)


def handle_check(args: argparse.Namespace, ctx: Context) -> Outcome:
    import datetime

    from mlci_lib.errors import UsageError
    from mlci_lib.files import write_json_atomic
    from mlci_lib.models import trusted_types_from
    from mlci_lib.monitor.monitor import monitor_logs

    until = None
    if args.until:
        try:
            until = datetime.datetime.fromisoformat(args.until.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"option --until must be an ISO 8601 time, got {args.until!r}") from None
        if until.tzinfo is None:
            until = until.replace(tzinfo=datetime.timezone.utc)
    ready = check_dispatch_ready(args, ctx)  # a dispatch that cannot happen stops before the work
    verdict = monitor_logs(
        args.logs,
        args.reference,
        args.model,
        window=args.window,
        until=until,
        drift_config=args.drift_config,
        allow_pickle=args.allow_pickle,
        trusted_types=trusted_types_from(args.trust_type),
        labels=args.labels,
        label_column=args.label_column,
        label_id_column=args.label_id_column,
        evaluation=args.evaluation,
        suite=args.suite,
        config=args.config,
        rules=args.rule,
    )
    outputs = {"passed": str(verdict.passed).lower(), "status": verdict.status}
    if args.verdict_file:
        write_json_atomic(args.verdict_file, verdict.to_dict())
        outputs["verdict-file"] = args.verdict_file
    from mlci_lib.monitor.monitor import verdict_text

    text = verdict_text(verdict)
    outcome = Outcome(
        result=verdict,
        passed=verdict.passed,
        text=text,
        summary=verdict.markdown(),
        outputs=outputs,
        annotations=_annotations(verdict),
    )
    dispatch_on_fail(args, ready, verdict, outcome)
    return outcome


def _annotations(verdict: Any) -> list[Any]:
    """An error for each required rule that fails the verdict, a warning for the other rules not passed."""
    from mlci_lib.runner import Annotation

    if not verdict.versions:
        return [Annotation("error", r, title="mlci monitor") for r in verdict.reasons]
    out = []
    for version in verdict.versions:
        for rule in version.rules:
            if rule.outcome not in ("fail", "undefined", "inconclusive"):
                continue
            failing = rule.required and (rule.outcome != "inconclusive" or verdict.on_inconclusive == "fail")
            message = f"{version.label}: {rule.rule} {rule.outcome}" + (
                f": {rule.message}" if rule.message else ""
            )
            out.append(Annotation("error" if failing else "warning", message, title="mlci monitor"))
    return out


def _deployed_job(config_file: str) -> str:
    """The ``job`` label of the series of the deployment ``config_file``'s deploy: section renders."""
    from mlci_lib.deploy import parse_deploy_config
    from mlci_lib.errors import ConfigError
    from mlci_lib.pipeline.config import load_config

    config = load_config(config_file)
    deploy = parse_deploy_config(config.raw.get("deploy"), default_name=config.model_name)
    if deploy.scraped_as_job is None:
        raise ConfigError(
            f"option --deploy-config: the deploy: section of {config_file} renders no ServiceMonitor, "
            "so it does not say which job scrapes the server",
            hint="pass --job with the scrape job's name instead",
        )
    return deploy.scraped_as_job


def handle_render(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.models import trusted_types_from
    from mlci_lib.monitor.render import render_monitoring

    job = args.job
    if args.deploy_config and not job:
        job = _deployed_job(args.deploy_config)
    result = render_monitoring(
        args.model,
        args.reference,
        args.output,
        gate=args.gate,
        job=job,
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
