"""The real components the suite relies on are up and answer as expected.

When one of these fails, the tests that use the component fail too; this file says which piece
of the set-up is at fault.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request

import pytest

from tests.helpers.components import PrometheusServer


@pytest.mark.docker
def test_docker_engine_runs_the_offline_base_image(python_base_image: str) -> None:
    done = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--read-only",
            "--user",
            "10001",
            python_base_image,
            "python3",
            "-c",
            "print(6 * 7)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


@pytest.mark.docker
def test_image_registry_answers_the_v2_api(image_registry: str) -> None:
    with urllib.request.urlopen(f"http://{image_registry}/v2/_catalog", timeout=5) as response:
        assert "repositories" in json.load(response)


@pytest.mark.mlflow
def test_mlflow_server_answers(mlflow_server: str) -> None:
    url = f"{mlflow_server}/api/2.0/mlflow/experiments/search?max_results=1"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert "experiments" in json.load(response)


@pytest.mark.slow
def test_prometheus_reloads_a_test_scrape_config(prometheus_server: PrometheusServer) -> None:
    # Prometheus scrapes itself under a job of this test's: the reload took the new config.
    target = prometheus_server.url.removeprefix("http://")
    prometheus_server.scrape({"components-self": [target]})
    prometheus_server.wait_up("components-self", 1)
    query = urllib.parse.urlencode({"query": 'up{job="components-self"}'})
    with urllib.request.urlopen(f"{prometheus_server.url}/api/v1/query?{query}", timeout=5) as response:
        result = json.load(response)["data"]["result"]
    assert [sample["value"][1] for sample in result] == ["1"]
