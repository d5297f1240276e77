"""Progressive delivery with Flagger: a ``MetricTemplate`` for the canary's error rate.

.. code-block:: yaml

    deploy:
      flagger:
        prometheus: http://prometheus-operated.monitoring:9090

Flagger judges one number per metric against a threshold (``thresholdRange`` in the user's
``Canary``), not canary against stable with intervals as ``mlci deploy analyze`` does: where
that model fits is the canary's share of prediction requests answered 5xx, which the
MetricTemplate below computes from the serving runtime's own counter. Flagger fills in
``{{ namespace }}``, ``{{ target }}`` and ``{{ interval }}``; the canary's pods are the target
Deployment's (``<target>-<hash>-<hash>``), which the pod regular expression (from Flagger's
documentation) tells apart from ``<target>-primary-...``. With no prediction traffic the query
has no value, which Flagger counts as a failed check, never a pass; with traffic and no 5xx it is 0.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from mlci_lib.deploy import serving_metrics as names
from mlci_lib.errors import ConfigError

API_VERSION = "flagger.app/v1beta1"
_KEYS = ("prometheus",)
#: The canary's pods, as Flagger's documentation selects them (the primary's are <target>-primary-...).
CANARY_PODS = "{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"


@dataclasses.dataclass(frozen=True)
class FlaggerConfig:
    prometheus: str


def parse_flagger(raw: Any, where: str) -> FlaggerConfig | None:
    """``deploy.flagger``: None when absent or false; ConfigError naming the key otherwise."""
    from mlci_lib.options import check_keys

    if raw is None or raw is False:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping with prometheus: URL")
    check_keys(raw, _KEYS, where=where)
    prometheus = raw.get("prometheus")
    if not isinstance(prometheus, str) or not re.match(r"^https?://[^\s/]+", prometheus):
        raise ConfigError(
            f"{where}.prometheus must be the cluster's Prometheus address",
            hint="e.g. prometheus: http://prometheus-operated.monitoring:9090",
        )
    return FlaggerConfig(prometheus)


def template_name(name: str) -> str:
    return f"{name}-error-rate"


def error_rate_query() -> str:
    """The canary's 5xx share of prediction requests over Flagger's interval (0 to 1)."""
    matchers = (
        f'namespace="{{{{ namespace }}}}",pod=~"{CANARY_PODS}",'
        f'{names.ENDPOINT_LABEL}=~"{names.PREDICT_ENDPOINTS}"'
    )
    errors = f'{names.REQUESTS}{{{matchers},{names.CODE_LABEL}=~"5.."}}'
    total = f"{names.REQUESTS}{{{matchers}}}"
    # No 5xx series exists until the first 5xx (counters appear on first use): "or on() vector(0)"
    # makes that a 0, not "no values", which Flagger would count as a failed check of a healthy
    # canary. "> 0" keeps an idle canary (0/0, NaN, which no threshold refuses) without a value.
    interval = "[{{ interval }}]"
    return f"(sum(rate({errors}{interval})) or on() vector(0)) / (sum(rate({total}{interval})) > 0)"


def metric_template(config: Any, labels: Mapping[str, str]) -> dict[str, Any]:
    flagger: FlaggerConfig = config.flagger
    return {
        "apiVersion": API_VERSION,
        "kind": "MetricTemplate",
        "metadata": {
            "name": template_name(config.name),
            "namespace": config.namespace,
            "labels": dict(labels),
        },
        "spec": {
            "provider": {"type": "prometheus", "address": flagger.prometheus},
            "query": error_rate_query(),
        },
    }
