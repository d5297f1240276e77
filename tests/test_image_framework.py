"""Serving images of models that need more than scikit-learn, on a real Docker engine: a trusted
type, a pickle (only when the build allows it), LightGBM and XGBoost inside scikit-learn pipelines
through mlci run's build, smoke and push.

Each image is built once and every assertion about it reads the same build; all share the
dependency layers of the offline base image where their requirements agree.
"""

from __future__ import annotations

import operator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from mlci_lib.image import ImageBuildResult, build_image, smoke_test_image
from mlci_lib.image.engine import docker_client
from mlci_lib.models import save_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TRUSTED = ["_operator.neg"]


def _data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"tenure": rng.integers(0, 72, n).astype(float), "charges": rng.normal(70, 20, n).round(2)}
    )


def _labels(data: pd.DataFrame) -> np.ndarray:
    return np.asarray((data.tenure < 20) | (data.charges > 90), dtype=int)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("framework-images")


@pytest.fixture(scope="module")
def sample(workdir: Path) -> Path:
    path = workdir / "sample.csv"
    _data(40, seed=1).to_csv(path, index=False)
    return path


def _build(
    model: Path, python_base_image: str, image_registry: str, sample: Path, name: str, **more: object
) -> ImageBuildResult:
    return build_image(
        model,
        repository=f"{image_registry}/mlci-test/{name}",
        tags=["test"],
        base_image=python_base_image,
        python_version="3.11",
        sample_data=sample,
        **more,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def trusted_model(workdir: Path) -> Path:
    data = _data(200, seed=0)
    fitted = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(data, _labels(data))
    return save_model(fitted, workdir / "trusted-model", sample_input=data.head())


@pytest.fixture(scope="module")
def trusted_image(
    trusted_model: Path, python_base_image: str, image_registry: str, sample: Path
) -> ImageBuildResult:
    # libgomp1 is asked for although this model does not need it: the offline base has it, so
    # the build proves the install step is skipped when the base has the package (no network).
    return _build(
        trusted_model, python_base_image, image_registry, sample, "trusted", trusted_types=TRUSTED,
        system_packages=["libgomp1"],
    )  # fmt: skip


def test_a_model_that_needed_a_trusted_type_serves_in_its_image(
    trusted_image: ImageBuildResult, trusted_model: Path, sample: Path
) -> None:
    assert trusted_image.labels["io.mlci.model.trusted-types"] == "_operator.neg"
    assert trusted_image.labels["io.mlci.model.pickle"] == "false"
    assert trusted_image.system_packages == ("libgomp1",)
    smoke = smoke_test_image(trusted_image.image_id, trusted_model, sample, requests=5, trusted_types=TRUSTED)
    assert smoke.passed, smoke.message + "\n" + smoke.logs_tail
    assert smoke.version is not None and smoke.version["model"]["pickle"] is False


def test_the_trust_comes_from_the_image_not_from_defaults(trusted_image: ImageBuildResult) -> None:
    # Without the build's serving info, the image's own mlci refuses the type: the info file is
    # what carries the trust into the container.
    client = docker_client()
    container = client.containers.run(
        trusted_image.image_id,
        entrypoint=[
            "/opt/mlci/venv/bin/python",
            "-m",
            "mlci_lib",
            "serve",
            "/opt/mlci/bundle/model",
            "--port",
            "18080",
        ],
        network_mode="none",
        detach=True,
    )
    try:
        result = container.wait(timeout=120)
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert result["StatusCode"] == 2, logs
    assert "_operator.neg" in logs


@pytest.fixture(scope="module")
def pickle_model(workdir: Path) -> Path:
    data = _data(200, seed=0)
    path = workdir / "model.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(data, _labels(data)), path)
    return path


def test_a_pickle_model_becomes_an_image_only_when_the_build_allows_it_and_says_so(
    pickle_model: Path, python_base_image: str, image_registry: str, sample: Path
) -> None:
    from mlci_lib.errors import UnsafeModelError

    with pytest.raises(UnsafeModelError, match="allow-pickle"):
        _build(pickle_model, python_base_image, image_registry, sample, "pickled")
    built = _build(pickle_model, python_base_image, image_registry, sample, "pickled", allow_pickle=True)
    assert built.pickle is True and built.labels["io.mlci.model.pickle"] == "true"
    assert built.labels["io.mlci.model.framework"] == built.framework
    smoke = smoke_test_image(built.image_id, pickle_model, sample, requests=5, allow_pickle=True)
    assert smoke.passed, smoke.message + "\n" + smoke.logs_tail
    assert smoke.version is not None and smoke.version["model"]["pickle"] is True


def _framework_estimator(framework: str) -> object:
    if framework == "catboost":
        import catboost

        return catboost.CatBoostClassifier(iterations=20, depth=3, verbose=False, allow_writing_files=False)
    if framework == "lightgbm":
        import lightgbm

        return lightgbm.LGBMClassifier(n_estimators=20, verbose=-1)
    import xgboost

    return xgboost.XGBClassifier(n_estimators=20, max_depth=3)


@pytest.mark.parametrize("framework", ["lightgbm", "xgboost", "catboost"])
def test_mlci_run_takes_a_framework_pipeline_through_build_smoke_and_push(
    framework: str, tmp_path: Path, python_base_image: str, image_registry: str
) -> None:
    """No custom Dockerfile, no requirement, system package or trusted type given: only the model
    and the offline base image of this test machine."""
    import json
    import subprocess

    import yaml

    from mlci_lib.cli import main

    estimator = _framework_estimator(framework)
    data = _data(300, seed=0)
    fitted = make_pipeline(StandardScaler(), estimator).fit(data, _labels(data))
    save_model(fitted, tmp_path / "model", sample_input=data.head())
    _data(40, seed=1).to_csv(tmp_path / "sample.csv", index=False)
    config = {
        "version": 1,
        "model": {"name": f"churn-{framework}", "path": "model"},
        "stages": {
            "image-build": {
                "repository": f"{image_registry}/mlci-test/run-{framework}",
                "base-image": python_base_image,
                "python-version": "3.11",
            },
            "image-smoke": {"data": "sample.csv", "requests": 5},
            "image-push": {},
        },
    }
    (tmp_path / "mlci.yaml").write_text(yaml.safe_dump(config))
    for command in (
        ["init", "-q"],
        ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x"],
    ):
        subprocess.run(["git", *command], cwd=tmp_path, check=True)
    assert main(["run", "--config", str(tmp_path / "mlci.yaml")]) == 0
    verdict = json.loads((tmp_path / ".mlci" / "pipeline-verdict.json").read_text())
    assert verdict["passed"] is True
    statuses = {s["name"]: s["status"] for s in verdict["stages"] if s["status"] != "skipped"}
    assert statuses == {"image-build": "passed", "image-smoke": "passed", "image-push": "passed"}
    build = json.loads((tmp_path / ".mlci" / "image-build.json").read_text())
    assert any(r.startswith(f"{framework}==") for r in build["requirements"]), build["requirements"]
    # LightGBM and XGBoost load the system's OpenMP; CatBoost's wheel carries its own runtime.
    assert build["system_packages"] == ([] if framework == "catboost" else ["libgomp1"])
    assert build["labels"]["io.mlci.model.pickle"] == "false"
    assert build["framework"] == framework == build["labels"]["io.mlci.model.framework"]
