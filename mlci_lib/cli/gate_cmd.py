"""`mlci gate`: gate a candidate model against its baseline, with confidence intervals."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.columns import add_column_options, columns_from
from mlci_lib.cli.engine import add_engine_options
from mlci_lib.cli.framework import Context, Outcome, add_command, add_result_file, number

DEFAULT_VERDICT_FILE = "mlci-gate-verdict.json"

_DESCRIPTION = """\
Gate a candidate model against its baseline. With per-row predictions of both models on the same
rows, each rule is decided on a paired-bootstrap confidence interval: pass, fail, or inconclusive
when the interval straddles the threshold (then --on-inconclusive decides). With metrics JSON
files the gate compares point estimates and says so.

examples:
  mlci gate --candidate preds.parquet --baseline champion.parquet --rules gate.yaml
  mlci gate --candidate preds.csv --baseline champion.csv --rule 'accuracy max-drop=0.01'
  mlci gate --candidate metrics.json --rule 'f1_macro min=0.8'

exit codes: 0 passed, 1 the gate failed, 2 bad usage or bad input
"""

# --candidate is required unless the gate is on latency alone, which argparse cannot express, so
# the usage names the two forms instead of listing it as optional.
_USAGE = """\
%(prog)s --candidate FILE [--baseline FILE] [options]
       %(prog)s --candidate-latency FILE [--baseline-latency FILE] [options]"""


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "gate",
        handle,
        "gate a candidate model against its baseline",
        description=_DESCRIPTION,
        usage=_USAGE,
    )
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument(
        "--candidate",
        metavar="FILE",
        help="candidate predictions (CSV, Parquet, JSON Lines) or metrics JSON; required unless "
        "--candidate-latency is given",
    )
    inputs.add_argument(
        "--baseline", metavar="FILE", help="baseline predictions on the same rows, or metrics JSON"
    )
    inputs.add_argument(
        "--rules", metavar="FILE", help="gate file (YAML) with metric, slice and latency rules"
    )
    inputs.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="RULE",
        help="an inline rule, repeatable: 'accuracy max-drop=0.01', 'slice:recall min=0.7', "
        "'latency:p95_ms max=250'",
    )
    inputs.add_argument(
        "--model",
        metavar="MODEL",
        help="the candidate model the predictions come from: its digest goes into the verdict, and "
        "mlci model push accepts the verdict only for this model",
    )
    inputs.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="FILE",
        help="the data the candidate was evaluated on, repeatable: its fingerprint goes into the "
        "verdict (give the same files to mlci model push --data)",
    )
    inputs.add_argument("--candidate-latency", metavar="FILE", help="candidate latency JSON (mlci.latency)")
    inputs.add_argument("--baseline-latency", metavar="FILE", help="baseline latency JSON (mlci.latency)")
    cols = parser.add_argument_group("columns of the predictions files")
    add_column_options(cols, help={"id": "row id to join candidate and baseline (default: id)"})
    cols.add_argument("--pos-label", metavar="CLASS", help="the positive class (default: 1 for 0/1 labels)")
    cols.add_argument(
        "--task",
        choices=("binary", "multiclass", "regression"),
        help="the task (default: inferred from the data)",
    )
    cols.add_argument(
        "--slice-column", action="append", default=[], metavar="NAME", help="a column to slice by, repeatable"
    )
    cols.add_argument(
        "--slice-min-size",
        type=number(int, low=1),
        metavar="N",
        help="slices smaller than this are not gated",
    )
    stats = parser.add_argument_group("decision")
    stats.add_argument(
        "--resamples",
        type=number(int, low=0),
        metavar="N",
        help="bootstrap resamples, 0 for none (default 1000)",
    )
    stats.add_argument(
        "--confidence",
        type=number(float, low=0, low_open=True),
        metavar="P",
        help="interval confidence (default 0.95)",
    )
    stats.add_argument(
        "--seed", type=number(int, low=0, high=2**32 - 1), metavar="N", help="bootstrap seed (default 0)"
    )
    stats.add_argument(
        "--on-inconclusive",
        choices=("fail", "warn", "pass"),
        help="what an inconclusive rule does to the gate (default fail)",
    )
    out = parser.add_argument_group("output")
    add_result_file(
        parser,
        "--verdict-file",
        what="verdict file",
        group=out,
        default=DEFAULT_VERDICT_FILE,
        metavar="FILE",
        help=f"where to write the verdict JSON (default {DEFAULT_VERDICT_FILE})",
    )
    add_engine_options(parser)


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.errors import UsageError
    from mlci_lib.files import write_json_atomic
    from mlci_lib.fingerprint import data_fingerprint
    from mlci_lib.gate.verdict import run_gate

    if not args.candidate and not args.candidate_latency:
        raise UsageError(
            "mlci gate needs --candidate", hint="pass the candidate's predictions or metrics file"
        )
    from mlci_lib.cli.engine import SPARK, engine_of, refuse_spark_options, spark_from_args

    refuse_spark_options(args)
    gate: Any = run_gate
    if engine_of(args) == SPARK and args.candidate:
        from functools import partial

        from mlci_lib.spark.gate_counts import run_gate_spark

        gate = partial(run_gate_spark, spark_from_args(args))
    verdict = gate(
        args.candidate,
        args.baseline,
        args.rules,
        rule=args.rule,
        candidate_latency=args.candidate_latency,
        baseline_latency=args.baseline_latency,
        columns=columns_from(args),
        pos_label=args.pos_label,
        task=args.task,
        slice_column=args.slice_column,
        slice_min_size=args.slice_min_size,
        resamples=args.resamples,
        confidence=args.confidence,
        seed=args.seed,
        on_inconclusive=args.on_inconclusive,
        model=args.model or None,
        data_fingerprint=data_fingerprint(args.data),
    )
    path = write_json_atomic(args.verdict_file, verdict.to_dict())
    annotations = rule_annotations(verdict.rules, verdict.on_inconclusive)
    from mlci_lib.gate.render import verdict_markdown, verdict_text

    summary = verdict_markdown(verdict)
    return Outcome(
        result=verdict,
        passed=verdict.passed,
        text=verdict_text(verdict) + f"\nverdict: {path}",
        summary=summary,
        outputs={
            "passed": "true" if verdict.passed else "false",
            "verdict-file": str(path),
            "summary": summary,
        },
        annotations=annotations,
    )


def rule_annotations(rules: Any, on_inconclusive: str, *, title: str = "mlci gate") -> list[Any]:
    """One annotation per rule that did not pass: an error for each failing required rule."""
    from mlci_lib.gate.render import describe
    from mlci_lib.runner import Annotation

    annotations = []
    for r in rules:
        if r.outcome in ("fail", "undefined") and r.required:
            word = "failed" if r.outcome == "fail" else "undefined"
            annotations.append(Annotation("error", describe(r), title=f"{title}: {r.rule} {word}"))
        elif r.outcome == "inconclusive" and r.required:
            level = {"fail": "error", "warn": "warning", "pass": "notice"}.get(on_inconclusive, "error")
            annotations.append(Annotation(level, describe(r), title=f"{title}: {r.rule} inconclusive"))
        elif r.outcome in ("fail", "inconclusive", "undefined"):
            annotations.append(Annotation("warning", describe(r), title=f"{title}: {r.rule} (advisory)"))
    return annotations
