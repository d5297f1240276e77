"""CLI start-up cost: `mlci --version` and `mlci gate --help` against a bare `python -c pass`.

Run: .venv/bin/python bench/startup.py [--runs N]

Each command is started as a fresh process N times, interleaved with the baseline so that machine
noise hits all three alike; the figure is the median wall time, and the overhead is the
difference to the baseline (target: under 0.2 s).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall_time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    mlci = shutil.which("mlci", path=str(Path(sys.executable).parent)) or "mlci"
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "mlci --version": [mlci, "--version"],
        "mlci gate --help": [mlci, "gate", "--help"],
    }
    for command in commands.values():  # warm the file cache once
        wall_time(command)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            samples[name].append(wall_time(command))
    baseline = statistics.median(samples["python -c pass"])
    print(f"{'command':<20} {'median':>9} {'overhead':>9}  (runs={args.runs})")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<20} {median * 1000:>7.1f}ms {(median - baseline) * 1000:>+7.1f}ms")


if __name__ == "__main__":
    main()
