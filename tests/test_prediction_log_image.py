"""The serving image logs predictions into a mounted volume while its root stays read-only."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlci_lib.image import build_image
from mlci_lib.models import load_model, save_model
from mlci_lib.serving.prediction_log import log_files, read_prediction_logs
from tests.helpers.components import free_port, http_ok, wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_the_read_only_image_logs_to_a_volume(python_base_image: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"tenure": rng.integers(0, 72, 200), "charges": rng.normal(70, 20, 200)})
    model = save_model(
        LogisticRegression(max_iter=500).fit(data, data.tenure < 20),
        tmp_path / "model",
        sample_input=data.head(),
        name="churn-logs",
    )
    sample = tmp_path / "sample.csv"
    data.head(20).to_csv(sample, index=False)
    built = build_image(
        model,
        repository="mlci-test/churn-logs",
        base_image=python_base_image,
        python_version="3.11",
        sample_data=sample,
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    logs.chmod(0o777)  # the image runs as 10001, not as the owner of the folder
    port = free_port()
    name = f"mlci-test-logs-{port}"
    # host networking, as the smoke test runs it (no port publishing needed)
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "--read-only", "--tmpfs", "/tmp", "--network", "host",
         "-v", f"{logs}:/var/log/mlci", "-e", "MLCI_LOG_DIR=/var/log/mlci", "-e", f"MLCI_SERVE_PORT={port}",
         built.image_id, "--log-max-rows", "5"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/health"), 90, "the serving container")
        rows = data.head(12).to_dict("records")
        for i in range(0, 12, 3):
            request = urllib.request.Request(
                f"{url}/predict",
                data=json.dumps({"rows": rows[i : i + 3]}).encode(),
                headers={"Content-Type": "application/json", "X-Request-Id": f"img-{i}"},
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.headers["X-Request-Id"] == f"img-{i}"
    finally:
        subprocess.run(["docker", "stop", "-t", "20", name], capture_output=True, timeout=60, check=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(read_prediction_logs(log_files([logs]))) < 12:
        time.sleep(0.2)
    logged = read_prediction_logs(log_files([logs]))
    assert len(logged) == 12  # the last file was closed and renamed on SIGTERM
    assert set(logged.request_id) == {f"img-{i}" for i in range(0, 12, 3)}
    assert set(logged["model.digest"]) == {load_model(model).digest}
    assert not [p for p in logs.iterdir() if p.name.startswith(".")]
