"""`mlci drift`: compare current data with reference data and gate on drift."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.columns import add_column_options
from mlci_lib.cli.engine import add_engine_options
from mlci_lib.cli.framework import Context, Outcome, add_command, add_result_file, number
from mlci_lib.errors import UsageError
from mlci_lib.options import parse_list
from mlci_lib.runner import Annotation

DESCRIPTION = """\
Compare every feature of CURRENT data with REFERENCE data: population stability index (numeric
features binned on reference quantiles, categorical ones by level), Kolmogorov-Smirnov (numeric),
chi-square (categorical) and Jensen-Shannon distance. One statistic per feature gates it: PSI by
default (drifted at >= 0.2). The gate fails (exit 1) when more than --max-drift-share of the
features drifted, when a critical feature drifted, or when the prediction column drifted.

Per-feature rules live in a YAML config (--config), e.g.:

  numeric_method: psi            # psi | ks | js
  categorical_method: psi        # psi | chi2 | js
  thresholds: {psi: 0.2, js: 0.1, ks: 0.05, chi2: 0.05}   # ks/chi2: p-values
  max_drift_share: 0.5
  ignore: [id]
  features:
    age: {method: ks, threshold: 0.01, critical: true}
"""


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "drift",
        handle,
        "compare current data with reference data and gate on drift",
        DESCRIPTION,
    )
    parser.add_argument(
        "--reference", required=True, help="reference data (CSV, Parquet, JSON Lines, folder)"
    )
    parser.add_argument("--current", required=True, help="current data, with the same columns")
    parser.add_argument("--config", default="", help="drift config (YAML or JSON) with per-feature rules")
    parser.add_argument("--columns", default="", help="compare only these columns (comma-separated)")
    parser.add_argument("--ignore", default="", help="columns to skip, e.g. ids (comma-separated)")
    parser.add_argument("--numeric-method", choices=("psi", "ks", "js"), default=None)
    parser.add_argument("--categorical-method", choices=("psi", "chi2", "js"), default=None)
    parser.add_argument(
        "--psi-threshold",
        type=number(float, low=0, low_open=True),
        default=None,
        help="PSI at or above it drifts (0.2)",
    )
    parser.add_argument(
        "--js-threshold",
        type=number(float, low=0, high=1, low_open=True),
        default=None,
        help="JS distance at or above drifts (0.1)",
    )
    parser.add_argument(
        "--ks-threshold",
        type=number(float, low=0, high=1, low_open=True, high_open=True),
        default=None,
        help="KS p-value below it drifts (0.05)",
    )
    parser.add_argument(
        "--chi2-threshold",
        type=number(float, low=0, high=1, low_open=True, high_open=True),
        default=None,
        help="chi2 p-value below drifts (0.05)",
    )
    parser.add_argument(
        "--feature",
        action="append",
        default=[],
        metavar="NAME=METHOD[:THRESHOLD]",
        help="rule for one feature, e.g. age=ks:0.01 or income=:0.3 (repeatable)",
    )
    parser.add_argument(
        "--max-drift-share",
        type=number(float, low=0, high=1),
        default=None,
        help="largest share of drifted features (0.5)",
    )
    parser.add_argument(
        "--bins",
        type=number(int, low=2, high=1000),
        default=None,
        help="quantile bins for numeric features (10)",
    )
    add_column_options(
        parser,
        ("prediction",),
        help={
            "prediction": "column of model predictions; its drift fails the gate "
            "(default: 'prediction' when present)"
        },
        default={"prediction": None},
    )
    add_result_file(
        parser, "--verdict-file", what="verdict file", default="", help="write the verdict JSON here"
    )
    add_engine_options(parser, quantiles=True)


def _feature_rules(items: list[str]) -> dict[str, dict[str, Any]]:
    rules: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        method, _, threshold = spec.partition(":")
        if not sep or not name.strip() or not (method.strip() or threshold.strip()):
            raise UsageError(
                f"option --feature: {item!r} is not NAME=METHOD[:THRESHOLD]",
                hint="e.g. --feature age=ks:0.01",
            )
        rule: dict[str, Any] = {}
        if method.strip():
            rule["method"] = method.strip()
        if threshold.strip():
            try:
                rule["threshold"] = float(threshold)
            except ValueError:
                raise UsageError(
                    f"option --feature: threshold {threshold!r} of {name!r} is not a number"
                ) from None
        rules[name.strip()] = rule
    return rules


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.drift.gate import (
        DEFAULT_THRESHOLDS,
        FeatureRule,
        detect_drift,
        load_drift_config,
        write_verdict,
    )
    from mlci_lib.drift.render import drift_markdown

    thresholds = {
        method: value
        for method in DEFAULT_THRESHOLDS
        if (value := getattr(args, f"{method}_threshold")) is not None
    }
    features = _feature_rules(args.feature)
    for rule in features.values():
        FeatureRule(**rule)  # shape check; values are checked with the config
    config = load_drift_config(
        args.config or None,
        numeric_method=args.numeric_method,
        categorical_method=args.categorical_method,
        max_drift_share=args.max_drift_share,
        bins=args.bins,
        prediction_column=args.prediction_column,
        thresholds=thresholds,
        features=features,
        ignore=parse_list(args.ignore),
    )
    columns = parse_list(args.columns) or None
    from mlci_lib.cli.engine import SPARK, engine_of, quantile_accuracy, refuse_spark_options, spark_from_args

    refuse_spark_options(args)
    if engine_of(args) == SPARK:
        from mlci_lib.spark.drift import detect_drift_spark

        verdict = detect_drift_spark(
            spark_from_args(args),
            args.reference,
            args.current,
            config=config,
            columns=columns,
            accuracy=quantile_accuracy(args),
        )
    else:
        verdict = detect_drift(args.reference, args.current, config=config, columns=columns)
    outputs = {
        "passed": "true" if verdict.passed else "false",
        "drift-share": f"{verdict.drift_share:.4f}",
        "drifted-features": ",".join(verdict.drifted_features),
    }
    if args.verdict_file:
        write_verdict(verdict, args.verdict_file)
        outputs["verdict-file"] = args.verdict_file
    annotations = [Annotation("error", reason, title="mlci drift") for reason in verdict.reasons]
    status = "passed" if verdict.passed else "FAILED"
    text = (
        f"drift {status}: {len(verdict.drifted_features)} of {len(verdict.features)} features drifted "
        f"({verdict.drift_share:.0%}, gate {verdict.max_drift_share:.0%})"
    )
    for feature in verdict.features[:10]:
        if feature.drifted:
            text += (
                f"\n  drifted: {feature.name} ({feature.method} {feature.value:.4g}, "
                f"threshold {feature.threshold:g})"
            )
    for reason in verdict.reasons:
        text += f"\n  {reason}"
    if "engine" in verdict.conventions:
        bounds = [f.ks_error_bound for f in verdict.features if f.ks_error_bound is not None]
        text += (
            f"\n  engine spark: bin edges from percentile_approx, accuracy {quantile_accuracy(args)} "
            f"(rank error at most rows x {1 / quantile_accuracy(args):g})"
        )
        if bounds:
            text += f"; KS statistics exact to within {max(bounds):.2g}"
    return Outcome(
        result=verdict,
        passed=verdict.passed,
        text=text,
        summary=drift_markdown(verdict),
        outputs=outputs,
        annotations=annotations,
    )
