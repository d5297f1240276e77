"""Every route the serving runtime answers, and the OpenAPI 3.1 document built from them.

One table, :data:`ROUTES`: the document served at ``GET /openapi.json`` is made from it, and so
are the endpoint labels of the request metrics (:func:`route_template`), so a route cannot be
answered without being documented or counted under its own name. The protocol's bodies come from
:data:`mlci_lib.serving.oip.SCHEMAS`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from mlci_lib.serving import oip


@dataclasses.dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # a template: {model_name} and {model_version} stand for one path segment
    summary: str
    #: Status code to (description, schema name in the components, or a media type for non-JSON).
    responses: Mapping[str, tuple[str, str]]
    #: The JSON schema name of the request body, if there is one.
    request: str | None = None
    tag: str = "mlci"
    #: Besides JSON, the binary form of the protocol's tensor data extension.
    binary: bool = False


_ERROR = "Error"
_OIP = "Open Inference Protocol"
_INFER_RESPONSES = {
    "200": ("Output tensors; JSON, or JSON then binary data when asked", "InferenceResponse"),
    "400": ("A malformed request or tensors that do not fit the model's inputs", _ERROR),
    "404": ("Unknown model or version", _ERROR),
    "413": ("Body over the size limit", _ERROR),
    "422": ("The model refused the rows", _ERROR),
    "503": ("The model is not loaded yet", _ERROR),
}

ROUTES: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/predict",
        "Predict on rows: predictions, and class probabilities for classifiers",
        {
            "200": ("Predictions", "PredictResponse"),
            "400": ("A malformed body or rows that do not match the signature", _ERROR),
            "413": ("Body over the size limit", _ERROR),
            "422": ("The model refused the rows", _ERROR),
            "503": ("The model is not loaded yet", "Health"),
        },
        request="PredictRequest",
    ),
    Endpoint(
        "GET",
        "/health",
        "Ready once the model has loaded and answered a warm-up request",
        {"200": ("Ready", "Health"), "503": ("Loading, or failed to load", "Health")},
    ),
    Endpoint(
        "GET",
        "/version",
        "The served model (name, version, URI, digest) and the build",
        {"200": ("Version", "Version"), "503": ("The model is not loaded yet", "Health")},
    ),
    Endpoint(
        "GET",
        "/metrics",
        "Prometheus metrics",
        {"200": ("Metrics in the Prometheus text format", "text/plain")},
    ),
    Endpoint(
        "GET",
        "/openapi.json",
        "This document",
        {"200": ("The OpenAPI document of the runtime", "application/json")},
    ),
    Endpoint("GET", "/v2", "Server metadata", {"200": ("Server metadata", "ServerMetadata")}, tag=_OIP),
    Endpoint("GET", "/v2/health/live", "Liveness", {"200": ("Live", "Live")}, tag=_OIP),
    Endpoint(
        "GET",
        "/v2/health/ready",
        "Readiness",
        {"200": ("Ready", "Ready"), "400": ("Not ready", "Ready")},
        tag=_OIP,
    ),
)


def _model_routes(prefix: str) -> tuple[Endpoint, ...]:
    missing = ("Unknown model or version", _ERROR)
    return (
        Endpoint(
            "GET",
            prefix,
            "Model metadata: input and output tensors",
            {"200": ("Model metadata", "ModelMetadata"), "404": missing, "503": ("Loading", _ERROR)},
            tag=_OIP,
        ),
        Endpoint(
            "GET",
            prefix + "/ready",
            "Model readiness",
            {"200": ("Ready", "ModelReady"), "400": ("Not ready", "ModelReady"), "404": missing},
            tag=_OIP,
        ),
        Endpoint(
            "POST",
            prefix + "/infer",
            "Inference on typed tensors",
            _INFER_RESPONSES,
            request="InferenceRequest",
            tag=_OIP,
            binary=True,
        ),
    )


ROUTES += _model_routes("/v2/models/{model_name}")
ROUTES += _model_routes("/v2/models/{model_name}/versions/{model_version}")


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)))


_PATTERNS = tuple((_pattern(path), path) for path in dict.fromkeys(e.path for e in ROUTES))


def route_template(path: str) -> str | None:
    """The route ``path`` belongs to (``/v2/models/{model_name}/infer``), or None for any other path."""
    for pattern, template in _PATTERNS:
        if pattern.fullmatch(path):
            return template
    return None


# -- the document --------------------------------------------------------------------------------

_ROWS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Cell"}},
}

_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Cell": {"type": ["number", "string", "boolean", "null"], "description": "null marks a missing value"},
    "PredictRequest": {
        "description": "Rows as records, columns or MLflow's split form; extra columns are ignored.",
        "oneOf": [
            _ROWS,
            {"type": "object", "required": ["rows"], "properties": {"rows": _ROWS}},
            {"type": "object", "required": ["dataframe_records"], "properties": {"dataframe_records": _ROWS}},
            {
                "type": "object",
                "required": ["columns"],
                "properties": {
                    "columns": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"$ref": "#/components/schemas/Cell"},
                        },
                    }
                },
            },
            {
                "type": "object",
                "required": ["dataframe_split"],
                "properties": {
                    "dataframe_split": {
                        "type": "object",
                        "required": ["columns", "data"],
                        "properties": {
                            "columns": {"type": "array", "items": {"type": "string"}},
                            "data": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "array", "items": {"$ref": "#/components/schemas/Cell"}},
                            },
                        },
                    }
                },
            },
        ],
    },
    "PredictResponse": {
        "type": "object",
        "required": ["predictions"],
        "properties": {
            "predictions": {"type": "array", "items": {}},
            "probabilities": {
                "type": "array",
                "description": "Per row, one probability per class, in the order of classes",
                "items": {"type": "array", "items": {"type": ["number", "null"]}},
            },
            "classes": {"type": "array", "items": {}},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "loading", "failed"]},
            "error": {"type": "string"},
        },
    },
    "Version": {
        "type": "object",
        "required": ["model", "mlci_version"],
        "properties": {
            "model": {
                "type": "object",
                "required": ["name", "digest"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": ["string", "integer", "null"]},
                    "uri": {"type": ["string", "null"]},
                    "digest": {"type": "string"},
                    "format": {"type": "string"},
                    "task": {"type": "string"},
                    "runtime": {"type": "string", "enum": ["native", "onnx"]},
                    "framework": {"type": "string"},
                    "pickle": {"type": "boolean", "description": "The model file runs code when loaded"},
                },
            },
            "git_commit": {"type": ["string", "null"]},
            "verdict_digest": {"type": ["string", "null"]},
            "mlci_version": {"type": "string"},
        },
    },
    "Live": {"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}},
    "Ready": {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}},
}

_BINARY = {
    "application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
}
_PATH_PARAMETERS = {
    name: {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
    for name in ("model_name", "model_version")
}


def _content(schema: str, binary: bool) -> dict[str, Any]:
    if "/" in schema:  # a media type, not a JSON schema
        return {schema: {"schema": {"type": "string"} if schema.startswith("text/") else {"type": "object"}}}
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return {**content, **_BINARY} if binary else content


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": _operation_id(endpoint),
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
    }
    names = re.findall(r"\{([a-z_]+)\}", endpoint.path)
    if names:
        operation["parameters"] = [_PATH_PARAMETERS[name] for name in names]
    if endpoint.binary:
        operation["parameters"] = [
            *operation.get("parameters", []),
            {
                "name": oip.HEADER_LENGTH,
                "in": "header",
                "required": False,
                "description": "Length of the JSON part when binary tensor data follows it",
                "schema": {"type": "integer", "minimum": 0},
            },
        ]
    if endpoint.request is not None:
        operation["requestBody"] = {"required": True, "content": _content(endpoint.request, endpoint.binary)}
    operation["responses"] = {
        status: {
            "description": description,
            "content": _content(schema, endpoint.binary and status == "200"),
        }
        for status, (description, schema) in endpoint.responses.items()
    }
    return operation


def _operation_id(endpoint: Endpoint) -> str:
    words = re.sub(r"[{}]", "", endpoint.path).strip("/").replace(".", "_").replace("/", "_") or "root"
    return f"{endpoint.method.lower()}_{words}"


@cache
def _document() -> dict[str, Any]:
    from mlci_lib import __version__

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ROUTES:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mlci serving runtime",
            "version": __version__,
            "description": "Predictions on rows (/predict) and the Open Inference Protocol (v2) on tensors.",
        },
        "paths": paths,
        "components": {"schemas": {**_SCHEMAS, **oip.SCHEMAS}},
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the serving runtime's whole API (a fresh copy)."""
    import copy

    return copy.deepcopy(_document())
