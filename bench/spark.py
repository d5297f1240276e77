"""Benchmark `--engine pandas` against `--engine spark` (local[2]) on drift and data check.

Data: the tables of bench/data_check.py (20 columns: 13 numeric, 6 string, 1 bool; generated once
into bench/.cache/), at each --rows size. Each (engine, task, size) runs in a fresh process, so
its peak memory is its own: printed are the wall time of the library call (the Spark session
started and warmed up before it; its start-up is printed apart) and the peak RSS of the Python
process plus, for Spark, of its JVM (driver and executors in one process in local mode; read
from /proc/<pid>/status VmHWM of the java child).

    .venv/bin/python bench/spark.py [--rows 1000000 10000000] [--tasks drift check]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data_check import CACHE, make_table, suite_json


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(engine: str, task: str, rows: int) -> None:
    reference = make_table(CACHE / f"reference-{rows}.parquet", rows, seed=1)
    current = make_table(CACHE / f"current-{rows}.parquet", rows, seed=2, shift=1.5)
    suite = CACHE / f"suite-{rows}.json"
    if not suite.exists():
        suite.write_text(json.dumps(suite_json(rows)))
    started = time.perf_counter()
    spark = None
    if engine == "spark":
        from mlci_lib.spark.session import SparkSettings, spark_session

        spark = spark_session(SparkSettings(master="local[2]", conf={"spark.driver.memory": "2g"}))
        spark.range(10).count()  # the JVM up and warm before the clock starts
    startup = time.perf_counter() - started
    start = time.perf_counter()
    if task == "drift":
        if spark is not None:
            from mlci_lib.spark.drift import detect_drift_spark

            verdict = detect_drift_spark(spark, reference, current)
        else:
            from mlci_lib.drift import detect_drift

            verdict = detect_drift(reference, current)
        outcome = f"{len(verdict.drifted_features)} of {len(verdict.features)} drifted"
    else:
        if spark is not None:
            from mlci_lib.spark.check import check_data_spark

            result = check_data_spark(spark, current, suite)
        else:
            from mlci_lib.data.check import check_data

            result = check_data(current, suite)
        outcome = f"{result.failed} of {result.evaluated} expectations failed"
    seconds = time.perf_counter() - start
    python_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    jvm_mb = 0.0
    if spark is not None:
        jvm_mb = _vm_hwm_mb(spark.sparkContext._gateway.proc.pid)  # type: ignore[attr-defined]
    print(
        json.dumps(
            {
                "engine": engine, "task": task, "rows": rows, "seconds": seconds, "startup": startup,
                "python_mb": python_mb, "jvm_mb": jvm_mb, "outcome": outcome,
                "on_disk_mb": (reference.stat().st_size + current.stat().st_size) / 2**20,
            }
        )
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--tasks", nargs="+", choices=("drift", "check"), default=["drift", "check"])
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "TASK", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    print("| task | rows | engine | time | peak RSS python | peak RSS JVM | Spark start-up | outcome |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for rows in args.rows:
        for task in args.tasks:
            for engine in ("pandas", "spark"):
                done = subprocess.run(
                    [sys.executable, __file__, "--child", engine, task, str(rows)],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
                if done.returncode != 0 or not line.startswith("{"):
                    print(
                        f"| {task} | {rows:,} | {engine} | failed: {done.stderr.strip().splitlines()[-1:]} |"
                    )
                    continue
                r = json.loads(line)
                jvm = f"{r['jvm_mb']:,.0f} MB" if engine == "spark" else ""
                startup = f"{r['startup']:.1f} s" if engine == "spark" else ""
                print(
                    f"| {task} | {rows:,} | {engine} | {r['seconds']:.1f} s | {r['python_mb']:,.0f} MB "
                    f"| {jvm} | {startup} | {r['outcome']} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
