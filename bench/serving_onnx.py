"""Serving with the native runtime vs the ONNX runtime (vs `mlflow models serve`), same models, same client.

Two models, HistGradientBoostingClassifier (scikit-learn) and LGBMClassifier (LightGBM), 100 trees
on 8 numeric features, each served by ``mlci serve`` with its own library (native) and converted to
ONNX (``mlci serve model.onnx``, onnxruntime), and with ``--mlflow`` by ``mlflow models serve``. The
client is bench/serving.py's (a separate process, keep-alive connections, one thread per concurrent
client); every server gets the same ``dataframe_split`` bodies. Printed per scenario: requests per
second (with ``--rounds``, the median and the lowest and highest run), p99 latency (of the median
run) and the ONNX/native ratio; then in-process prediction time per call for both
runtimes, the limit any server can reach.

    .venv/bin/python bench/serving_onnx.py                           # 3 s per run
    .venv/bin/python bench/serving_onnx.py --seconds 1 --mlflow      # quicker, with MLflow
    .venv/bin/python bench/serving_onnx.py --seconds 1 --rounds 3    # median (lowest–highest) of 3
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serving

SCENARIOS = serving.SCENARIOS
HTTP_HEADER = (
    "| model | rows/request | concurrency | native req/s | ONNX req/s | ONNX/native | MLflow req/s "
    "| native p99 ms | ONNX p99 ms | errors |"
)


def make_models(folder: Path, with_mlflow: bool) -> tuple[dict[str, dict[str, Any]], Any]:
    import lightgbm
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlci_lib.models import load_model, save_model
    from mlci_lib.models.onnx_convert import convert_model

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(5000, 8)), columns=[f"f{i}" for i in range(8)])
    target = ((frame.f0 + frame.f1 * frame.f2 + 0.3 * frame.f7) > 0.5).astype(int)
    models: dict[str, dict[str, Any]] = {}

    hgb = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(frame, target)
    save_model(hgb, folder / "hgb", sample_input=frame.head(), name="hgb")
    hgb_loaded = load_model(folder / "hgb")
    models["HistGradientBoosting"] = {"native": [str(folder / "hgb")], "loaded": hgb_loaded}

    lgbm = lightgbm.LGBMClassifier(n_estimators=100, verbose=-1, random_state=0).fit(frame, target)
    # Saved as mlci saves it (LightGBM's text format and a signature), as the pipeline would push it.
    save_model(lgbm, folder / "lgbm", sample_input=frame.head(), name="lgbm")
    models["LightGBM"] = {"native": [str(folder / "lgbm")], "loaded": load_model(folder / "lgbm")}

    for name, entry in models.items():
        started = time.perf_counter()
        conversion = convert_model(entry["loaded"], frame.head(1000), folder / f"{name}.onnx")
        print(f"{name}: {conversion.message} ({time.perf_counter() - started:.1f} s)", flush=True)
        entry["onnx"] = [str(conversion.path)]
    if with_mlflow:
        import mlflow.lightgbm
        import mlflow.sklearn
        from mlflow.models import infer_signature

        signature = infer_signature(frame.head(), hgb.predict(frame.head()))
        mlflow.sklearn.save_model(
            hgb,
            folder / "hgb-mlflow",
            signature=signature,
            pip_requirements=["scikit-learn", "pandas"],
            skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
        )
        mlflow.lightgbm.save_model(lgbm, folder / "lgbm-mlflow", signature=signature)
        models["HistGradientBoosting"]["mlflow"] = folder / "hgb-mlflow"
        models["LightGBM"]["mlflow"] = folder / "lgbm-mlflow"
    bodies = {}
    for rows in sorted({r for r, _ in SCENARIOS}):
        sample = frame.sample(rows, random_state=rows)
        path = folder / f"body-{rows}.json"
        path.write_text(
            json.dumps(
                {"dataframe_split": {"columns": list(sample.columns), "data": sample.to_numpy().tolist()}}
            )
        )
        bodies[rows] = path
    return models, (frame, bodies)


def start(kind: str, argv: Any, port: int, log: Path) -> subprocess.Popen[bytes]:
    python = sys.executable
    if kind == "mlflow":
        command = [
            str(Path(python).parent / "mlflow"),
            "models",
            "serve",
            "-m",
            str(argv),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "--env-manager",
            "local",
            "--workers",
            "1",
        ]
        env = dict(os.environ, PATH=f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    else:
        command = [python, "-m", "mlci_lib", "serve", *argv, "--port", str(port)]
        env = dict(os.environ)
    handle = open(log, "wb")  # noqa: SIM115 - the server keeps it for its lifetime
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run of median requests per second (its p99 with it)."""
    return sorted(runs, key=lambda run: run["rps"])[len(runs) // 2]


def _spread(runs: list[dict[str, float]]) -> str:
    """Median requests per second, and the lowest and highest of the rounds."""
    values = sorted(run["rps"] for run in runs)
    median = _median(runs)["rps"]
    return f"{median:.0f} ({values[0]:.0f}–{values[-1]:.0f})" if len(values) > 1 else f"{median:.0f}"


def http_bench(
    models: dict[str, dict[str, Any]], bodies: dict[int, Path], folder: Path, seconds: float, rounds: int = 1
) -> list[str]:
    table = []
    for name, entry in models.items():
        kinds = [k for k in ("native", "onnx", "mlflow") if k in entry]
        ports = {kind: serving.free_port() for kind in kinds}
        processes = []
        try:
            for kind in kinds:
                processes.append(start(kind, entry[kind], ports[kind], folder / f"{name}-{kind}.log"))
                health = "/ping" if kind == "mlflow" else "/health"
                try:
                    serving.wait_http(f"http://127.0.0.1:{ports[kind]}{health}", 300)
                except RuntimeError:
                    print((folder / f"{name}-{kind}.log").read_text()[-3000:])
                    raise
            endpoint = {
                kind: f"http://127.0.0.1:{ports[kind]}" + ("/invocations" if kind == "mlflow" else "/predict")
                for kind in kinds
            }
            for kind in kinds:
                serving.run_client(endpoint[kind], bodies[1], 1, 0.5)  # warm-up
            for rows, concurrency in SCENARIOS:
                # Rounds interleave the servers, so a busy moment of the machine hits all of them.
                runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
                for _round in range(rounds):
                    for kind in kinds:
                        runs[kind].append(
                            serving.run_client(endpoint[kind], bodies[rows], concurrency, seconds)
                        )
                native, onnx = _median(runs["native"]), _median(runs["onnx"])
                mlflow = _median(runs["mlflow"]) if "mlflow" in runs else None
                line = (
                    f"| {name} | {rows} | {concurrency} | {_spread(runs['native'])} | "
                    f"{_spread(runs['onnx'])} | "
                    f"{onnx['rps'] / native['rps'] if native['rps'] else float('nan'):.1f}x | "
                    + (f"{_spread(runs['mlflow'])} | " if mlflow else "- | ")
                    + f"{native['p99_ms']:.1f} | {onnx['p99_ms']:.1f} | "
                    f"{sum(int(g['errors']) for kind in kinds for g in runs[kind])} |"
                )
                print(line, flush=True)
                table.append(line)
        finally:
            for process in processes:
                serving.stop_server(process)
    return table


def in_process(models: dict[str, dict[str, Any]], frame: Any, repeats: int) -> list[str]:
    from mlci_lib.models.onnx_format import load_onnx

    lines = []
    for name, entry in models.items():
        native = entry["loaded"]
        onnx = load_onnx(entry["onnx"][0])
        for rows in (1, 100):
            batch = frame.head(rows)
            timings = {}
            calls = {
                "native": functools.partial(native.estimator.predict_proba, batch),
                "onnx": functools.partial(onnx.estimator.predict_with_probabilities, batch),
            }
            spread = {}
            for kind, call in calls.items():
                call()
                # Five blocks of calls: the median block's time per call, and the fastest and slowest.
                blocks = []
                for _block in range(5):
                    started = time.perf_counter()
                    for _ in range(max(1, repeats // 5)):
                        call()
                    blocks.append((time.perf_counter() - started) / max(1, repeats // 5) * 1e3)
                blocks.sort()
                timings[kind] = blocks[2]
                spread[kind] = f"{blocks[2]:.3f} ({blocks[0]:.3f}–{blocks[-1]:.3f})"
            line = (
                f"| {name} | {rows} | {spread['native']} | {spread['onnx']} | "
                f"{timings['native'] / timings['onnx']:.1f}x |"
            )
            print(line, flush=True)
            lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per run")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs per scenario and server: median (lowest–highest)"
    )
    parser.add_argument("--repeats", type=int, default=200, help="in-process calls per measurement")
    parser.add_argument("--mlflow", action="store_true", help="also `mlflow models serve` (slow to start)")
    parser.add_argument("--skip-http", action="store_true", help="only the in-process figures")
    args = parser.parse_args()
    # One thread per prediction, as `mlci serve` runs (its --threads default).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="mlci-bench-onnx-") as scratch:
        folder = Path(scratch)
        models, (frame, bodies) = make_models(folder, args.mlflow)
        if not args.skip_http:
            print(HTTP_HEADER)
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            http_bench(models, bodies, folder, args.seconds, args.rounds)
        print()
        print("| model | rows/call | native predict_proba ms | ONNX run ms | native/ONNX |")
        print("| --- | ---: | ---: | ---: | ---: |")
        in_process(models, frame, args.repeats)


if __name__ == "__main__":
    main()
