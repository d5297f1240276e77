"""Benchmark of `mlci model push` of a small scikit-learn model against a local MLflow server.

Starts `mlflow server` (SQLite backend, proxied artifacts) on 127.0.0.1 and times, side by side in
one process (mlflow already imported by both, alternating so neither gets a warmer cache):

- mlci: ``push_model`` (safe load, verdict check, run, skops log with explicit requirements,
  verdict and metrics on the run, upload check, version with all tags, convergence listing);
- plain MLflow: ``mlflow.sklearn.log_model(model, name=..., registered_model_name=...)`` in a run,
  as its docs show it (requirements inferred, default serialization);

each on a fresh model content so neither side returns an existing version, and prints the medians
and the ratio. Run: .venv/bin/python bench/registry.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    process = subprocess.Popen(
        [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return process, uri
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("mlflow server did not start")


def fitted(seed: int) -> tuple[LogisticRegression, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.random((500, 8)), columns=[f"f{i}" for i in range(8)])
    label = (frame["f0"] + 0.2 * rng.random(500) > 0.6).astype(int)
    return LogisticRegression(C=1.0 + seed / 10).fit(frame, label), frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"

    import mlflow
    import mlflow.sklearn

    from mlci_lib.models import save_model
    from mlci_lib.registry import push_model

    with tempfile.TemporaryDirectory(prefix="mlci-bench-registry-") as tmp:
        folder = Path(tmp)
        process, uri = start_server(folder)
        try:
            verdict = folder / "verdict.json"
            verdict.write_text(
                json.dumps({"schema": "mlci.gate-verdict", "schema_version": 1, "passed": True})
            )
            mlflow.set_tracking_uri(uri)
            mlflow.set_experiment("plain")
            # One warm-up each: imports inside log_model (skops, requirement tooling) load once.
            times: dict[str, list[float]] = {"mlci": [], "plain": []}
            for index in range(args.repeats + 1):
                model, frame = fitted(index)
                model_dir = save_model(model, folder / f"model-{index}", sample_input=frame.head())

                start = time.perf_counter()
                push_model(model_dir, "bench-mlci", verdict=verdict, tracking_uri=uri)
                mlci_time = time.perf_counter() - start

                start = time.perf_counter()
                with mlflow.start_run():
                    mlflow.sklearn.log_model(model, name="model", registered_model_name="bench-plain")
                plain_time = time.perf_counter() - start
                if index:
                    times["mlci"].append(mlci_time)
                    times["plain"].append(plain_time)
                print(f"round {index}{' (warm-up)' if not index else ''}: mlci {mlci_time:.2f} s, "
                      f"plain mlflow {plain_time:.2f} s")  # fmt: skip
        finally:
            process.terminate()
            process.wait(timeout=30)
    mlci_median = statistics.median(times["mlci"])
    plain_median = statistics.median(times["plain"])
    print(f"\nmedian of {args.repeats}: mlci model push {mlci_median:.2f} s, "
          f"mlflow.sklearn.log_model(registered_model_name=...) {plain_median:.2f} s")  # fmt: skip
    print(
        f"ratio: mlci is {plain_median / mlci_median:.1f}x faster ({plain_median - mlci_median:.2f} s less)"
    )


if __name__ == "__main__":
    main()
