"""The Open Inference Protocol (v2, the REST API of KServe and Triton) over :class:`ModelService`.

So the serving image runs as a KServe custom predictor, or behind a Triton-style client, with no
adapter. What the runtime answers:

- ``GET /v2``: server metadata (name, version, extensions);
- ``GET /v2/models/{name}[/versions/{version}]``: the model's input and output tensors, from its
  signature;
- ``GET /v2/models/{name}[/versions/{version}]/ready``: 200 when the model is ready, 400 while not;
- ``POST /v2/models/{name}[/versions/{version}]/infer``: typed tensors in, ``predict`` (and, for
  classifiers, ``predict_proba`` and ``classes``) out.

A model's inputs are one tensor per signature column (``[rows]`` or ``[rows, 1]``), or a single
2-D tensor ``[rows, columns]`` whose columns follow the signature's order. The tensors become the
column form of ``POST /predict`` and go through the same :meth:`ModelService.predict_payload`:
the same width limit, the same signature coercion, the same predictions, to the bit.

Tensor data comes as JSON or, with Triton's ``binary_tensor_data`` extension (what
``tritonclient`` sends by default), as raw little-endian bytes after the JSON header, whose length
the ``Inference-Header-Content-Length`` header gives. Outputs are JSON unless the request asks for
binary (``binary_data_output``, or ``binary_data`` on a requested output). Compressed bodies are
refused: a few kilobytes of gzip can expand past every limit the transport checks.
"""

from __future__ import annotations

import dataclasses
import math
import re
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import unquote

from mlci_lib.serving.http_server import Request, Response
from mlci_lib.serving.payload import PayloadError, parse_json


class Service(Protocol):
    """What the protocol needs of :class:`~mlci_lib.serving.server.ModelService` (named here, not
    imported: the server imports this module)."""

    model: Any
    info: dict[str, Any]
    classifier: bool
    classes: list[Any] | None
    max_columns: int

    def predict_payload(self, payload: Any, request_id: str | None = None) -> tuple[int, dict[str, Any]]: ...


#: The protocol's datatypes mlci reads and writes, with their little-endian NumPy dtype.
NUMPY_DTYPES: dict[str, str] = {
    "BOOL": "|b1",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
DATATYPES = (*NUMPY_DTYPES, "BYTES")
INTEGER_TYPES = frozenset(t for t in NUMPY_DTYPES if "INT" in t)
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
NUMERIC_TYPES = INTEGER_TYPES | FLOAT_TYPES
#: Extensions of the protocol this server implements (Triton's names).
EXTENSIONS = ("binary_tensor_data",)
#: Header that splits a request or response body into its JSON part and its binary part.
HEADER_LENGTH = "Inference-Header-Content-Length"

_ROUTE = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?(/ready|/infer)?")


class OipError(Exception):
    """A request the protocol refuses: ``status`` and a one-line message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """A tensor of the model's metadata, and the datatypes it accepts in a request."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    accepts: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclasses.dataclass(frozen=True)
class Route:
    """A ``/v2`` path: ``kind`` is "server", "model", "ready" or "infer"."""

    kind: str
    name: str = ""
    version: str | None = None


def match(path: str) -> Route | None:
    """The protocol route of ``path``, or None when it is not one (the health checks are not)."""
    if path == "/v2":
        return Route("server")
    found = _ROUTE.fullmatch(path)
    if found is None:
        return None
    name, version, action = found.groups()
    kind = {"/ready": "ready", "/infer": "infer"}.get(action or "", "model")
    return Route(kind, unquote(name), None if version is None else unquote(version))


def server_metadata() -> dict[str, Any]:
    from mlci_lib import __version__

    return {"name": "mlci", "version": __version__, "extensions": list(EXTENSIONS)}


def _column_tensor(name: str, kind: str, categories: Sequence[Any] | None) -> TensorSpec:
    if kind in ("integer", "float"):
        return TensorSpec(name, "INT64" if kind == "integer" else "FP64", (-1,), NUMERIC_TYPES)
    if kind == "boolean":
        return TensorSpec(name, "BOOL", (-1,), frozenset({"BOOL"}))
    if kind == "category" and categories:
        if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in categories):
            return TensorSpec(name, "FP64", (-1,), NUMERIC_TYPES)
        return TensorSpec(name, "BYTES", (-1,), frozenset({"BYTES"}))
    if kind in ("string", "datetime"):  # datetimes as ISO 8601 text, as in /predict
        return TensorSpec(name, "BYTES", (-1,), frozenset({"BYTES"}))
    # Categories of unknown values, or a kind from a newer mlci: the signature decides.
    return TensorSpec(name, "BYTES", (-1,), frozenset(DATATYPES))


def _label_datatype(labels: Sequence[Any] | None) -> str:
    if not labels:
        return "FP64"
    if all(isinstance(c, bool) for c in labels):
        return "BOOL"
    if all(isinstance(c, int) and not isinstance(c, bool) for c in labels):
        return "INT64"
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in labels):
        return "FP64"
    return "BYTES"


class OpenInference:
    """The protocol's endpoints for one loaded model; its tensors are worked out once."""

    def __init__(self, service: Service) -> None:
        self.service = service
        model = service.model
        meta = service.info["model"]
        self.name = str(meta["name"])
        self.version = None if meta.get("version") is None else str(meta["version"])
        self.platform = {"onnx": "onnxruntime_onnx"}.get(model.framework, model.framework)
        signature = model.signature
        if signature is not None:
            inputs = tuple(_column_tensor(c.name, c.kind, c.categories) for c in signature.columns)
            self.keys: list[Any] = [c.name for c in signature.columns]
        else:
            fitted = getattr(model.estimator, "feature_names_in_", None)
            names = [str(n) for n in fitted] if fitted is not None else []
            inputs = tuple(TensorSpec(n, "FP64", (-1,), NUMERIC_TYPES) for n in names)
            # Without names the frame's columns are positions, as for the warm-up rows.
            width = int(getattr(model.estimator, "n_features_in_", 0) or 0)
            self.keys = list(names) if names else list(range(width))
        self.inputs = inputs
        self.by_name = {spec.name: spec for spec in inputs}
        # The single 2-D tensor: accepted where every column takes its datatype.
        accepted = frozenset(DATATYPES)
        for spec in inputs:
            accepted &= spec.accepts
        if not inputs:
            accepted = NUMERIC_TYPES
        matrix_type = next((t for t in ("FP64", "BYTES", "BOOL") if t in accepted), None)
        width = len(self.keys) if self.keys else -1
        self.matrix = (
            TensorSpec("input", matrix_type, (-1, width), accepted) if matrix_type is not None else None
        )
        outputs = [TensorSpec("predict", _label_datatype(service.classes), (-1,), frozenset())]
        if service.classifier and service.classes is not None:
            count = len(service.classes)
            outputs.append(TensorSpec("predict_proba", "FP64", (-1, count), frozenset()))
            outputs.append(TensorSpec("classes", _label_datatype(service.classes), (count,), frozenset()))
        self.outputs = tuple(outputs)
        self.outputs_by_name = {spec.name: spec for spec in self.outputs}

    # -- metadata --------------------------------------------------------------------------

    def check_route(self, route: Route) -> None:
        if route.name != self.name:
            raise OipError(f"unknown model {route.name!r}: this server serves {self.name!r}", 404)
        if route.version is not None and route.version != self.version:
            served = f"version {self.version}" if self.version else "no numbered version"
            raise OipError(f"unknown version {route.version!r} of model {self.name!r}: it has {served}", 404)

    def model_metadata(self) -> dict[str, Any]:
        inputs = self.inputs or ((self.matrix,) if self.matrix is not None else ())
        body: dict[str, Any] = {"name": self.name}
        if self.version is not None:
            body["versions"] = [self.version]
        body["platform"] = self.platform
        body["inputs"] = [spec.to_dict() for spec in inputs]
        body["outputs"] = [spec.to_dict() for spec in self.outputs]
        return body

    # -- inference -------------------------------------------------------------------------

    def infer(self, request: Request) -> Response:
        """The answer to ``POST .../infer``: outputs, or ``{"error": ...}`` with its status."""
        try:
            parsed = decode_request(request.body, request.headers, self.service.max_columns)
            columns = self.columns(parsed.inputs)
        except OipError as exc:
            return Response.json(exc.status, {"error": str(exc)})
        from mlci_lib.serving.prediction_log import request_id_of

        # The same request id as /predict's (the client's X-Request-Id, else a new one), so the
        # protocol's traffic is in the prediction log too.
        status, answer = self.service.predict_payload(
            {"columns": columns}, request_id_of(request.headers.get("x-request-id"))
        )
        if status != 200:
            return Response.json(status, answer)
        try:
            return self.encode(parsed, answer)
        except OipError as exc:
            return Response.json(exc.status, {"error": str(exc)})

    def columns(self, tensors: Sequence[InputTensor]) -> dict[Any, list[Any]]:
        """The request's tensors as the column form of ``/predict``: key to a list of cells."""
        if len(tensors) == 1 and tensors[0].name not in self.by_name and len(tensors[0].shape) == 2:
            return self._matrix_columns(tensors[0])
        expected = ", ".join(self.by_name) or "one 2-D tensor"
        columns: dict[Any, list[Any]] = {}
        rows: int | None = None
        for tensor in tensors:
            spec = self.by_name.get(tensor.name)
            if spec is None:
                raise OipError(f"unknown input {tensor.name!r}: the model's inputs are {expected}")
            if tensor.name in columns:
                raise OipError(f"input {tensor.name!r} is given more than once")
            if tensor.datatype not in spec.accepts:
                raise OipError(
                    f"input {tensor.name!r} is {tensor.datatype}, the model takes {spec.datatype} "
                    f"for it (see GET /v2/models/{self.name})"
                )
            if len(tensor.shape) == 2 and tensor.shape[1] != 1:
                raise OipError(
                    f"input {tensor.name!r} has shape {list(tensor.shape)}: a column's tensor is "
                    "[rows] or [rows, 1]"
                )
            if rows is not None and tensor.shape[0] != rows:
                raise OipError(
                    f"input {tensor.name!r} has {tensor.shape[0]} rows, the inputs before it {rows}"
                )
            rows = tensor.shape[0]
            columns[tensor.name] = tensor.values
        missing = [name for name in self.by_name if name not in columns]
        if missing:
            raise OipError(f"missing input {missing[0]!r}: the model's inputs are {expected}")
        return columns

    def _matrix_columns(self, tensor: InputTensor) -> dict[Any, list[Any]]:
        spec = self.matrix
        if spec is None:
            raise OipError(
                f"input {tensor.name!r}: this model's columns differ in kind, so one 2-D tensor "
                f"cannot hold them; send one tensor per column ({', '.join(self.by_name)})"
            )
        width = tensor.shape[1]
        expected = len(self.keys)
        if expected and width != expected:
            raise OipError(
                f"input {tensor.name!r} has {width} columns, the model takes {expected} "
                f"({', '.join(map(str, self.keys))})"
            )
        if tensor.datatype not in spec.accepts:
            raise OipError(
                f"input {tensor.name!r} is {tensor.datatype}, a 2-D input of this model is {spec.datatype}"
            )
        keys = self.keys if expected else list(range(width))
        values = tensor.values
        return {key: values[i::width] for i, key in enumerate(keys)}

    def encode(self, parsed: InferRequestBody, answer: Mapping[str, Any]) -> Response:
        """The inference response: JSON, or JSON then raw bytes for outputs asked as binary."""
        data: dict[str, Any] = {"predict": answer["predictions"]}
        if "probabilities" in answer and "predict_proba" in self.outputs_by_name:
            data["predict_proba"] = answer["probabilities"]
            data["classes"] = answer["classes"]
        wanted = parsed.outputs if parsed.outputs is not None else [(n, None) for n in data]
        body: dict[str, Any] = {"model_name": self.name}
        if self.version is not None:
            body["model_version"] = self.version
        if parsed.id is not None:
            body["id"] = parsed.id
        outputs: list[dict[str, Any]] = []
        chunks: list[bytes] = []
        for name, binary in wanted:
            if name not in data:
                raise OipError(f"unknown output {name!r}: the model's outputs are {', '.join(data)}")
            spec = self.outputs_by_name[name]
            flat, shape = _flatten_output(data[name])
            output: dict[str, Any] = {"name": name, "datatype": spec.datatype, "shape": shape}
            as_binary = parsed.binary_output if binary is None else binary
            if as_binary:
                raw = _to_bytes(flat, spec.datatype)
                output["parameters"] = {"binary_data_size": len(raw)}
                chunks.append(raw)
            else:
                output["data"] = [str(v) for v in flat] if spec.datatype == "BYTES" else flat
            outputs.append(output)
        body["outputs"] = outputs
        if not chunks:
            return Response.json(200, body)
        head = Response.json(200, body).body
        return Response(
            200,
            head + b"".join(chunks),
            "application/octet-stream",
            ((HEADER_LENGTH, str(len(head))),),
        )


# -- decoding a request --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    #: The cells in row-major order, as Python values (text decoded, JSON null as None).
    values: list[Any]


@dataclasses.dataclass(frozen=True)
class InferRequestBody:
    inputs: tuple[InputTensor, ...]
    id: str | None
    #: Requested outputs and whether each is wanted as binary (None: the request's default).
    outputs: list[tuple[str, bool | None]] | None
    binary_output: bool


def decode_request(body: bytes, headers: Mapping[str, str], max_columns: int) -> InferRequestBody:
    """An inference request, checked: tensors of known datatypes whose data fills their shape."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise OipError(f"compressed request bodies (Content-Encoding: {encoding[:20]}) are not accepted")
    split = headers.get(HEADER_LENGTH.lower())
    if split is None:
        head, binary = body, b""
    else:
        if not split.isdigit() or int(split) > len(body):
            raise OipError(f"{HEADER_LENGTH} must be a byte count within the body's {len(body)} bytes")
        head, binary = body[: int(split)], body[int(split) :]
    try:
        payload = parse_json(head)
    except PayloadError as exc:
        raise OipError(str(exc), exc.status) from None
    if not isinstance(payload, dict):
        raise OipError('an inference request is a JSON object: {"inputs": [{"name", "shape", ...}]}')
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise OipError("the request's id must be a string")
    parameters = _parameters(payload.get("parameters"), "the request")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise OipError('the request needs "inputs": a non-empty list of tensors')
    if len(inputs) > max_columns:
        raise OipError(
            f"the request has {len(inputs)} inputs, more than the limit of {max_columns} columns: "
            "send only the model's inputs"
        )
    offset = 0
    tensors = []
    for index, item in enumerate(inputs):
        tensor, used = _input(item, index, binary, offset, max_columns)
        offset += used
        tensors.append(tensor)
    if offset != len(binary):
        raise OipError(
            f"the body has {len(binary) - offset} bytes after the tensors' binary data: "
            f"check {HEADER_LENGTH} and each input's binary_data_size"
        )
    return InferRequestBody(
        tuple(tensors),
        request_id,
        _requested_outputs(payload.get("outputs")),
        parameters.get("binary_data_output") is True,
    )


def _parameters(value: Any, where: str) -> dict[str, Any]:
    """A ``parameters`` object; its entries are hints this server may ignore, so it only checks the shape."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OipError(f"the parameters of {where} must be a JSON object")
    return value


def _requested_outputs(value: Any) -> list[tuple[str, bool | None]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise OipError('"outputs" must be a list of {"name": ...} objects')
    wanted: list[tuple[str, bool | None]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise OipError('each requested output is an object with a "name"')
        binary = _parameters(item.get("parameters"), f"output {item['name']!r}").get("binary_data")
        wanted.append((item["name"], binary if isinstance(binary, bool) else None))
    return wanted


def _input(item: Any, index: int, binary: bytes, offset: int, max_columns: int) -> tuple[InputTensor, int]:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise OipError(f'input {index + 1} must be an object with a "name", "shape", "datatype" and "data"')
    name = item["name"]
    datatype = item.get("datatype")
    if datatype not in DATATYPES:
        raise OipError(
            f"input {name!r}: datatype {str(datatype)[:20]!r} is not one this server reads "
            f"({', '.join(DATATYPES)})"
        )
    shape = item.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise OipError(f"input {name!r}: shape must be [rows] or [rows, columns] of whole numbers")
    if len(shape) == 2 and shape[1] > max_columns:
        raise OipError(f"input {name!r} has {shape[1]} columns, more than the limit of {max_columns}")
    count = math.prod(shape)
    if count == 0:
        raise OipError(f"input {name!r} is empty: send at least one row")
    parameters = _parameters(item.get("parameters"), f"input {name!r}")
    size = parameters.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0 or offset + size > len(binary):
            raise OipError(
                f"input {name!r}: binary_data_size {str(size)[:20]} does not fit the "
                f"{len(binary) - offset} bytes of binary data left (check {HEADER_LENGTH})"
            )
        values = _binary_values(name, datatype, binary[offset : offset + size], count)
        return InputTensor(name, datatype, tuple(shape), values), size
    if "data" not in item:
        raise OipError(f"input {name!r} has neither data nor binary_data_size")
    values = _json_values(name, datatype, item["data"], shape)
    return InputTensor(name, datatype, tuple(shape), values), 0


def _json_values(name: str, datatype: str, data: Any, shape: list[int]) -> list[Any]:
    """The cells of JSON tensor data, flat or nested as the shape says, each of ``datatype``'s kind."""
    if not isinstance(data, list):
        raise OipError(f"input {name!r}: data must be a list")
    flat: list[Any] = data
    if len(shape) == 2 and data and isinstance(data[0], list):
        if len(data) != shape[0] or any(not isinstance(row, list) or len(row) != shape[1] for row in data):
            raise OipError(f"input {name!r}: nested data must be {shape[0]} lists of {shape[1]} values")
        flat = [cell for row in data for cell in row]
    count = math.prod(shape)
    if len(flat) != count:
        raise OipError(f"input {name!r} has {len(flat)} values, its shape {shape} needs {count}")
    check = _JSON_CHECKS[datatype]
    for position, value in enumerate(flat):
        if value is not None and not check(value):
            raise OipError(
                f"input {name!r} is {datatype}, but value {position + 1} is {str(value)[:40]!r} "
                "(JSON null marks a missing value)"
            )
    if datatype in INTEGER_TYPES:
        info = _integer_range(datatype)
        for position, value in enumerate(flat):
            if value is not None and not info[0] <= value <= info[1]:
                raise OipError(f"input {name!r}: value {position + 1} ({value}) is beyond {datatype}")
    return flat


def _integer_range(datatype: str) -> tuple[int, int]:
    import numpy as np

    info = np.iinfo(NUMPY_DTYPES[datatype])
    return int(info.min), int(info.max)


_JSON_CHECKS: dict[str, Any] = {
    "BOOL": lambda v: isinstance(v, bool),
    "BYTES": lambda v: isinstance(v, str),
    **dict.fromkeys(INTEGER_TYPES, lambda v: type(v) is int),
    **dict.fromkeys(FLOAT_TYPES, lambda v: type(v) is int or type(v) is float),
}


def _binary_values(name: str, datatype: str, raw: bytes, count: int) -> list[Any]:
    if datatype == "BYTES":
        return _split_bytes(name, raw, count)
    import numpy as np

    dtype = np.dtype(NUMPY_DTYPES[datatype])
    if len(raw) != count * dtype.itemsize:
        raise OipError(
            f"input {name!r}: {len(raw)} bytes of binary data, its shape needs {count} values of "
            f"{dtype.itemsize} bytes ({count * dtype.itemsize})"
        )
    if datatype == "BOOL":
        array = np.frombuffer(raw, dtype=np.uint8)
        if (array > 1).any():
            raise OipError(f"input {name!r}: BOOL bytes must be 0 or 1")
        return array.astype(bool).tolist()  # type: ignore[no-any-return]
    array = np.frombuffer(raw, dtype=dtype)
    if datatype in FLOAT_TYPES and np.isinf(array).any():
        # /predict's JSON cannot carry infinity either; NaN stays, as a missing value.
        raise OipError(f"input {name!r}: value {int(np.isinf(array).argmax()) + 1} is infinite")
    return array.tolist()  # type: ignore[no-any-return]


def _split_bytes(name: str, raw: bytes, count: int) -> list[str]:
    """BYTES binary data: each element a 4-byte little-endian length, then its bytes (UTF-8 text)."""
    values: list[str] = []
    offset = 0
    while offset < len(raw):
        if len(values) == count:
            raise OipError(f"input {name!r}: more BYTES elements than its shape's {count}")
        if offset + 4 > len(raw):
            raise OipError(f"input {name!r}: BYTES data ends inside an element's length")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise OipError(f"input {name!r}: BYTES element {len(values) + 1} runs past the data")
        try:
            values.append(raw[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise OipError(f"input {name!r}: element {len(values) + 1} is not UTF-8 text") from None
        offset += length
    if len(values) != count:
        raise OipError(f"input {name!r} has {len(values)} values, its shape needs {count}")
    return values


# -- encoding a response -------------------------------------------------------------------------


def _flatten_output(values: list[Any]) -> tuple[list[Any], list[int]]:
    """Row-major cells and the shape of a list of rows (one level of nesting at most)."""
    if values and isinstance(values[0], list):
        width = len(values[0])
        return [cell for row in values for cell in row], [len(values), width]
    return list(values), [len(values)]


def _to_bytes(flat: list[Any], datatype: str) -> bytes:
    if datatype == "BYTES":
        encoded = [str(v).encode("utf-8") for v in flat]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    import numpy as np

    cells = [math.nan if v is None else v for v in flat] if datatype in FLOAT_TYPES else flat
    array = np.asarray(cells, dtype=NUMPY_DTYPES[datatype])
    if datatype not in FLOAT_TYPES and array.tolist() != cells:
        # NumPy would truncate 1.5 to 1 without a word: a label that does not fit is an error.
        raise OipError(f"the model gave outputs that are not {datatype}, as its metadata says", 500)
    return bytes(array.tobytes())


# -- answers before the model is ready -----------------------------------------------------------


def answer(protocol: OpenInference | None, route: Route, request: Request, loading: str) -> Response:
    """The response to a ``/v2`` protocol route; ``loading`` says why there is no model yet."""
    method = "POST" if route.kind == "infer" else "GET"
    if request.method != method:
        return Response.json(405, {"error": f"{request.method} {request.path} is not served; use {method}"})
    if route.kind == "server":
        return Response.json(200, server_metadata())
    if protocol is None:
        if route.kind == "ready":
            return Response.json(400, {"name": route.name, "ready": False, "error": loading})
        return Response.json(503, {"error": loading})
    try:
        protocol.check_route(route)
    except OipError as exc:
        return Response.json(exc.status, {"error": str(exc)})
    if route.kind == "ready":
        return Response.json(200, {"name": protocol.name, "ready": True})
    if route.kind == "model":
        return Response.json(200, protocol.model_metadata())
    return protocol.infer(request)


# -- the shapes above, as JSON Schemas for the OpenAPI document ----------------------------------

_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "description": "Hints; this server reads binary_data_size, binary_data_output and binary_data only.",
    "additionalProperties": True,
}
_TENSOR_DATA: dict[str, Any] = {
    "type": "array",
    "description": "Row-major cells, flat or nested by rows; null marks a missing value.",
    "items": {"type": ["number", "string", "boolean", "array", "null"]},
}
_SHAPE: dict[str, Any] = {"type": "array", "items": {"type": "integer"}}
_DATATYPE: dict[str, Any] = {"type": "string", "enum": list(DATATYPES)}

#: JSON Schemas of the protocol's bodies, under the names the document's components use.
SCHEMAS: dict[str, dict[str, Any]] = {
    "ServerMetadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "MetadataTensor": {
        "type": "object",
        "required": ["name", "datatype", "shape"],
        "properties": {"name": {"type": "string"}, "datatype": _DATATYPE, "shape": _SHAPE},
    },
    "ModelMetadata": {
        "type": "object",
        "required": ["name", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/MetadataTensor"}},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/MetadataTensor"}},
        },
    },
    "ModelReady": {
        "type": "object",
        "required": ["name", "ready"],
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}, "error": {"type": "string"}},
    },
    "RequestInput": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": _SHAPE,
            "datatype": _DATATYPE,
            "parameters": _PARAMETERS,
            "data": _TENSOR_DATA,
        },
    },
    "RequestOutput": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "parameters": _PARAMETERS},
    },
    "InferenceRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": _PARAMETERS,
            "inputs": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/components/schemas/RequestInput"},
            },
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/RequestOutput"}},
        },
    },
    "ResponseOutput": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": _SHAPE,
            "datatype": _DATATYPE,
            "parameters": _PARAMETERS,
            "data": _TENSOR_DATA,
        },
    },
    "InferenceResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": _PARAMETERS,
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/ResponseOutput"}},
        },
    },
}
