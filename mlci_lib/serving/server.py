"""The HTTP serving runtime behind ``mlci serve`` and the serving image.

An HTTP/1.1 transport of the standard library's asyncio (:mod:`mlci_lib.serving.http_server`:
connections on an event loop, predictions on a few worker threads, every limit a hostile client
could push against bounded) in front of a model loaded with
:func:`mlci_lib.models.load_model`. Endpoints:

- ``POST /predict``: rows in, predictions (and class probabilities) out; 400 for a malformed body
  or rows that do not match the model's signature, 413 for a body over the size limit, 422 when
  the model itself refuses the rows, 503 until the model is ready;
- ``GET /health``: 200 once the model has loaded and answered a warm-up request, else 503;
- ``GET /v2/health/live`` and ``GET /v2/health/ready``: the Open Inference Protocol's health checks
  (what the Kubernetes probes of ``mlci deploy render`` ask);
- ``GET /version``: model name, version, URI and digest, git commit;
- ``GET /metrics``: Prometheus text format (see :mod:`mlci_lib.serving.metrics`);
- ``/v2``, ``/v2/models/{name}[/versions/{version}][/ready|/infer]``: the rest of the Open
  Inference Protocol (see :mod:`mlci_lib.serving.oip`);
- ``GET /openapi.json``: the OpenAPI document of all of these (see :mod:`mlci_lib.serving.routes`).

:class:`ModelServer` is the in-process factory (tests, benchmarks); :func:`serve_model` runs one
in the foreground until SIGTERM or SIGINT, which is what the image's entrypoint does.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError, MlciError, ModelLoadError, ServiceError
from mlci_lib.results import Result
from mlci_lib.serving import fast_path, oip
from mlci_lib.serving.http_server import (
    DEFAULT_MAX_CONCURRENT_WORK,
    DEFAULT_MAX_CONNECTIONS,
    HTTPServer,
    Limits,
    Request,
    Response,
)
from mlci_lib.serving.metrics import CONTENT_TYPE, ServingMetrics, monitored_features
from mlci_lib.serving.payload import (
    DEFAULT_MAX_COLUMNS,
    PayloadError,
    check_width,
    parse_json,
    rows_to_frame,
)
from mlci_lib.serving.prediction_log import LogSettings, PredictionLog, request_id_of
from mlci_lib.serving.routes import openapi_document, route_template

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_PORT = 8080
#: How ``mlci serve`` predicts: with the model's own library, or converted to ONNX (onnxruntime).
RUNTIMES = ("native", "onnx")

#: What the warm-up hint names as the library a model loads with.
_FRAMEWORK_NAMES = {
    "xgboost": "XGBoost",
    "lightgbm": "LightGBM",
    "catboost": "CatBoost",
    "onnx": "onnxruntime",
}


@dataclasses.dataclass(frozen=True)
class ServeResult(Result):
    """What a foreground ``serve_model`` run did, once it has stopped."""

    SCHEMA = "mlci.serve"
    SCHEMA_VERSION = 1

    url: str
    model: dict[str, Any]
    requests: int
    stopped_by: str


class ModelService:
    """A loaded, warmed-up model and the logic of each endpoint, independent of HTTP."""

    def __init__(
        self, model: Any, info: Mapping[str, Any] | None = None, *, max_columns: int = DEFAULT_MAX_COLUMNS
    ) -> None:
        self.model = model
        self.max_columns = max_columns
        estimator = model.estimator
        self.classifier = bool(model.is_classifier)
        classes = model.classes if self.classifier else None
        self.classes = classes
        self.info = version_info(model, info or {})
        self.feature_names = monitored_features(model)
        reference = (info or {}).get("reference")
        self.metrics = ServingMetrics(
            self.feature_names,
            classes=self.classes if self.classifier else None,
            reference=reference if isinstance(reference, Mapping) else None,
        )
        #: Where predictions are logged (set by the server once the model has warmed up).
        self.prediction_log: PredictionLog | None = None
        signature = model.signature
        numeric = signature is not None and all(c.kind in ("integer", "float") for c in signature.columns)
        self._numeric_names = [c.name for c in signature.columns] if numeric and signature else None
        self._integer_positions = (
            [i for i, c in enumerate(signature.columns) if c.kind == "integer"]
            if numeric and signature
            else []
        )
        fitted_names = getattr(estimator, "feature_names_in_", None)
        if self._numeric_names is not None and fitted_names is not None:
            import pandas as pd

            # An object Index, built once: pandas' default string index costs more to compare.
            self._columns: Any = pd.Index(self._numeric_names, dtype=object)
        else:
            self._columns = None
        #: The estimator the numeric fast path predicts with (see :mod:`fast_path`): the model
        #: itself until :meth:`warm_up` has checked a view that takes the bare matrix.
        self._matrix_model = estimator
        self._matrix_input: Callable[[Any], Any] = self._frame_of
        self._argmax_predicts = self.classifier and fast_path.argmax_predicts(estimator)
        # ONNX classifiers give labels and probabilities from one run of the graph.
        self._joint = getattr(estimator, "predict_with_probabilities", None) if self.classifier else None
        #: Requests become a PlainTable, not a DataFrame: the ONNX runtime's image has no pandas.
        self.plain = model.framework == "onnx"

    def warm_up(self, frame: Any) -> None:
        """Predict on ``frame`` once; raises ModelLoadError when the model cannot answer."""
        try:
            self.predict_frame(frame, observe=False)
        except InputError as exc:
            raise ModelLoadError(
                f"warm-up rows do not fit the model: {exc.message}",
                hint="pass --warmup-data with a few real input rows",
            ) from None
        except Exception as exc:
            raise ModelLoadError(
                f"the model failed its warm-up prediction: {type(exc).__name__}: {exc}",
                hint=f"check that the model is fitted and loads with the installed "
                f"{_FRAMEWORK_NAMES.get(self.model.framework, 'scikit-learn')}, "
                "or pass --warmup-data with a few real input rows",
            ) from None
        self._choose_fast_path(frame)

    def _choose_fast_path(self, frame: Any) -> None:
        """Use the matrix view and the one-pass labels only where they answer as the model does.

        Compared on the warm-up rows and on pseudo-random ones, to the last bit, against today's
        path: the model itself on the matrix as a DataFrame with the signature's column names.
        """
        names = self._numeric_names
        estimator = self.model.estimator
        if names is None or self._joint is not None:
            return
        try:
            matrix = fast_path.check_rows(self.model.prepare(frame), names, self._integer_positions)
        except (InputError, KeyError, TypeError, ValueError):
            return
        framed = self._frame_of(matrix)
        if self._argmax_predicts and not fast_path.verify_labels(estimator, framed):
            self._argmax_predicts = False
        view = fast_path.matrix_view(estimator, names)
        if view is None or view is estimator:
            return
        if self._argmax_predicts and not fast_path.verify_labels(view, matrix):
            return
        if fast_path.verify(estimator, view, framed, matrix, classifier=self.classifier):
            self._matrix_model = view
            self._matrix_input = _same

    @property
    def fast_path(self) -> dict[str, bool]:
        """Which shortcuts the numeric fast path takes (for tests and the benchmark)."""
        return {
            "matrix": self._numeric_names is not None,
            "bare_matrix": self._matrix_model is not self.model.estimator
            or (self._numeric_names is not None and self._columns is None),
            "one_pass": bool(self._argmax_predicts),
        }

    def numeric_matrix(self, payload: Any) -> Any:
        """The rows as a float64 matrix in signature order, straight from the JSON payload.

        Only for models whose inputs are all numeric, and only when every cell is a JSON number
        and integer columns hold whole numbers: then the matrix equals what the signature's
        coercion would give (scikit-learn reads both as float64). Anything else returns None and
        takes the general path, which validates and explains.
        """
        names = self._numeric_names
        if names is None:
            return None
        try:
            rows = _numeric_rows(payload, names)
        except (KeyError, TypeError, IndexError, AttributeError):
            return None
        if not rows:
            return None
        width = len(names)
        for row in rows:
            if len(row) != width:
                return None
            for value in row:
                kind = type(value)
                if kind is not float and kind is not int:
                    return None
        import numpy as np

        try:
            # Column-major, as a DataFrame's own array is: a linear model's matrix product then
            # sums in the same order, so its answers equal the model's on the frame to the bit.
            matrix = np.array(rows, dtype=np.float64, order="F")
        except OverflowError:  # an integer beyond float64: the general path explains it
            return None
        if self._integer_positions:
            block = matrix[:, self._integer_positions]
            if (block != np.floor(block)).any():
                return None
        return matrix

    def predict_body(self, body: bytes, request_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """HTTP status and JSON answer for a ``POST /predict`` body (logged under ``request_id``)."""
        try:
            payload = parse_json(body)
        except PayloadError as exc:
            return exc.status, {"error": str(exc)}
        return self.predict_payload(payload, request_id)

    def predict_payload(self, payload: Any, request_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """HTTP status and JSON answer for a parsed payload (``/predict``'s, or the protocol's tensors),
        logged under ``request_id`` when prediction logging is on."""
        try:
            check_width(payload, self.max_columns)
            matrix = self.numeric_matrix(payload)
            if matrix is not None:
                return 200, self._predict_ready(
                    self._matrix_input(matrix),
                    matrix,
                    estimator=self._matrix_model,
                    request_id=request_id,
                    logged=(matrix, self._numeric_names),
                )
            frame = rows_to_frame(payload, max_columns=self.max_columns, plain=self.plain)
            return 200, self.predict_frame(frame, request_id=request_id)
        except PayloadError as exc:
            return exc.status, {"error": str(exc)}
        except MlciError as exc:
            return 400, {"error": exc.one_line()}
        except (ValueError, TypeError) as exc:
            return 422, {"error": f"the model could not predict on these rows: {type(exc).__name__}: {exc}"}

    def _frame_of(self, matrix: Any) -> Any:
        if self._columns is None:
            return matrix  # fitted without feature names: scikit-learn takes the matrix as is
        import pandas as pd

        return pd.DataFrame(matrix, columns=self._columns, copy=False)

    def predict_frame(
        self, frame: Any, *, observe: bool = True, request_id: str | None = None
    ) -> dict[str, Any]:
        """Validate ``frame`` against the signature and predict."""
        ready = self.model.prepare(frame, source="request")
        features = None
        if observe and self.feature_names:
            try:
                features = ready[self.feature_names].to_numpy(dtype="float64")
            except (KeyError, TypeError, ValueError):
                features = None
        return self._predict_ready(
            ready, features, observe=observe, request_id=request_id, logged=(ready, None)
        )

    def _predict_ready(
        self,
        ready: Any,
        features: Any,
        *,
        observe: bool = True,
        request_id: str | None = None,
        logged: tuple[Any, Any] | None = None,
        estimator: Any = None,
    ) -> dict[str, Any]:
        if estimator is None:
            estimator = self.model.estimator
        body: dict[str, Any] = {}
        if self._joint is not None:
            predictions, probabilities = self._joint(ready)
            body["predictions"] = predictions.tolist()
            body["probabilities"] = probabilities.tolist()
            body["classes"] = self.classes
        elif self.classifier:
            probabilities = estimator.predict_proba(ready)
            if self._argmax_predicts:
                # One pass, not two: predict() of these is the class of the largest probability.
                predictions = fast_path.labels_from_probabilities(estimator, ready, probabilities)
            else:
                predictions = estimator.predict(ready)
            body["predictions"] = predictions.tolist()
            body["probabilities"] = probabilities.tolist()
            body["classes"] = self.classes
        else:
            predictions = estimator.predict(ready)
            probabilities = None
            body["predictions"] = predictions.tolist()
        if observe:
            self.metrics.observe_predictions(predictions, classifier=self.classifier, features=features)
            log = self.prediction_log
            if log is not None and request_id is not None and logged is not None:
                log.submit(request_id, logged[0], predictions, probabilities, columns=logged[1])
        return body


def _same(matrix: Any) -> Any:
    return matrix


def _numeric_rows(payload: Any, names: list[str]) -> list[list[Any]] | None:
    """Row lists in ``names`` order for the payload shapes of :mod:`payload`; errors mean 'not clean'."""
    if isinstance(payload, list):
        return [[record[n] for n in names] for record in payload]
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        columns = split["columns"]
        if len(set(columns)) != len(columns):
            return None
        position = {name: i for i, name in enumerate(columns)}
        order = [position[n] for n in names]
        data = split["data"]
        if any(len(row) != len(columns) for row in data):
            return None
        if order == list(range(len(columns))):
            return data  # type: ignore[no-any-return]
        return [[row[i] for i in order] for row in data]
    if "rows" in payload or "dataframe_records" in payload:
        records = payload.get("rows", payload.get("dataframe_records"))
        return [[record[n] for n in names] for record in records]
    if isinstance(payload.get("columns"), dict):
        columns = [payload["columns"][n] for n in names]
        if len({len(c) for c in columns}) != 1:
            return None
        return [list(row) for row in zip(*columns, strict=True)]
    return None


def version_info(model: Any, info: Mapping[str, Any]) -> dict[str, Any]:
    from mlci_lib import __version__

    meta = model.metadata or {}
    name = info.get("name") or meta.get("name") or Path(model.source).name
    return {
        "model": {
            "name": name,
            "version": info.get("version") or meta.get("version"),
            "uri": info.get("uri") or meta.get("uri"),
            "digest": model.digest,
            "format": model.format,
            "task": meta.get("task") or ("classification" if model.is_classifier else "regression"),
            "runtime": "onnx" if model.framework == "onnx" else "native",
            "framework": getattr(model, "framework", "sklearn"),
            # A pickle model runs its code when loaded: say so wherever it is served.
            "pickle": model.format in ("pickle", "mlflow-pickle")
            or getattr(model, "framework", "") == "pickle",
        },
        "git_commit": info.get("git_commit"),
        "verdict_digest": info.get("verdict_digest"),
        "reference_digest": (info.get("reference") or {}).get("digest")
        if isinstance(info.get("reference"), Mapping)
        else None,
        "mlci_version": __version__,
    }


def convert_to_onnx(model: Any, rows: Any, file: Path) -> tuple[Any, Any]:
    """``model`` converted to ONNX at ``file`` (checked against it on ``rows``), loaded with
    onnxruntime, and the conversion's record: what ``--runtime onnx`` predicts with."""
    from mlci_lib.models.onnx_convert import convert_model
    from mlci_lib.models.onnx_format import load_onnx

    conversion = convert_model(model, rows, file)
    converted = load_onnx(
        conversion.path,
        source=model.source,
        metadata={**(model.metadata or {}), "conversion": conversion.to_dict()},
    )
    return converted, conversion


def synthetic_rows(model: Any, n: int = 2) -> Any:
    """Warm-up rows from the model's signature: zeros, false and empty text.

    A PlainTable for an ONNX model, whose serving image has no pandas; a DataFrame otherwise.
    """
    columns: dict[Any, list[Any]]
    if model.signature is not None:
        columns = {c.name: [c.placeholder()] * n for c in model.signature.columns}
    elif getattr(model.estimator, "feature_names_in_", None) is not None:
        columns = {str(c): [0.0] * n for c in model.estimator.feature_names_in_}
    else:
        width = int(getattr(model.estimator, "n_features_in_", 0) or 0)
        if not width:
            raise ModelLoadError(
                f"model {model.source} has no signature to build warm-up rows from",
                hint="save it with mlci_lib.save_model(..., sample_input=...) or pass --warmup-data",
            )
        columns = {i: [0.0] * n for i in range(width)}
    if model.framework == "onnx":
        from mlci_lib.models.plain_table import PlainTable

        return PlainTable({str(name): values for name, values in columns.items()})
    import pandas as pd

    return pd.DataFrame(columns)


def read_rows_file(path: str | os.PathLike[str], *, what: str, option: str) -> Any:
    """Rows from a JSON payload file or any table mlci reads (CSV, Parquet, JSON Lines)."""
    from mlci_lib.files import existing_file

    file = existing_file(path, what=what, option=option)
    if file.suffix.lower() == ".json":
        from mlci_lib.files import read_json

        try:
            return rows_to_frame(read_json(file, what=what, option=option))
        except PayloadError as exc:
            raise InputError(f"{what} {file} (option {option}): {exc}") from None
    from mlci_lib.tables import read_table

    return read_table(file, what=what)


def thread_limiter(count: int | None) -> Callable[[], None] | None:
    """A function that caps the OpenMP and BLAS threads of predictions made on the calling thread.

    The server answers requests in parallel on its own threads; letting each prediction also fan
    out over every core oversubscribes the machine (OpenMP workers spin while they wait), which
    made single-row predictions several times slower in our measurements. OpenMP's limit holds
    per thread, so each connection thread applies it once. The libraries are found once, here
    (call it after the model is loaded); applying the limit then costs about 0.1 ms.
    """
    if count is None:
        return None
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return None
    controller = ThreadpoolController()

    def apply() -> None:
        controller.limit(limits=count)

    apply()
    return apply


class _App:
    """What each request gets: the endpoints of :class:`ModelService` behind the transport.

    Called on the transport's worker threads, one complete request at a time per thread.
    """

    def __init__(self, state: _ServerState) -> None:
        self.state = state
        self._thread = threading.local()
        self._protocol: oip.OpenInference | None = None

    def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        state = self.state
        v2 = oip.match(request.path) if request.path.startswith("/v2") else None
        if v2 is not None:
            response = self._v2(request, v2)
        elif request.method == "GET":
            response = self._get(request.path)
        elif request.method == "POST":
            response = self._post(request)
        else:
            response = Response.json(405, {"error": f"{request.method} is not served; use GET or POST"})
        if state.service is not None:
            path = route_template(request.path) or "other"
            elapsed = time.perf_counter() - started if request.method == "POST" else 0.0
            state.service.metrics.observe_request(path, response.status, elapsed)
        return response

    def _get(self, path: str) -> Response:
        state = self.state
        if path == "/metrics":
            text = state.service.metrics.render() if state.service else "# the model is not loaded yet\n"
            return Response(200, text.encode(), CONTENT_TYPE)
        if path == "/v2/health/live":
            # Open Inference Protocol (v2): the process serves HTTP; 200 means true.
            return Response.json(200, {"live": True})
        if path == "/v2/health/ready":
            # 200 means ready, a 4xx status means not (the protocol's words; Triton answers 400).
            ready = state.service is not None
            return Response.json(200 if ready else 400, {"ready": ready})
        if path == "/openapi.json":
            return Response.json(200, openapi_document())
        if path == "/health":
            status, body = state.health()
        elif path == "/version":
            status, body = (200, state.service.info) if state.service else state.health()
        else:
            status = 405 if path == "/predict" else 404
            body = {"error": f"GET {path} is not served; try POST /predict or GET /health"}
        return Response.json(status, body)

    def _post(self, request: Request) -> Response:
        state = self.state
        if request.path != "/predict":
            return Response.json(
                404, {"error": f"POST {request.path} is not served; send rows to POST /predict"}
            )
        if state.service is None:
            return Response.json(503, state.health()[1])
        self._limit_threads()
        request_id = request_id_of(request.headers.get("x-request-id"))
        status, answer = state.service.predict_body(request.body, request_id)
        return Response.json(status, answer, (("X-Request-Id", request_id),))

    def _limit_threads(self) -> None:
        state = self.state
        if state.limiter is not None and not getattr(self._thread, "limited", False):
            state.limiter()  # per worker thread: OpenMP's limit holds per thread
            self._thread.limited = True

    def _v2(self, request: Request, route: oip.Route) -> Response:
        """The Open Inference Protocol's routes (its health checks stay in :meth:`_get`)."""
        service = self.state.service
        protocol = self._protocol
        if service is not None and (protocol is None or protocol.service is not service):
            protocol = self._protocol = oip.OpenInference(service)
        if route.kind == "infer" and protocol is not None:
            self._limit_threads()
        loading = self.state.health()[1].get("error", "the model is loading")
        return oip.answer(protocol, route, request, loading)


@dataclasses.dataclass
class _ServerState:
    max_body_bytes: int
    max_columns: int = DEFAULT_MAX_COLUMNS
    service: ModelService | None = None
    error: MlciError | None = None
    limiter: Callable[[], None] | None = None

    def health(self) -> tuple[int, dict[str, Any]]:
        if self.service is not None:
            return 200, {"status": "ready"}
        if self.error is not None:
            return 503, {"status": "failed", "error": self.error.one_line()}
        return 503, {"status": "loading"}


class ModelServer:
    """A serving runtime in a background thread: ``with ModelServer(model) as server: server.url``.

    The socket is bound at :meth:`start`; the model loads and warms up in the background, and
    ``/health`` answers 503 until it is ready. :meth:`wait_ready` blocks until then, raising the
    load or warm-up error if there was one.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        allow_pickle: bool = False,
        trusted_types: Iterable[str] = (),
        info: Mapping[str, Any] | None = None,
        warmup_data: str | os.PathLike[str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        prediction_threads: int | None = 1,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_concurrent_work: int = DEFAULT_MAX_CONCURRENT_WORK,
        max_columns: int = DEFAULT_MAX_COLUMNS,
        runtime: str = "native",
        prediction_log: LogSettings | None = None,
    ) -> None:
        if runtime not in RUNTIMES:
            raise InputError(f"unknown runtime {runtime!r}", hint=f"use one of {', '.join(RUNTIMES)}")
        if max_body_bytes <= 0:
            raise InputError("the body size limit must be positive", hint="pass --max-body-bytes > 0")
        if request_timeout <= 0:
            raise InputError("the request timeout must be positive", hint="pass --request-timeout > 0")
        for option, value in (
            ("--max-connections", max_connections),
            ("--max-concurrent-work", max_concurrent_work),
            ("--max-columns", max_columns),
        ):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"option {option} must be a whole number of 1 or more, got {value!r}")
        self.limits = Limits(
            max_body_bytes=max_body_bytes,
            request_timeout=request_timeout,
            max_connections=max_connections,
            max_concurrent_work=max_concurrent_work,
        )
        self.model_path = Path(model)
        if not self.model_path.exists():
            raise InputError(f"model {self.model_path} does not exist", hint="check the path")
        if warmup_data is not None:
            from mlci_lib.files import existing_file

            existing_file(warmup_data, what="warm-up data", option="--warmup-data")
        if prediction_log is not None and prediction_log.directory is not None:
            PredictionLog.check_folder(prediction_log.directory)
        self.prediction_log = prediction_log
        self.host = host
        self.port = port
        self.allow_pickle = allow_pickle
        self.trusted_types = tuple(trusted_types)
        self.info = dict(info or {})
        self.warmup_data = warmup_data
        self.request_timeout = request_timeout
        self.prediction_threads = prediction_threads
        self.runtime = runtime
        #: What the ONNX runtime's conversion check measured (None when nothing was converted).
        self.conversion: Any = None
        self.state = _ServerState(max_body_bytes=max_body_bytes, max_columns=max_columns)
        self._httpd: HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._loaded = threading.Event()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        host, port = self._httpd.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown}:{port}"

    def start(self) -> ModelServer:
        try:
            self._httpd = HTTPServer((self.host, self.port), _App(self.state), self.limits)
        except OSError as exc:
            raise ServiceError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror}",
                hint="choose another --port, or stop what is using it",
            ) from None
        self._httpd.start()
        load = threading.Thread(target=self._load, name="mlci-load", daemon=True)
        self._threads = [load]
        load.start()
        return self

    def _load(self) -> None:
        from mlci_lib.models import load_model

        try:
            model = load_model(
                self.model_path, allow_pickle=self.allow_pickle, trusted_types=self.trusted_types
            )
            if self.warmup_data is not None:
                rows = read_rows_file(self.warmup_data, what="warm-up data", option="--warmup-data")
            elif self.info.get("warmup_rows"):
                try:
                    rows = rows_to_frame({"rows": self.info["warmup_rows"]}, plain=model.framework == "onnx")
                except PayloadError as exc:
                    raise ModelLoadError(f"serving info: warmup_rows: {exc}") from None
            else:
                rows = synthetic_rows(model)
            if self.runtime == "onnx" and model.framework != "onnx":
                model = self._to_onnx(model, rows)
            service = ModelService(model, self.info, max_columns=self.state.max_columns)
            self.state.limiter = thread_limiter(self.prediction_threads)
            service.warm_up(rows)
            if self.prediction_log is not None:
                signature = model.signature
                service.prediction_log = PredictionLog(
                    self.prediction_log,
                    service.info["model"],
                    service.metrics,
                    classes=service.classes,
                    integer_columns=[c.name for c in signature.columns if c.kind == "integer"]
                    if signature
                    else (),
                ).start()
            self.state.service = service
        except MlciError as exc:
            self.state.error = exc
        except Exception as exc:  # anything else from a model is still a model that cannot serve
            framework = str(self.info.get("framework") or "")  # recorded by mlci image build
            self.state.error = ModelLoadError(
                f"model {self.model_path}: {type(exc).__name__}: {exc}",
                hint=f"this {framework} model needs {_FRAMEWORK_NAMES.get(framework, framework)} "
                "installed where it is served, at the version that trained it"
                if framework and framework != "sklearn"
                else None,
            )
        finally:
            self._loaded.set()

    def _to_onnx(self, model: Any, rows: Any) -> Any:
        """Convert ``model`` to ONNX, checked on the warm-up rows, and load it with onnxruntime.

        The session holds the graph in memory, so the converted file does not outlive the load.
        """
        import tempfile

        with tempfile.TemporaryDirectory(prefix="mlci-onnx-") as scratch:
            converted, conversion = convert_to_onnx(model, rows, Path(scratch) / "model.onnx")
        self.conversion = conversion
        return converted

    def wait_ready(self, timeout: float = 120.0) -> ModelService:
        if not self._loaded.wait(timeout):
            raise ServiceError(f"model {self.model_path} did not load within {timeout:.0f} s")
        if self.state.error is not None:
            raise self.state.error
        assert self.state.service is not None
        return self.state.service

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.stop()
            self._httpd = None
        service = self.state.service
        if service is not None and service.prediction_log is not None:
            service.prediction_log.close()  # what was queued is written, the open file renamed
            service.prediction_log = None

    def __enter__(self) -> ModelServer:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_model(
    model: str | os.PathLike[str],
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    log: Callable[[str], None] | None = None,
    load_timeout: float = 600.0,
    stop_event: threading.Event | None = None,
    **options: Any,
) -> ServeResult:
    """Serve ``model`` in the foreground until SIGTERM/SIGINT (or ``stop_event``) stops it.

    Raises the load or warm-up error when the model cannot serve, so a broken model makes the
    process (and the container) exit instead of answering 503 forever.
    """
    say = log or (lambda text: print(text, file=sys.stderr, flush=True))
    server = ModelServer(model, host, port, **options).start()
    stop = stop_event or threading.Event()
    stopped_by = ["stop event"]
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):

            def handler(received: int, _frame: Any) -> None:
                stopped_by[0] = signal.Signals(received).name
                stop.set()

            previous[signum] = signal.signal(signum, handler)
    try:
        url = server.url
        say(f"mlci serve: loading {model}; listening on {url}")
        service = server.wait_ready(timeout=load_timeout)
        say(f"mlci serve: model {service.info['model']['name']} ({service.info['model']['digest']}) is ready")
        stop.wait()
        return ServeResult(
            url=url,
            model=service.info["model"],
            requests=service.metrics.total_requests(),
            stopped_by=stopped_by[0],
        )
    finally:
        server.stop()
        for number, old in previous.items():
            signal.signal(number, old)
