"""What prediction logging costs: 1-row serving throughput with the log on (100% of rows) and off.

Two `mlci serve` processes of the same model on loopback, one logging every row to JSON Lines
files in a temporary folder, one not; the same client (this process, keep-alive connections, one
thread per concurrent client) alternates between them round after round, so both see the same
machine. Printed per round and in total: requests per second off and on, and the cost in percent.
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
                for round_ in range(args.rounds):
                    order = (
                        (("off", off_url), ("on", on_url))
                        if round_ % 2 == 0
                        else (("on", on_url), ("off", off_url))
                    )
                    for name, url in order:
                        figures[name].append(load(url, body, clients, args.seconds))
                    print(
                        f"clients={clients} round {round_ + 1}: off {figures['off'][-1]:.0f} req/s, "
                        f"on {figures['on'][-1]:.0f} req/s"
                    )
                low, high = statistics.median(figures["off"]), statistics.median(figures["on"])
                print(
                    f"clients={clients} median: off {low:.0f} req/s, on {high:.0f} req/s, "
                    f"cost {100 * (1 - high / low):.1f}%"
                )
        finally:
            for process in (off, on):
                process.terminate()
                process.wait(30)
        written = sum(len(p.read_text().splitlines()) for p in (folder / "logs").glob("*.jsonl"))
        print(f"rows in closed log files: {written}")


if __name__ == "__main__":
    main()
