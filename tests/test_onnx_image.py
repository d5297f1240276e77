"""The ONNX runtime's serving image on the real Docker engine: converted at build time, checked,
smoke-tested against the native model, without scikit-learn, SciPy, skops or pandas inside, and
its dependency layer at most a third of the scikit-learn runtime's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlci_lib.image import build_image, smoke_test_image
from mlci_lib.image.engine import docker_client
from mlci_lib.models import save_model

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _data(n: int, seed: int) -> pd.DataFrame:
    """Numbers with NaN and a text column: requests take the general (pandas-free) path."""
    rng = np.random.default_rng(seed)
    charges = rng.normal(70, 20, n).round(2)
    charges[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "charges": charges,
            "calls": rng.poisson(2, n),
            "plan": rng.choice(["free", "pro", "team"], n).astype(object),
        }
    )


def _dependency_layer_bytes(image_id: str) -> int:
    """Size of the layer that copies the virtualenv (the dependencies) into the final image."""
    history = docker_client().images.get(image_id).history()
    sizes = [
        int(step["Size"])
        for step in history
        if "COPY" in step.get("CreatedBy", "") and "in /opt/mlci/venv" in step.get("CreatedBy", "")
    ]
    assert sizes, "no dependency layer in the image history"
    return sizes[0]


def test_onnx_image_serves_the_converted_pipeline_without_scikit_learn(
    python_base_image: str, image_registry: str, tmp_path: Path
) -> None:
    data = _data(200, 0)
    labels = ((data.tenure < 20) | (data.calls > 3)).astype(int)
    prepare = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["tenure", "charges", "calls"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    pipeline = make_pipeline(prepare, LogisticRegression(max_iter=500)).fit(data, labels)
    model = save_model(pipeline, tmp_path / "model", sample_input=data.head(), name="churn-onnx")
    sample = tmp_path / "sample.csv"
    _data(60, 1).to_csv(sample, index=False)
    common = {
        "repository": f"{image_registry}/mlci-test/churn-onnx",
        "base_image": python_base_image,
        "python_version": "3.11",
        "sample_data": sample,
    }
    built = build_image(model, tags=["onnx"], runtime="onnx", **common)
    assert built.runtime == "onnx" and built.conversion is not None
    assert built.conversion["passed"] and built.conversion["rows_checked"] == 60
    assert built.labels["io.mlci.runtime"] == "onnx"
    tolerance = built.conversion["tolerance"]

    smoke = smoke_test_image(
        built.reference, model, sample, requests=5, health_timeout=120, tolerance=tolerance
    )
    assert smoke.passed, smoke.message
    assert smoke.version is not None and smoke.version["model"]["runtime"] == "onnx"

    absent = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "/opt/mlci/venv/bin/python",
            built.reference,
            "-c",
            "import importlib.util as u; "
            "print([m for m in ('sklearn', 'scipy', 'skops', 'pandas', 'onnxruntime') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert absent.stdout.strip() == "['onnxruntime']"

    native = build_image(model, tags=["native"], **common)
    onnx_layer, native_layer = (
        _dependency_layer_bytes(built.image_id),
        _dependency_layer_bytes(native.image_id),
    )
    print(
        f"dependency layer: onnx {onnx_layer / 1e6:.1f} MB, native {native_layer / 1e6:.1f} MB "
        f"({onnx_layer / native_layer:.1%})"
    )
    # The target, both layers measured the same way (the size of the COPY of the virtualenv).
    assert onnx_layer * 3 <= native_layer
