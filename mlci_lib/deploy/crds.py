"""Offline validation of custom resources against their operators' own CRD schemas.

kubernetes-validate knows the built-in kinds only. The InferenceService (KServe), the
ServiceMonitor and PrometheusRule (Prometheus Operator), the MetricTemplate (Flagger) and the
Rollout and AnalysisTemplate (Argo Rollouts) are checked here against the ``openAPIV3Schema``
of the CRD their operator publishes, vendored in
``mlci_lib/schemas/crds/`` (source versions in its README). As ``kubectl apply`` does by default
(``--validate=strict``), a field the schema does not list is an error, except below
``x-kubernetes-preserve-unknown-fields``. CEL rules (``x-kubernetes-validations``) are not
evaluated: that needs an API server.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from mlci_lib.errors import InputError

#: (apiVersion, kind) -> the vendored schema file.
SCHEMA_FILES: dict[tuple[str, str], str] = {
    ("serving.kserve.io/v1beta1", "InferenceService"): "serving.kserve.io_v1beta1_inferenceservice.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_v1_servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_v1_prometheusrule.json",
    ("flagger.app/v1beta1", "MetricTemplate"): "flagger.app_v1beta1_metrictemplate.json",
    ("argoproj.io/v1alpha1", "Rollout"): "argoproj.io_v1alpha1_rollout.json",
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): "argoproj.io_v1alpha1_analysistemplate.json",
}


def _strict(node: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever an object lists its properties."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    # "properties" maps names to schemas: its keys are field names, not keywords (and each
    # schema is walked once: walking it twice a level would double the work at every depth).
    out = {key: _strict(value) for key, value in node.items() if key != "properties"}
    if "properties" in node:
        out["properties"] = {name: _strict(value) for name, value in node["properties"].items()}
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


@functools.cache
def _validator(api_version: str, kind: str) -> Any:
    import jsonschema

    name = SCHEMA_FILES[(api_version, kind)]
    folder = resources.files("mlci_lib").joinpath("schemas").joinpath("crds")
    text = folder.joinpath(name).read_text(encoding="utf-8")
    schema = _strict(json.loads(text)["openAPIV3Schema"])
    # OpenAPI v3's schema objects are JSON Schema draft 4 in what validation uses.
    return jsonschema.Draft4Validator(schema)


def has_schema(body: dict[str, Any]) -> bool:
    return (body.get("apiVersion"), body.get("kind")) in SCHEMA_FILES


def validate_custom(body: dict[str, Any], *, where: str) -> None:
    """Validate a custom resource against its CRD schema; InputError names the field and why."""
    import jsonschema

    key = (str(body.get("apiVersion")), str(body.get("kind")))
    error = jsonschema.exceptions.best_match(_validator(*key).iter_errors(body))
    if error is None:
        return
    path = ".".join(str(part) for part in error.absolute_path)
    message = " ".join(str(error.message).split())[:300]
    raise InputError(
        f"{where}: {key[1]} does not validate against its {key[0]} CRD schema"
        f"{' at ' + path if path else ''}: {message}"
    )
