"""`mlci data`: check data against a suite, or profile data into a starter suite."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.engine import add_engine_options
from mlci_lib.cli.framework import Context, Outcome, add_command, add_group, add_result_file, number
from mlci_lib.runner import Annotation

CHECK_DESCRIPTION = """\
Validate DATA (CSV, Parquet, JSON Lines, or a folder of Parquet files) against SUITE with
Great Expectations 1.x semantics (no GX project folder needed). --engine pandas (the default)
evaluates the common expectation types natively, as GX does, and the others on GX; --engine gx
runs all of them on GX.

SUITE is a GX expectation suite JSON as GX writes it, or mlci's compact YAML:

  table:
    rows: {min: 1000}
    required_columns: [customer_id]
  columns:
    age: {type: int, nullable: false, min: 0, max: 120}
    plan: {allowed: [free, pro], max_null_share: 0.01}

Exit 1 when an expectation fails (a missing column, an expectation that raised, and data without
rows all fail); exit 2 for unreadable data or an invalid suite.
"""

PROFILE_DESCRIPTION = """\
Write a starter suite from reference DATA: column types, null shares, numeric ranges widened by
--margin, value sets of up to --max-categories values, and row-count bounds. The same data gives
the same file. -o x.yaml writes mlci's compact YAML; -o x.json a Great Expectations suite.
"""

#: At most this many annotations: the runner shows only the first few per step anyway.
MAX_ANNOTATIONS = 20


def register(subparsers: Any) -> None:
    group = add_group(subparsers, "data", "check data against a suite, or profile data into a starter suite")
    check = add_command(
        group, "check", handle_check, "check data against an expectation suite", CHECK_DESCRIPTION
    )
    check.add_argument("data", help="data file or folder of Parquet files")
    check.add_argument("--suite", required=True, help="GX suite JSON or mlci compact YAML")
    add_result_file(check, "--result-file", what="result file", default="", help="write the result JSON here")
    check.add_argument(
        "--sample-size",
        type=number(int, low=0, high=100),
        default=5,
        help="unexpected values to show per failed expectation (5)",
    )
    add_engine_options(
        check,
        engines=("pandas", "gx", "spark"),
        default="pandas",
        help_text="native (default: common expectation types evaluated natively with GX's semantics, the "
        "others on GX), gx (every expectation on Great Expectations) or spark (GX's Spark execution "
        "engine on Parquet, Delta or catalog tables)",
    )
    profile = add_command(
        group, "profile", handle_profile, "profile data into a starter suite", PROFILE_DESCRIPTION
    )
    profile.add_argument("data", help="reference data file or folder of Parquet files")
    profile.add_argument("-o", "--output", required=True, help="suite to write (.yaml compact, .json GX)")
    profile.add_argument("--name", default="", help="suite name (default: the data file's name)")
    profile.add_argument(
        "--margin",
        type=number(float, low=0),
        default=0.1,
        help="widen numeric ranges by this share of the range (0.1)",
    )
    profile.add_argument(
        "--max-categories",
        type=number(int, low=1),
        default=20,
        help="largest value set written as allowed values (20)",
    )
    profile.add_argument(
        "--row-margin",
        type=number(float, low=0),
        default=0.5,
        help="row-count bounds: rows times 1 -/+ this (0.5)",
    )
    add_engine_options(profile)


def handle_check(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.data.check import ENGINES, check_data
    from mlci_lib.data.render import check_markdown
    from mlci_lib.errors import UsageError
    from mlci_lib.files import write_json_atomic

    if not 0 <= args.sample_size <= 100:
        raise UsageError(f"option --sample-size must be from 0 to 100, got {args.sample_size}")
    from mlci_lib.cli.engine import SPARK, engine_of, refuse_spark_options, spark_from_args

    refuse_spark_options(args)
    if engine_of(args) == SPARK:
        from mlci_lib.spark.check import check_data_spark

        result = check_data_spark(spark_from_args(args), args.data, args.suite, sample_size=args.sample_size)
    else:
        if args.engine not in ENGINES:
            raise UsageError(f"option --engine must be one of {', '.join(ENGINES)}, got {args.engine!r}")
        result = check_data(args.data, args.suite, sample_size=args.sample_size, engine=args.engine)
    outputs = {
        "passed": "true" if result.passed else "false",
        "evaluated": str(result.evaluated),
        "failed": str(result.failed),
    }
    if args.result_file:
        write_json_atomic(args.result_file, result.to_dict())
        outputs["result-file"] = args.result_file
    annotations = [Annotation("error", problem, title="mlci data check") for problem in result.problems]
    failures = result.failures
    if not result.problems:
        annotations += [
            Annotation("error", f"{args.data}: {failure.describe()}", title="mlci data check")
            for failure in failures[:MAX_ANNOTATIONS]
        ]
    if result.passed:
        text = f"data check passed: {result.evaluated} expectations on {result.rows:,} rows"
    else:
        text = f"data check FAILED: {result.failed} of {result.evaluated} expectations failed"
        for problem in result.problems:
            text += f"\n  {problem}"
    return Outcome(
        result=result,
        passed=result.passed,
        text=text,
        summary=check_markdown(result),
        outputs=outputs,
        annotations=annotations,
    )


def handle_profile(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.cli.engine import SPARK, engine_of, refuse_spark_options, spark_from_args
    from mlci_lib.data.profile import profile_data, write_profile
    from mlci_lib.data.suite import parse_suite

    refuse_spark_options(args)
    settings: dict[str, Any] = {
        "name": args.name or None,
        "margin": args.margin,
        "max_categories": args.max_categories,
        "row_margin": args.row_margin,
    }
    if engine_of(args) == SPARK:
        from mlci_lib.spark.profile import profile_data_spark

        profile = profile_data_spark(spark_from_args(args), args.data, **settings)
    else:
        profile = profile_data(args.data, **settings)
    from mlci_lib.report.escape import code

    path = write_profile(profile, args.output)
    count = len(parse_suite(profile, source=str(path)).expectations)
    text = f"wrote {path}: {count} expectations over {len(profile['columns'])} columns"
    summary = (
        f"### Data profile\n\nWrote {code(path)}: {count} expectations over "
        f"{len(profile['columns'])} columns.\n"
    )
    return Outcome(text=text, summary=summary, outputs={"suite-file": str(path), "expectations": str(count)})
