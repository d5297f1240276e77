"""Serving under a slow-loris flood: what ordinary clients get while hostile connections are held.

One `mlci serve` process (the same HistGradientBoosting model and client as bench/serving.py) is
measured twice in the same run: 1-row requests at concurrency 1 and 16 with no flood, then again
while FLOOD connections each send half a request line and then nothing (re-opened as the server
cuts them off). Printed: requests per second and p99 both ways, the ratio, the server's thread
count and peak memory during the flood, and how many flood connections were refused at once.

    .venv/bin/python bench/serving_hostile.py                 # 200 flood connections, 5 s a run
    .venv/bin/python bench/serving_hostile.py --flood 300 --seconds 3
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving import free_port, make_models, run_client, start_server, stop_server, wait_http


def _status(pid: int, key: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return "?"


class Flood:
    """``count`` connections that never finish their request; each is re-opened when cut off."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.refused = 0
        self.cut = 0
        self._threads = [threading.Thread(target=self._hold, daemon=True) for _ in range(count)]

    def _hold(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
                    sock.settimeout(0.5)
                    while not self.stop.is_set():
                        try:
                            reply = sock.recv(64)
                        except TimeoutError:
                            continue
                        if reply.startswith(b"HTTP/1.1 503"):
                            self.refused += 1
                        else:
                            self.cut += 1
                        break
            except OSError:
                time.sleep(0.05)

    def __enter__(self) -> Flood:
        for thread in self._threads:
            thread.start()
        time.sleep(1.0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        bodies = make_models(folder)
        port = free_port()
        process = start_server("mlci", folder, port, folder / "serve.log")
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/health")
            body = Path(str(bodies[1]).format(kind="mlci"))
            print(f"1-row requests, {args.seconds:g} s a run; flood: {args.flood} stalled connections")
            print("| concurrency | no flood | under flood | ratio | p99 no flood | p99 under flood |")
            print("| ---: | ---: | ---: | ---: | ---: | ---: |")
            for concurrency in (1, 16):
                calm = run_client(url + "/predict", body, concurrency, args.seconds)
                with Flood(port, args.flood) as flood:
                    stormy = run_client(url + "/predict", body, concurrency, args.seconds)
                    threads = _status(process.pid, "Threads")
                    peak = _status(process.pid, "VmHWM")
                print(
                    f"| {concurrency} | {calm['rps']:.0f} req/s | {stormy['rps']:.0f} req/s "
                    f"| {stormy['rps'] / calm['rps']:.2f}x | {calm['p99_ms']:.1f} ms "
                    f"| {stormy['p99_ms']:.1f} ms |"
                )
                print(
                    f"  during the flood: {threads} server threads, peak RSS {peak}, "
                    f"{flood.refused} flood connections answered 503 at once, {flood.cut} cut off"
                )
        finally:
            stop_server(process)


if __name__ == "__main__":
    main()
