"""The Flagger MetricTemplate's query, run as Flagger runs it, on a real Prometheus scraping `mlci serve`.

Flagger fills in ``{{ namespace }}``, ``{{ target }}`` and ``{{ interval }}`` and reads one value:
here two serving runtimes are scraped with the labels Kubernetes service discovery gives a
Flagger canary's pod (``churn-<hash>-<hash>``) and its primary's (``churn-primary-<hash>-<hash>``).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlci_lib.deploy import make_release, parse_deploy_config
from mlci_lib.deploy.manifests import manifests
from mlci_lib.models import save_model
from mlci_lib.serving.server import ModelServer
from tests.helpers.components import PrometheusServer, wait_until
from tests.helpers.load import send_load

pytestmark = pytest.mark.slow

INTERVAL = "10s"


def _query(prometheus: PrometheusServer, expression: str) -> list[dict]:
    query = urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(f"{prometheus.url}/api/v1/query?{query}", timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_the_error_rate_query_reads_the_canary_pods_alone_and_never_passes_without_traffic(
    prometheus_server: PrometheusServer, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"tenure": rng.integers(0, 72, 200), "charges": rng.normal(70, 20, 200)})
    model = LogisticRegression().fit(data, data.tenure < 12)
    folder = save_model(model, tmp_path / "model", sample_input=data.head(), name="churn")
    config = parse_deploy_config(
        {"namespace": "ml", "flagger": {"prometheus": prometheus_server.url}}, default_name="churn"
    )
    release = make_release(
        image="r.example/churn@sha256:" + "a" * 64,
        model_name="churn",
        model_version="1",
        model_digest=None,
        verdict_digest=None,
        user="10001:10001",
    )
    template = manifests(config, release)["metrictemplate.yaml"]
    namespace = f"flagger-{uuid.uuid4().hex[:8]}"  # series of earlier tests stay in the database
    query = (
        template["spec"]["query"]
        .replace("{{ namespace }}", namespace)
        .replace("{{ target }}", "churn")
        .replace("{{ interval }}", INTERVAL)
    )
    rows = [{"tenure": int(t), "charges": float(c)} for t, c in zip(data.tenure, data.charges, strict=True)]
    with ModelServer(folder) as canary, ModelServer(folder) as primary:
        canary.wait_ready(60)
        primary.wait_ready(60)
        pods = {"canary": "churn-7d9f8b6c4-x2x9k", "primary": "churn-primary-5b6c7d8e9-abcde"}
        prometheus_server.configure(
            [
                {
                    "job_name": f"{namespace}-{side}",
                    "static_configs": [
                        {
                            "targets": [server.url.removeprefix("http://")],
                            "labels": {"namespace": namespace, "pod": pods[side]},
                        }
                    ],
                }
                for side, server in (("canary", canary), ("primary", primary))
            ]
        )
        # Traffic on the primary only: the canary has none, so no value (Flagger: a failed check).
        assert send_load(primary.url, lambda i: {"rows": rows[i % 200 : i % 200 + 1]}, requests=60) == {
            200: 60
        }
        wait_until(
            lambda: bool(
                _query(prometheus_server, f'mlci_requests_total{{namespace="{namespace}",code="200"}}')
            ),
            30,
            "Prometheus scraping the primary",
        )
        time.sleep(2.5)
        assert _query(prometheus_server, query) == []
        # rate() counts from a series' first sample: the canary's counter must exist before the load.
        send_load(canary.url, lambda i: {"rows": rows[:1]}, requests=1, threads=1)
        seen = f'mlci_requests_total{{namespace="{namespace}",pod="{pods["canary"]}",endpoint="/predict"}}'
        wait_until(
            lambda: bool(_query(prometheus_server, seen)), 30, "Prometheus seeing the canary's traffic"
        )
        # The canary serves, some requests refused with 400 (a client's error, not the canary's).
        bad = {"rows": [{"tenure": "n/a", "charges": 1.0}]}
        got = send_load(
            canary.url, lambda i: bad if i % 5 == 0 else {"rows": rows[i % 200 : i % 200 + 1]}, requests=100
        )
        assert got == {200: 80, 400: 20}
        wait_until(
            lambda: bool(_query(prometheus_server, query)), 30, "the canary's error rate to have a value"
        )
        [value] = _query(prometheus_server, query)
        assert float(value["value"][1]) == 0.0  # healthy: 0, not "no values"
        # Once the canary is idle over the whole interval, the value is gone again (0/0 never passes).
        wait_until(lambda: _query(prometheus_server, query) == [], 30, "the idle canary's value to vanish")
