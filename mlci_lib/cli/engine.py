"""The ``--engine`` options every data command shares: pandas on one machine, or Spark.

One definition for ``mlci data check``, ``mlci data profile``, ``mlci drift`` and ``mlci gate``,
so the options read the same everywhere (and arrive the same way from action inputs:
``MLCI_INPUT_ENGINE``, ``MLCI_INPUT_SPARK_MASTER``, ``MLCI_INPUT_SPARK_CONF`` one pair a line).
A command passes the engines it has; adding one (``gx`` for ``data check``, say) is a word in
its tuple.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlci_lib.cli.framework import number

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PANDAS, SPARK = "pandas", "spark"
ENGINES: tuple[str, ...] = (PANDAS, SPARK)
#: percentile_approx's accuracy: its rank error is at most rows / accuracy. Spark's own default.
DEFAULT_QUANTILE_ACCURACY = 10_000
QUANTILE_ACCURACY_RANGE = (100, 10_000_000)


def add_engine_options(
    parser: argparse.ArgumentParser,
    *,
    engines: Sequence[str] = ENGINES,
    default: str = PANDAS,
    help_text: str | None = None,
    quantiles: bool = False,
) -> Any:
    """Add ``--engine``, ``--spark-master``, ``--spark-conf`` (and the quantile accuracy)."""
    group = parser.add_argument_group("engine")
    group.add_argument(
        "--engine",
        choices=tuple(engines),
        default=default,
        help=help_text
        or f"where the data is read and computed: {', '.join(engines)} (default {default}); spark "
        "reads Parquet files or folders, Delta tables or catalog tables and brings only aggregates "
        "to the driver",
    )
    group.add_argument(
        "--spark-master",
        metavar="URL",
        default=None,
        help="--engine spark: local[*] (default), local[N], spark://host:port, yarn, k8s://..., or "
        "a Spark Connect URL sc://host:port",
    )
    group.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="--engine spark: a Spark setting, e.g. spark.executor.memory=4g (repeatable)",
    )
    if quantiles:
        low, high = QUANTILE_ACCURACY_RANGE
        group.add_argument(
            "--spark-quantile-accuracy",
            type=number(int, low=low, high=high),
            default=None,
            metavar="N",
            help=f"--engine spark: accuracy of percentile_approx for the numeric bins and the KS "
            f"grid; rank error at most rows/N (default {DEFAULT_QUANTILE_ACCURACY})",
        )
    return group


def engine_of(args: argparse.Namespace) -> str:
    return str(getattr(args, "engine", None) or PANDAS)


def refuse_spark_options(args: argparse.Namespace) -> None:
    """Spark options with the pandas engine are a mistake to say, not to ignore."""
    from mlci_lib.errors import UsageError

    if engine_of(args) == SPARK:
        return
    given = [
        flag
        for flag, dest in (
            ("--spark-master", "spark_master"),
            ("--spark-conf", "spark_conf"),
            ("--spark-quantile-accuracy", "spark_quantile_accuracy"),
        )
        if getattr(args, dest, None)
    ]
    if given:
        raise UsageError(
            f"{given[0]} applies to --engine spark, but the engine is {engine_of(args)}",
            hint="add --engine spark, or drop the Spark options",
        )


def spark_from_args(args: argparse.Namespace) -> SparkSession:
    """The process's Spark session for ``--spark-master`` and ``--spark-conf``."""
    from mlci_lib.spark.session import SparkSettings, spark_session

    settings = SparkSettings.from_options(args.spark_master, args.spark_conf)
    return spark_session(settings)


def quantile_accuracy(args: argparse.Namespace) -> int:
    value = getattr(args, "spark_quantile_accuracy", None)
    return int(value) if value is not None else DEFAULT_QUANTILE_ACCURACY
