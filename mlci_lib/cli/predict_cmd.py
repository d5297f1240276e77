"""`mlci predict MODEL --data IN --output OUT`: batch scoring into Parquet, on pandas or Spark."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command, add_result_file, number

_DESCRIPTION = """\
Score a table with a model and write the predictions as Parquet: the id column (passed through
unchanged), the prediction, and for classifiers one probability column per class
(probability_<class>, the class written with letters, digits and _). The model loads under the
rules of mlci serve (no pickle unless --allow-pickle; --trust-type for extra skops types) and
predicts through the serving runtime's code, so a row scored here gets what POST /predict answers.

engines:
  pandas (default)  reads the input in chunks of --chunk-rows rows (Parquet by batches, CSV and
                    JSON Lines by chunks): memory stays bounded by the chunk, not the table.
                    Writes one Parquet file, one row group per chunk.
  spark             reads Parquet files or folders, Delta tables or catalog tables with Spark,
                    broadcasts the model and applies it with mapInPandas; Spark writes a folder
                    of Parquet files. Nothing but the first rows reaches the driver.

The output is written under a temporary name and renamed into place when complete; an output of
an earlier run is removed first, so a failed run leaves no output. The model's name, version and
digest and the mlci version are in the Parquet file's key-value metadata (key "mlci", JSON), and
in the _mlci.json file of a Spark output folder.

examples:
  mlci predict model/ --data customers.parquet --output scores.parquet
  mlci predict model/ --data big/ --output scores.parquet --chunk-rows 200000
  mlci predict model/ --data s3a://bucket/customers/ --output scores --engine spark \\
      --spark-master spark://head:7077 --spark-conf spark.executor.memory=8g
"""


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """--engine, --spark-master and --spark-conf, as every --engine command names them."""
    group = parser.add_argument_group("engine")
    group.add_argument(
        "--engine",
        default="pandas",
        metavar="ENGINE",
        help="pandas (default: in this process, in chunks) or spark",
    )
    group.add_argument(
        "--spark-master",
        metavar="URL",
        help="with --engine spark: local[*] (default), local[N], spark://host:port, yarn, "
        "k8s://https://host:port, or a Spark Connect URL sc://host:port ($MLCI_SPARK_MASTER)",
    )
    group.add_argument(
        "--spark-conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting for the session, e.g. spark.executor.memory=4g (repeatable)",
    )


def spark_settings(args: argparse.Namespace) -> Any:
    """The Spark settings of the options, or None on the pandas engine (where they are refused)."""
    from mlci_lib.errors import UsageError

    if args.engine != "spark":
        given = [
            flag
            for flag, value in (("--spark-master", args.spark_master), ("--spark-conf", args.spark_conf))
            if value
        ]
        if given:
            raise UsageError(f"option {given[0]} needs --engine spark", hint="add --engine spark, or drop it")
        return None
    from mlci_lib.spark.session import SparkSettings

    return SparkSettings.from_options(args.spark_master, args.spark_conf)


def register(subparsers: Any) -> None:
    from mlci_lib.predict.run import DEFAULT_CHUNK_ROWS, MAX_CHUNK_ROWS

    parser = add_command(
        subparsers,
        "predict",
        handle,
        "score a table with a model into Parquet (batch predictions, on pandas or Spark)",
        description=_DESCRIPTION,
    )
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="mlci model folder, MLflow model folder, .skops or .onnx file, "
        "or an XGBoost, LightGBM or CatBoost model file",
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="IN",
        help="the rows to score: Parquet file or folder, CSV, JSON Lines (pandas); Parquet, Delta or a "
        "catalog table (spark)",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="OUT",
        help="where the predictions go: a .parquet file (pandas) or a folder (spark)",
    )
    parser.add_argument(
        "--id-column",
        default="id",
        metavar="NAME",
        help="the column that identifies each row, copied into the output (default: id)",
    )
    parser.add_argument(
        "--chunk-rows",
        type=number(int, low=1, high=MAX_CHUNK_ROWS),
        default=DEFAULT_CHUNK_ROWS,
        metavar="N",
        help="rows scored at once: a chunk (pandas) or an Arrow batch (spark) "
        f"(default: {DEFAULT_CHUNK_ROWS})",
    )
    parser.add_argument(
        "--prediction-column",
        default="prediction",
        metavar="NAME",
        help="name of the prediction column (default: prediction)",
    )
    parser.add_argument(
        "--probability-prefix",
        default="probability_",
        metavar="PREFIX",
        help="prefix of the class probability columns (default: probability_)",
    )
    add_engine_options(parser)
    parser.add_argument(
        "--runtime",
        default="native",
        metavar="RUNTIME",
        help="native (the model's own library, default) or onnx: convert the model to ONNX, check it "
        "against the native model on the first rows, and predict with onnxruntime",
    )
    parser.add_argument("--model-name", metavar="NAME", help="model name recorded in the output's metadata")
    parser.add_argument(
        "--model-version", metavar="VERSION", help="model version recorded in the output's metadata"
    )
    parser.add_argument("--allow-pickle", action="store_true", help="load pickle models (runs their code)")
    parser.add_argument(
        "--trust-type", action="append", default=[], metavar="TYPE", help="an extra type skops may load"
    )
    add_result_file(
        parser,
        "--result-file",
        what="predict result",
        metavar="FILE",
        help="write the result JSON (schema mlci.predict-result: rows, time, model digest) here",
    )


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.cli.serve_cmd import loading_decisions
    from mlci_lib.files import write_json_atomic
    from mlci_lib.predict import predict_batch

    settings = spark_settings(args)
    info: dict[str, Any] = {}
    if args.model_name:
        info["name"] = args.model_name
    if args.model_version:
        info["version"] = args.model_version
    allow_pickle, trusted = loading_decisions(info, args.allow_pickle, args.trust_type, source=None)
    result = predict_batch(
        args.model,
        args.data,
        args.output,
        id_column=args.id_column,
        engine=args.engine,
        chunk_rows=args.chunk_rows,
        runtime=args.runtime,
        allow_pickle=allow_pickle,
        trusted_types=trusted,
        info=info,
        prediction_column=args.prediction_column,
        probability_prefix=args.probability_prefix,
        spark=settings,
    )
    if args.result_file:
        write_json_atomic(args.result_file, result.to_dict())
    rate = f", {result.rows_per_second:,.0f} rows/s" if result.rows_per_second else ""
    digest = str(result.model.get("digest") or "")[:19]
    return Outcome(
        result=result,
        passed=True,
        text=f"mlci predict: {result.rows:,} rows scored in {result.seconds:.1f} s{rate} into "
        f"{result.output} (model {result.model.get('name')}, {digest})",
        outputs={
            "rows": str(result.rows),
            "output": result.output,
            "model-digest": str(result.model.get("digest") or ""),
            "result-file": args.result_file or "",
        },
    )
