"""`mlci serve`: serve a model over HTTP (the serving image's entrypoint)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command, number

_DESCRIPTION = """\
Serve a model over HTTP until SIGTERM or Ctrl-C. The model loads under mlci's safety rules
(no pickle unless --allow-pickle; an --info file written by mlci image build adds the trusted
types and the pickle decision the build made) and answers a warm-up request before /health reports ready.

endpoints:
  POST /predict   {"rows": [{...}]}, {"columns": {...}} or {"dataframe_split": {...}}
  GET  /health    200 once the model is loaded and warmed up, else 503
  GET  /version   model name, version, URI, digest and git commit
  GET  /metrics   Prometheus text format

examples:
  mlci serve model/ --port 8080
  mlci serve model/ --host 0.0.0.0 --warmup-data sample.csv
  mlci serve model/ --runtime onnx --warmup-data sample.csv
  mlci serve model/ --log-dir /var/log/mlci --log-sample-rate 0.1

Prediction logs (--log-dir or --log-stdout) hold one row per predicted row: the request id
(the client's X-Request-Id, else a new one, echoed in the answer's X-Request-Id header), the
time, the model's name, version and digest, the inputs, the prediction and the probabilities.
They are written by a background thread from a bounded queue: a full queue or a full disk drops
rows (counted in /metrics as mlci_prediction_log_dropped_rows_total), never slows a request.
Files rotate by rows, size and age and appear under their final name only once complete. The
serving image has a read-only root: mount the log folder as a volume
(docker run -v "$PWD/logs:/var/log/mlci" -e MLCI_LOG_DIR=/var/log/mlci IMAGE, or a Kubernetes
emptyDir / persistent volume at that path).

Host and port default to $MLCI_SERVE_HOST and $MLCI_SERVE_PORT (else 127.0.0.1 and 8080);
the log folder to $MLCI_LOG_DIR.
"""


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "serve",
        handle,
        "serve a model over HTTP (the serving image's entrypoint)",
        description=_DESCRIPTION,
    )
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="mlci model folder, MLflow model folder, .skops or .onnx file, "
        "or an XGBoost, LightGBM or CatBoost model file",
    )
    parser.add_argument("--host", metavar="ADDRESS", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", metavar="PORT", help="port to listen on (default: 8080)")
    parser.add_argument(
        "--warmup-data",
        metavar="FILE",
        help="rows for the warm-up request (JSON payload, CSV, Parquet, JSON Lines); "
        "default: rows of zeros built from the model's signature",
    )
    parser.add_argument(
        "--info", metavar="FILE", help="JSON with the model's name, version, uri, git_commit (for /version)"
    )
    parser.add_argument(
        "--reference",
        metavar="FILE",
        help="reference.json (of mlci image build or monitor render) for /metrics (default: --info's)",
    )
    parser.add_argument("--model-name", metavar="NAME", help="model name reported by /version")
    parser.add_argument("--model-version", metavar="VERSION", help="model version reported by /version")
    parser.add_argument(
        "--max-body-bytes", metavar="N", default="10485760", help="largest request body (default: 10 MiB)"
    )
    parser.add_argument(
        "--request-timeout",
        metavar="SECONDS",
        default="30",
        help="seconds a client may take to send a request (default: 30)",
    )
    parser.add_argument(
        "--max-connections",
        metavar="N",
        default="1024",
        help="connections open at once; one more is answered 503 (default: 1024; an idle or slow "
        "connection holds no thread)",
    )
    parser.add_argument(
        "--max-concurrent-work",
        metavar="N",
        default="4",
        help="request bodies parsed and predicted at once; the rest wait their turn (default: 4)",
    )
    parser.add_argument(
        "--max-columns",
        metavar="N",
        default="10000",
        help="columns one request may name (default: 10000)",
    )
    parser.add_argument(
        "--threads",
        default="1",
        metavar="N",
        help="threads one prediction may use (OpenMP/BLAS; default: 1, requests already run in parallel)",
    )
    parser.add_argument(
        "--runtime",
        default="native",
        metavar="RUNTIME",
        help="native (the model's own library, default) or onnx: convert the model to ONNX, check it "
        "against the native model on the warm-up rows, and serve it with onnxruntime",
    )
    logs = parser.add_argument_group("prediction logs")
    logs.add_argument("--log-dir", metavar="DIR", help="write prediction logs to rotating files in DIR")
    logs.add_argument(
        "--log-stdout", action="store_true", help="write prediction logs as JSON lines on stdout"
    )
    logs.add_argument(
        "--log-sample-rate",
        metavar="RATE",
        type=number(float, low=0, high=1),
        default=1.0,
        help="share of rows logged, 0 to 1 (default: 1)",
    )
    logs.add_argument("--log-format", metavar="FORMAT", default="jsonl", help="jsonl (default) or parquet")
    logs.add_argument(
        "--log-max-rows",
        metavar="N",
        type=number(int, low=1),
        default=100000,
        help="rows per log file (default: 100000)",
    )
    logs.add_argument(
        "--log-max-bytes",
        metavar="N",
        type=number(int, low=1),
        default=67108864,
        help="bytes per log file (default: 64 MiB)",
    )
    logs.add_argument(
        "--log-max-seconds",
        metavar="SECONDS",
        type=number(float, low=0, low_open=True),
        default=300.0,
        help="age at which a log file is closed and renamed into place (default: 300)",
    )
    logs.add_argument(
        "--log-queue-rows",
        metavar="N",
        type=number(int, low=1),
        default=10000,
        help="rows waiting for the writer; more are dropped and counted (default: 10000)",
    )
    parser.add_argument("--allow-pickle", action="store_true", help="load pickle models (runs their code)")
    parser.add_argument(
        "--trust-type", action="append", default=[], metavar="TYPE", help="an extra type skops may load"
    )


def _number(value: str, option: str, kind: type) -> Any:
    from mlci_lib.options import parse_number

    return parse_number(value, option=option, kind=kind, low=0, low_open=True)


def parse_port(value: str, option: str = "--port") -> int:
    from mlci_lib.options import parse_number

    return int(parse_number(value, option=option, kind=int, low=1, high=65535))


def loading_decisions(
    info: dict[str, Any], allow_pickle: bool, trust_type: list[str], *, source: str | None
) -> tuple[bool, tuple[str, ...]]:
    """The loading rules: the options, plus what the serving info file records.

    ``mlci image build`` writes the image's info file with the trusted types the model needed and
    whether the build allowed a pickle, so the image's ``mlci serve`` loads the model under the
    same rules the build checked it with. The file is part of the image (or the user's own), so
    it is as trusted as the options; a value of the wrong type is refused, not guessed.
    """
    from mlci_lib.errors import InputError
    from mlci_lib.models import trusted_types_from

    recorded_types = info.get("trusted_types", [])
    recorded_pickle = info.get("allow_pickle", False)
    if not isinstance(recorded_types, list) or not all(isinstance(t, str) for t in recorded_types):
        raise InputError(f"serving info {source}: trusted_types must be a list of type names")
    if not isinstance(recorded_pickle, bool):
        raise InputError(f"serving info {source}: allow_pickle must be true or false")
    trusted = tuple(dict.fromkeys([*trusted_types_from(recorded_types), *trusted_types_from(trust_type)]))
    return allow_pickle or recorded_pickle, trusted


def log_settings(args: argparse.Namespace) -> Any:
    """The prediction-log settings of the options, or None when no log is asked for."""
    from pathlib import Path

    from mlci_lib.errors import UsageError
    from mlci_lib.serving.prediction_log import LogSettings

    folder = args.log_dir or os.environ.get("MLCI_LOG_DIR") or None
    if folder is None and not args.log_stdout:
        return None
    if args.log_dir and args.log_stdout:
        raise UsageError("options --log-dir and --log-stdout exclude each other: choose one")
    return LogSettings(
        directory=None if args.log_stdout or folder is None else Path(folder),
        stdout=bool(args.log_stdout),
        sample_rate=float(args.log_sample_rate),
        format=args.log_format,
        max_rows=int(args.log_max_rows),
        max_bytes=int(args.log_max_bytes),
        max_seconds=float(args.log_max_seconds),
        queue_rows=int(args.log_queue_rows),
    )


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.errors import UsageError
    from mlci_lib.files import read_mapping
    from mlci_lib.serving.server import RUNTIMES, serve_model

    if args.runtime not in RUNTIMES:
        raise UsageError(f"option --runtime must be one of {', '.join(RUNTIMES)}, got {args.runtime!r}")
    threads = _number(args.threads, "--threads", int)
    # Before scikit-learn loads its OpenMP runtime: the process-wide default for every thread.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))
    host = args.host or os.environ.get("MLCI_SERVE_HOST") or "127.0.0.1"
    port = parse_port(args.port or os.environ.get("MLCI_SERVE_PORT") or "8080")
    info: dict[str, Any] = {}
    if args.info:
        info.update(read_mapping(args.info, what="serving info", option="--info"))
    reference = args.reference or None
    if reference is None and isinstance(info.get("reference"), str):
        # written by mlci image build, beside the info file
        reference = os.path.join(os.path.dirname(os.path.abspath(args.info)), info["reference"])
    if reference is not None:
        from mlci_lib.monitor.reference import read_reference

        info["reference"] = read_reference(reference).to_dict()
    if args.model_name:
        info["name"] = args.model_name
    if args.model_version:
        info["version"] = args.model_version
    allow_pickle, trusted = loading_decisions(info, args.allow_pickle, args.trust_type, source=args.info)
    result = serve_model(
        args.model,
        host,
        port,
        log=lambda text: ctx.runner.print(text, to_stderr=True),
        allow_pickle=allow_pickle,
        trusted_types=trusted,
        info=info,
        warmup_data=args.warmup_data,
        max_body_bytes=_number(args.max_body_bytes, "--max-body-bytes", int),
        request_timeout=_number(args.request_timeout, "--request-timeout", float),
        prediction_threads=threads,
        max_connections=_number(args.max_connections, "--max-connections", int),
        max_concurrent_work=_number(args.max_concurrent_work, "--max-concurrent-work", int),
        max_columns=_number(args.max_columns, "--max-columns", int),
        runtime=args.runtime,
        prediction_log=log_settings(args),
    )
    return Outcome(
        result=result,
        passed=True,
        text=f"mlci serve: stopped by {result.stopped_by} after {result.requests} requests",
    )
