"""The whole release path in-process: the example project against a real MLflow server, Docker engine
and image registry. The act runs of the starter workflows are in test_e2e_workflows.py."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

from mlci_lib.pipeline import run_pipeline
from tests.helpers.components import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.mlflow]


def registry_tags(registry: str, name: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/{name}/tags/list", timeout=10) as answer:
            return sorted(json.load(answer).get("tags") or [])
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return []
        raise


def copy_example(target: Path) -> Path:
    shutil.copytree(
        REPO_ROOT / "examples", target, ignore=shutil.ignore_patterns("model", ".mlci", "predictions.csv")
    )
    return target / "mlci.yaml"


def test_release_then_worse_release(
    tmp_path: Path, mlflow_server: str, image_registry: str, python_base_image: str
) -> None:
    from mlflow.tracking import MlflowClient

    config = copy_example(tmp_path / "example")
    repository = f"{image_registry}/e2e-inproc/loan-approval"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLCI_IMAGE_REPOSITORY": repository,
        "MLCI_BASE_IMAGE": python_base_image,
        "MLCI_PYTHON_VERSION": "3.11",
    }
    lines: list[str] = []
    first = run_pipeline(config, environ=env, progress=lines.append)
    assert first.passed, first.text()
    assert [r.status for r in first.stages] == (
        ["passed"] * 3
        + ["skipped"]
        + ["passed"] * 5
        + ["skipped", "passed", "skipped"]  # no champion; no deploy or batch-predict stage
    ), first.text()
    assert any(line.startswith("▶ image-smoke") for line in lines)

    model, image = first.model or {}, first.image or {}
    client = MlflowClient(tracking_uri=mlflow_server)
    champion = client.get_model_version_by_alias("loan-approval", "champion")
    assert str(champion.version) == model["version"]
    assert champion.tags["mlci.image.digest"] == image["digest"]
    assert champion.tags["mlci.data.fingerprint"] == first.data_fingerprint
    # mlci model push, given the same files in another order, fingerprints them the same way.
    from mlci_lib.cli.model_cmd import data_fingerprint_of
    from mlci_lib.pipeline.config import load_config

    data_paths = [str(p) for p in load_config(config).data_paths]
    assert len(data_paths) > 1
    push_args = argparse.Namespace(data=data_paths[::-1], data_fingerprint=None)
    assert data_fingerprint_of(push_args) == first.data_fingerprint
    assert image["digest"].startswith("sha256:") and image["reference"].endswith(image["digest"])
    tags_after_first = registry_tags(image_registry, "e2e-inproc/loan-approval")
    assert tags_after_first, "nothing was pushed"
    written = json.loads((tmp_path / "example" / ".mlci" / "pipeline-verdict.json").read_text())
    assert written["passed"] is True and written["image"]["digest"] == image["digest"]
    assert (tmp_path / "example" / ".mlci" / "latency.json").is_file()

    worse = run_pipeline(config, environ={**env, "EXAMPLE_WORSE_MODEL": "1"})
    assert not worse.passed and worse.failed_stage == "gate", worse.text()
    assert worse.stage("baseline").status == "passed"
    for name in ("model-push", "image-build", "image-push", "promote"):
        assert worse.stage(name) is None, f"{name} ran after a failed gate"
    versions = client.search_model_versions("name='loan-approval'")
    assert [str(v.version) for v in versions] == [model["version"]]
    assert registry_tags(image_registry, "e2e-inproc/loan-approval") == tags_after_first
