from __future__ import annotations

import os

import pytest

# Session fixtures that start real components (Docker engine, image registry, MLflow server,
# workflow runner) live in tests/helpers/components.py; importing them here shares them.
from tests.helpers.components import (  # noqa: F401
    act_binary,
    alertmanager_server,
    docker_engine,
    image_registry,
    mlflow_server,
    prometheus_server,
    python_base_image,
    spark,
    spark_connect,
)


@pytest.fixture(autouse=True)
def _clean_ci_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests must not see the CI variables of the run that executes them."""
    for name in list(os.environ):
        if name.startswith(("GITHUB_", "MLCI_")) or name in ("MLFLOW_TRACKING_URI", "RUNNER_TEMP"):
            monkeypatch.delenv(name, raising=False)


#: Markers of tests that start a real component: each is slow by nature (an engine, a server, a
#: workflow run or a JVM), so the fast tier, ``scripts/test -m "not slow"``, leaves them out too.
_COMPONENT_MARKERS = ("docker", "mlflow", "workflow", "spark")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not item.get_closest_marker("slow") and any(
            item.get_closest_marker(m) for m in _COMPONENT_MARKERS
        ):
            item.add_marker(pytest.mark.slow)
