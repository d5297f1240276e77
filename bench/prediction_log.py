"""What prediction logging costs: 1-row serving throughput with the log on (100% of rows) and off.

Two `mlci serve` processes of the same model on loopback, one logging every row to JSON Lines
files in a temporary folder, one not; the same client (this process, keep-alive connections, one
thread per concurrent client) alternates between them round after round, so both see the same
machine. Printed per round and in total: requests per second off and on, the cost in percent, and
the servers' CPU time per request (steadier than throughput on a shared machine).
The target is a cost of at most 10%.

    .venv/bin/python bench/prediction_log.py                            # 3 rounds of 3 s, 1 and 4 clients
    .venv/bin/python bench/prediction_log.py --seconds 2 --rounds 1
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(model: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlci_lib", "serve", str(model), "--port", str(port), *extra],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"mlci serve {extra} did not become ready")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, body: bytes, clients: int, seconds: float) -> float:
    """Requests per second of ``clients`` keep-alive connections for ``seconds``."""
    host, port = url.removeprefix("http://").split(":")
    counts = [0] * clients
    stop = time.monotonic() + seconds

    def one(i: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        while time.monotonic() < stop:
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"answer {response.status}")
            counts[i] += 1
        connection.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - began)


def micro(folder: Path, rows: int = 20_000) -> None:
    """The log's own work per 1-row request, in this process: what submit() costs the request's
    thread, and the writer thread's CPU per row (JSON encoding and the write)."""
    import numpy as np

    from mlci_lib.serving.metrics import ServingMetrics
    from mlci_lib.serving.prediction_log import LogSettings, PredictionLog

    columns = [f"f{i}" for i in range(8)]
    metrics = ServingMetrics(columns, classes=["no", "yes"])
    settings = LogSettings(directory=folder / "micro", queue_rows=rows)
    log = PredictionLog(
        settings, {"name": "bench", "version": "1", "digest": "sha256:0"}, metrics, classes=["no", "yes"]
    )
    x, label, proba = np.zeros((1, 8)), np.array(["yes"]), np.array([[0.3, 0.7]])
    began = time.perf_counter()
    for _ in range(rows):
        log.submit("0123456789abcdef0123456789abcdef", x, label, proba, columns=columns)
    submit = (time.perf_counter() - began) / rows
    batches, log._queue = log._queue, []
    began = time.perf_counter()
    log._write(batches)
    assert log._writer is not None
    log._writer.close()
    write = (time.perf_counter() - began) / rows
    print(
        f"log work per 1-row request: submit {submit * 1e6:.1f} us (request thread), "
        f"writer {write * 1e6:.1f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="1,4")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mlci_lib.models import save_model

    with tempfile.TemporaryDirectory(prefix="mlci-bench-log-") as scratch:
        folder = Path(scratch)
        rng = np.random.default_rng(0)
        x = pd.DataFrame({f"f{i}": rng.normal(size=2000) for i in range(8)})
        y = np.where(x.f0 + x.f1 > 0, "yes", "no")
        model = save_model(
            HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(x, y),
            folder / "model",
            sample_input=x.head(),
            name="bench",
        )
        body = json.dumps({"rows": x.iloc[:1].to_dict("records")}).encode()
        off, off_url = start(model, [])
        on, on_url = start(model, ["--log-dir", str(folder / "logs"), "--log-sample-rate", "1"])
        try:
            for clients in (int(c) for c in args.clients.split(",")):
                load(off_url, body, clients, 1.0)  # warm both
                load(on_url, body, clients, 1.0)
                figures: dict[str, list[float]] = {"off": [], "on": []}
                cpu: dict[str, list[float]] = {"off": [], "on": []}
                pids = {"off": off.pid, "on": on.pid}
                for round_ in range(args.rounds):
                    order = (
                        (("off", off_url), ("on", on_url))
                        if round_ % 2 == 0
                        else (("on", on_url), ("off", off_url))
                    )
                    for name, url in order:
                        before = cpu_seconds(pids[name])
                        figures[name].append(load(url, body, clients, args.seconds))
                        spent = cpu_seconds(pids[name]) - before
                        cpu[name].append(1000 * spent / (figures[name][-1] * args.seconds))
                    print(
                        f"clients={clients} round {round_ + 1}: off {figures['off'][-1]:.0f} req/s, "
                        f"on {figures['on'][-1]:.0f} req/s"
                    )
                low, high = statistics.median(figures["off"]), statistics.median(figures["on"])
                print(
                    f"clients={clients} median: off {low:.0f} req/s, on {high:.0f} req/s, "
                    f"cost {100 * (1 - high / low):.1f}%"
                )
                # CPU per request is steadier than throughput on a shared machine
                c_off, c_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
                print(
                    f"clients={clients} server CPU per request: off {c_off:.3f} ms, on {c_on:.3f} ms, "
                    f"cost {100 * (c_on / c_off - 1):.1f}%"
                )
        finally:
            for process in (off, on):
                process.terminate()
                process.wait(30)
        written = sum(len(p.read_text().splitlines()) for p in (folder / "logs").glob("*.jsonl"))
        print(f"rows in closed log files: {written}")
        micro(folder)


if __name__ == "__main__":
    main()
