"""CLI start-up cost: `mlci --version` and `mlci gate --help` against a bare `python -c pass`.

Run: .venv/bin/python bench/startup.py [--runs N]

Each command is started as a fresh process N times, interleaved with the baseline so that machine
noise hits all three alike; the figures are the median wall time and the median CPU time (user +
system of the child), and the overhead is the difference to the baseline (target: under 0.2 s).
CPU time is the steadier figure on a busy machine: waiting for a core does not count in it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

# As after a normal install, bytecode is cached: the warm-up run writes it even where the
# environment asks Python not to.
CHILD_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def children_cpu_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process running the command."""
    cpu_before = children_cpu_time()
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=CHILD_ENV)
    return time.perf_counter() - start, children_cpu_time() - cpu_before


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
        timed_run(command)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            wall, cpu = timed_run(command)
            walls[name].append(wall)
            cpus[name].append(cpu)
    wall_base = statistics.median(walls["python -c pass"])
    cpu_base = statistics.median(cpus["python -c pass"])
    print(
        f"{'command':<20} {'wall':>9} {'overhead':>9} {'cpu':>9} {'overhead':>9}"
        f"  (medians of {args.runs} runs)"
    )
    for name in commands:
        wall = statistics.median(walls[name])
        cpu = statistics.median(cpus[name])
        print(
            f"{name:<20} {wall * 1000:>7.1f}ms {(wall - wall_base) * 1000:>+7.1f}ms"
            f" {cpu * 1000:>7.1f}ms {(cpu - cpu_base) * 1000:>+7.1f}ms"
        )


if __name__ == "__main__":
    main()
