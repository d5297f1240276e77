"""Serving throughput and latency: `mlci serve` against `mlflow models serve`, same model, same client.

Both servers run one worker process on loopback, one at a time, serving the same fitted
scikit-learn model; the same client (a separate process, keep-alive connections, one thread per
concurrent client) sends the same request bodies (MLflow's ``dataframe_split`` form, which both
accept) for a fixed time. Printed per scenario: requests per second, p50 and p99 latency, and the
ratio mlci/MLflow. With ``--image`` it also prints the serving image's size next to its base image
and the installed dependencies (from the image's own layer history).

    .venv/bin/python bench/serving.py                          # 4 scenarios, 3 rounds of 5 s each
    .venv/bin/python bench/serving.py --seconds 2 --rounds 1   # quicker
    .venv/bin/python bench/serving.py --image REF --skip-http

With ``--against REV`` it compares mlci with itself instead: the serving runtime of git revision
REV (extracted with ``git archive``) against this working tree, both up at once and alternating
per run, for a HistGradientBoosting and a LogisticRegression model on 1-row requests at
concurrency 1 and 16 (medians, and the range over the rounds):

    .venv/bin/python bench/serving.py --against main --seconds 3 --rounds 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

SCENARIOS = [(1, 1), (1, 16), (100, 1), (100, 16)]  # (rows per request, concurrency)


# -- the client (runs in its own process) -----------------------------------------------------


def client_main(url: str, body_file: str, concurrency: int, seconds: float) -> None:
    address, _, path = url.removeprefix("http://").partition("/")
    host, port = address.split(":")
    path = "/" + path
    body = Path(body_file).read_bytes()
    headers = {"Content-Type": "application/json"}
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    start_event = threading.Event()
    stop_at = [0.0]

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        mine = latencies[index]
        start_event.wait()
        while True:
            began = time.perf_counter()
            if began >= stop_at[0]:
                break
            try:
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    errors[index] += 1
                    continue
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=60)
                continue
            mine.append(time.perf_counter() - began)
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start_event.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = sorted(x for per in latencies for x in per)
    count = len(flat)

    def pct(q: float) -> float:
        return flat[min(count - 1, round(q / 100 * (count - 1)))] * 1000 if count else float("nan")

    print(
        json.dumps(
            {
                "requests": count,
                "errors": sum(errors),
                "rps": count / elapsed,
                "p50_ms": pct(50),
                "p99_ms": pct(99),
            }
        )
    )


# -- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def start_server(
    kind: str, folder: Path, port: int, log: Path, *, model: str = "mlci", code: Path | None = None
) -> subprocess.Popen[bytes]:
    python = sys.executable
    if kind == "mlci":
        command = [python, "-m", "mlci_lib", "serve", str(folder / model), "--port", str(port)]
        env = dict(os.environ)
        if code is not None:  # another revision's mlci_lib
            env["PYTHONPATH"] = str(code)
    else:
        mlflow = str(Path(python).parent / "mlflow")
        command = [
            mlflow,
            "models",
            "serve",
            "-m",
            str(folder / "mlflow"),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "--env-manager",
            "local",
            "--workers",
            "1",
        ]
        env = dict(
            os.environ,
            MLFLOW_TRACKING_URI=f"file://{folder / 'mlruns'}",
            PATH=f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # uvicorn
        )
    handle = open(log, "wb")  # noqa: SIM115 - the server keeps it for its lifetime
    # Started in the scratch folder: `python -m` puts the working directory first on sys.path, so
    # from a checkout it would import the checkout's mlci_lib whatever PYTHONPATH names.
    return subprocess.Popen(
        command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=folder, start_new_session=True
    )


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(10)


def make_models(folder: Path) -> dict[int, Path]:
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlci_lib.models import save_model

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(5000, 8)), columns=[f"f{i}" for i in range(8)])
    frame["f7"] = rng.integers(0, 10, 5000)
    target = ((frame.f0 + frame.f1 * frame.f2 + 0.3 * frame.f7) > 1).astype(int)
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(frame, target)
    save_model(model, folder / "mlci", sample_input=frame.head(), name="bench")
    mlflow.sklearn.save_model(
        model,
        folder / "mlflow",
        signature=infer_signature(frame.head(), model.predict(frame.head())),
        pip_requirements=["scikit-learn", "pandas"],
        skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
    )
    bodies = {}
    for rows in sorted({r for r, _ in SCENARIOS}):
        sample = frame.sample(rows, random_state=rows)
        body = {"dataframe_split": {"columns": list(sample.columns), "data": sample.to_numpy().tolist()}}
        for kind in ("mlci", "mlflow"):
            path = folder / f"body-{rows}-{kind}.json"
            path.write_text(json.dumps(body))
        bodies[rows] = folder / f"body-{rows}-{{kind}}.json"
    return bodies


def run_client(url: str, body: Path, concurrency: int, seconds: float) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--client", url, str(body), str(concurrency), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def same_predictions(mlci_url: str, mlflow_url: str, body: Path) -> bool:
    def post(url: str, path: str) -> list:
        request = urllib.request.Request(
            url + path, data=body.read_bytes(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["predictions"]

    return post(mlci_url, "/predict") == post(mlflow_url, "/invocations")


def http_bench(seconds: float, rounds: int) -> None:
    """Both servers up at once (an idle one costs nothing); each scenario alternates between them
    for ``rounds`` rounds and keeps the median, so a change of machine load hits both alike."""
    import statistics

    with tempfile.TemporaryDirectory(prefix="mlci-bench-") as scratch:
        folder = Path(scratch)
        print("preparing the model (HistGradientBoostingClassifier, 100 trees, 8 features) ...", flush=True)
        bodies = make_models(folder)
        ports = {kind: free_port() for kind in ("mlci", "mlflow")}
        processes = []
        try:
            for kind, port in ports.items():
                started = time.perf_counter()
                processes.append(start_server(kind, folder, port, folder / f"{kind}.log"))
                try:
                    wait_http(f"http://127.0.0.1:{port}" + ("/health" if kind == "mlci" else "/ping"), 300)
                except RuntimeError:
                    print((folder / f"{kind}.log").read_text()[-3000:])
                    raise
                print(f"{kind}: ready in {time.perf_counter() - started:.1f} s", flush=True)
            endpoint = {
                "mlci": f"http://127.0.0.1:{ports['mlci']}/predict",
                "mlflow": f"http://127.0.0.1:{ports['mlflow']}/invocations",
            }
            same = same_predictions(
                f"http://127.0.0.1:{ports['mlci']}",
                f"http://127.0.0.1:{ports['mlflow']}",
                Path(str(bodies[100]).replace("{kind}", "mlci")),
            )
            print(f"same predictions from both servers on 100 rows: {same}")
            for kind in ports:
                run_client(endpoint[kind], Path(str(bodies[1]).replace("{kind}", kind)), 1, 1.0)  # warm-up
            results: dict[tuple[int, int], dict[str, dict[str, float]]] = {}
            for rows, concurrency in SCENARIOS:
                runs: dict[str, list[dict[str, float]]] = {"mlci": [], "mlflow": []}
                for round_ in range(rounds):
                    order = ("mlci", "mlflow") if round_ % 2 == 0 else ("mlflow", "mlci")
                    for kind in order:
                        body = Path(str(bodies[rows]).replace("{kind}", kind))
                        runs[kind].append(run_client(endpoint[kind], body, concurrency, seconds))
                results[(rows, concurrency)] = {
                    kind: {
                        key: statistics.median(r[key] for r in runs[kind])
                        for key in ("rps", "p50_ms", "p99_ms", "errors")
                    }
                    for kind in runs
                }
                a, b = results[(rows, concurrency)]["mlci"], results[(rows, concurrency)]["mlflow"]
                print(
                    f"  rows={rows:<3} c={concurrency:<2} "
                    f"mlci {a['rps']:7.1f} req/s p99 {a['p99_ms']:7.1f} ms | "
                    f"mlflow {b['rps']:7.1f} req/s p99 {b['p99_ms']:7.1f} ms | "
                    f"errors {a['errors']}/{b['errors']}",
                    flush=True,
                )
        finally:
            for process in processes:
                stop_server(process)
    print()
    print("| rows/request | concurrency | mlci req/s | MLflow req/s | ratio | mlci p99 ms | MLflow p99 ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows, concurrency in SCENARIOS:
        a, b = results[(rows, concurrency)]["mlci"], results[(rows, concurrency)]["mlflow"]
        print(
            f"| {rows} | {concurrency} | {a['rps']:.0f} | {b['rps']:.0f} | {a['rps'] / b['rps']:.1f}x | "
            f"{a['p99_ms']:.1f} | {b['p99_ms']:.1f} |"
        )


# -- this tree against another revision -----------------------------------------------------

COMPARE_SCENARIOS = [(1, 1), (1, 16)]


def make_compare_models(folder: Path) -> Path:
    """HistGradientBoosting (100 trees) and LogisticRegression on the same 8 numeric features."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from mlci_lib.models import save_model

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(5000, 8)), columns=[f"f{i}" for i in range(8)])
    frame["f7"] = rng.integers(0, 10, 5000)
    target = ((frame.f0 + frame.f1 * frame.f2 + 0.3 * frame.f7) > 1).astype(int)
    for name, model in (
        ("hgb", HistGradientBoostingClassifier(max_iter=100, random_state=0)),
        ("lr", LogisticRegression(max_iter=500)),
    ):
        save_model(model.fit(frame, target), folder / name, sample_input=frame.head(), name=name)
    sample = frame.sample(1, random_state=1)
    body = folder / "body-1.json"
    body.write_text(
        json.dumps({"dataframe_split": {"columns": list(sample.columns), "data": sample.to_numpy().tolist()}})
    )
    return body


def extract_revision(revision: str, into: Path) -> Path:
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", revision, "mlci_lib"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def compare_bench(revision: str, seconds: float, rounds: int) -> None:
    import statistics

    with tempfile.TemporaryDirectory(prefix="mlci-bench-") as scratch:
        folder = Path(scratch)
        (folder / "old").mkdir()
        old_code = extract_revision(revision, folder / "old")
        print(f"preparing the models; {revision} against this tree ...", flush=True)
        body = make_compare_models(folder)
        rows: list[str] = []
        for model in ("hgb", "lr"):
            servers = {"old": old_code, "new": None}
            ports = {side: free_port() for side in servers}
            processes = []
            try:
                for side, code in servers.items():
                    log = folder / f"{model}-{side}.log"
                    processes.append(start_server("mlci", folder, ports[side], log, model=model, code=code))
                    try:
                        wait_http(f"http://127.0.0.1:{ports[side]}/health", 300)
                    except RuntimeError:
                        print(log.read_text()[-3000:])
                        raise
                urls = {side: f"http://127.0.0.1:{port}/predict" for side, port in ports.items()}
                answers = {}
                for side, url in urls.items():
                    request = urllib.request.Request(
                        url, body.read_bytes(), {"Content-Type": "application/json"}
                    )
                    with urllib.request.urlopen(request, timeout=30) as response:
                        answers[side] = json.loads(response.read())
                    run_client(url, body, 1, 1.0)  # warm-up
                same = answers["old"] == answers["new"]
                for _rows, concurrency in COMPARE_SCENARIOS:
                    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
                    for round_ in range(rounds):
                        for side in ("old", "new") if round_ % 2 == 0 else ("new", "old"):
                            runs[side].append(run_client(urls[side], body, concurrency, seconds))

                    def spread(values: list[float]) -> str:
                        middle = statistics.median(values)
                        return f"{middle:.0f} ({min(values):.0f}-{max(values):.0f})"

                    old_rps = statistics.median(r["rps"] for r in runs["old"])
                    new_rps = statistics.median(r["rps"] for r in runs["new"])
                    old_p99 = statistics.median(r["p99_ms"] for r in runs["old"])
                    new_p99 = statistics.median(r["p99_ms"] for r in runs["new"])
                    ratios = [n["rps"] / o["rps"] for o, n in zip(runs["old"], runs["new"], strict=True)]
                    line = (
                        f"| {model} | {concurrency} | {spread([r['rps'] for r in runs['old']])} | "
                        f"{spread([r['rps'] for r in runs['new']])} | "
                        f"{new_rps / old_rps:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) | "
                        f"{old_p99:.1f} | {new_p99:.1f} | {new_p99 / old_p99:.2f} | {same} |"
                    )
                    print(line, flush=True)
                    rows.append(line)
            finally:
                for process in processes:
                    stop_server(process)
    print()
    print(f"{revision} (old) against this tree (new); req/s as median (range over {rounds} rounds)")
    print(
        "| model | concurrency | old req/s | new req/s | new/old | old p99 ms | new p99 ms | p99 new/old "
        "| same answer |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for line in rows:
        print(line)


# -- image size -----------------------------------------------------------------------------


def image_sizes(reference: str) -> None:
    docker = shutil.which("docker") or "docker"
    inspect = json.loads(
        subprocess.run(
            [docker, "image", "inspect", reference], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    base = inspect["Config"]["Labels"].get("org.opencontainers.image.base.name")
    base_size = (
        json.loads(
            subprocess.run(
                [docker, "image", "inspect", base], capture_output=True, text=True, check=True
            ).stdout
        )[0]["Size"]
        if base
        else 0
    )
    history = subprocess.run(
        [docker, "history", "--no-trunc", "--human=false", "--format", "{{json .}}", reference],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    layers = {"dependencies": 0, "mlci runtime": 0, "model": 0}
    for line in history:
        entry = json.loads(line)
        created_by = entry.get("CreatedBy", "")
        size = _size(entry.get("Size", "0B"))
        if "/opt/mlci/venv" in created_by and "COPY" in created_by.upper():
            layers["dependencies"] += size
        elif "/opt/mlci/app" in created_by:
            layers["mlci runtime"] += size
        elif "/opt/mlci/bundle" in created_by:
            layers["model"] += size
    total = inspect["Size"]
    mb = 1e6
    print(f"image {reference}: {total / mb:.0f} MB")
    print(f"  base image {base}: {base_size / mb:.0f} MB")
    print(f"  + installed dependencies (one layer): {layers['dependencies'] / mb:.0f} MB")
    print(f"  = base + dependencies: {(base_size + layers['dependencies']) / mb:.0f} MB")
    print(f"  + mlci runtime {layers['mlci runtime'] / 1e3:.0f} kB, model {layers['model'] / 1e3:.0f} kB")
    print(f"  overhead over base + dependencies: {(total - base_size - layers['dependencies']) / 1e3:.0f} kB")


def _size(text: str) -> int:
    units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}
    for unit in ("kB", "KB", "MB", "GB", "B"):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * units[unit])
    return int(text or 0)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per scenario and server (median kept)")
    parser.add_argument("--image", help="also print the size of this serving image")
    parser.add_argument("--skip-http", action="store_true", help="only the image size")
    parser.add_argument("--against", metavar="REV", help="compare this tree's runtime with git revision REV")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    if args.against:
        compare_bench(args.against, args.seconds, args.rounds)
        return
    if not args.skip_http:
        http_bench(args.seconds, args.rounds)
    if args.image:
        image_sizes(args.image)


if __name__ == "__main__":
    main()
