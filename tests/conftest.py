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
        if name.startswith(("GITHUB_", "MLCI_")) or name in (
            "MLFLOW_TRACKING_URI",
            "MLFLOW_REGISTRY_URI",
            "RUNNER_TEMP",
        ):
            monkeypatch.delenv(name, raising=False)


#: Markers of tests that start a real component: each is slow by nature (an engine, a server, a
#: workflow run or a JVM), so the fast tier, ``scripts/test -m "not slow"``, leaves them out too.
_COMPONENT_MARKERS = ("docker", "mlflow", "workflow", "spark")


#: Session fixtures that start a JVM: tests using them run in one worker, so a parallel run starts
#: each JVM once (a Spark session holds 2 GB and takes half a minute to start on two cores).
_JVM_FIXTURES = ("spark", "spark_connect")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if not item.get_closest_marker("slow") and any(
            item.get_closest_marker(m) for m in _COMPONENT_MARKERS
        ):
            item.add_marker(pytest.mark.slow)
        # Under scripts/test's `--dist loadgroup`, a module's tests stay in one worker (its module
        # fixtures are built once), except that every test of a JVM runs in the same worker.
        fixtures = getattr(item, "fixturenames", ())
        group = "jvm" if any(name in fixtures for name in _JVM_FIXTURES) else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
