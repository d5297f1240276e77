"""Benchmark `--engine pandas` against `--engine spark` (local[2]) on drift and data check.

Data: tables of 20 columns (13 numeric, 6 string, 1 bool; the distributions of bench/data_check.py)
at each --rows size, a reference and a shifted current one, written once into bench/.cache/ one
row group of 1,000,000 rows at a time (the generator never holds a whole table). The data check
runs the 40-expectation suite of bench/data_check.py on the current table; drift compares the two.

Each (size, task, engine) runs in a fresh process, started in a session of its own; this process
samples the RSS of that process and all its descendants (the Python process, for Spark its JVM,
which in local mode holds the driver and the executors, and any Python worker) from /proc every
0.2 s. Printed: the wall time of the library call (for Spark the session is started and warm
before the clock starts; its start-up is printed apart), the peak RSS of the tree and of its
JVM, the tables' size on disk, and per size the ratios Spark / pandas; across sizes, seconds per
million rows (constant when time grows linearly). A run whose tree grows past --cap-gb is
killed and reported as not finished under that much memory (the kernel would otherwise kill
whatever it picks on a shared machine); the child also volunteers as the OOM killer's first
choice.

    nice -n 19 .venv/bin/python bench/spark.py --rows 1000000 10000000 50000000

Options: --tasks drift check, --engines pandas spark, --cap-gb 14, --driver-memory 1g,
--master local[2]. Needs pyspark and Java 17; about 7.5 GB of disk per 50,000,000-row pair.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data_check import CACHE, CATEGORICAL, LEVELS, NUMERIC, suite_json

BLOCK = 1_000_000
PAGE = os.sysconf("SC_PAGE_SIZE")


def make_table(path: Path, rows: int, seed: int, shift: float = 0.0) -> Path:
    """The table of bench/data_check.py, written one row group at a time (bounded memory)."""
    if path.exists():
        return path
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    levels = pa.array(LEVELS)
    writer = None
    for index, start in enumerate(range(0, rows, BLOCK)):
        n = min(BLOCK, rows - start)
        rng = np.random.default_rng([seed, index])
        columns: dict[str, pa.Array] = {}
        for i, name in enumerate(NUMERIC):
            if i % 3 == 0:
                columns[name] = pa.array(rng.integers(0, 1000, n) + int(shift * 100 * (i % 2)))
            else:
                columns[name] = pa.array(rng.normal(i + shift * (i % 4 == 1), 1 + i / 10, n))
        for i, name in enumerate(CATEGORICAL):
            weights = np.linspace(1, 2 + i + shift * 4 * (i == 0), len(LEVELS))
            codes = pa.array(rng.choice(len(LEVELS), n, p=weights / weights.sum()).astype(np.int32))
            # Plain strings in memory and in the file's schema, as a pandas writer would leave them.
            columns[name] = pa.DictionaryArray.from_arrays(codes, levels).cast(pa.string())
        columns["flag"] = pa.array(rng.random(n) < 0.3)
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(temporary, table.schema)
        writer.write_table(table, row_group_size=BLOCK)
    assert writer is not None
    writer.close()
    os.replace(temporary, path)
    return path


def tables(rows: int) -> tuple[Path, Path, Path]:
    reference = make_table(CACHE / f"spark-reference-{rows}.parquet", rows, seed=1)
    current = make_table(CACHE / f"spark-current-{rows}.parquet", rows, seed=2, shift=1.5)
    suite = CACHE / f"suite-{rows}.json"
    if not suite.exists():
        suite.write_text(json.dumps(suite_json(rows)))
    return reference, current, suite


# -- the measured process ------------------------------------------------------------------------


def child(engine: str, task: str, rows: int, master: str, driver_memory: str) -> None:
    with contextlib.suppress(OSError):  # the OOM killer's first choice, should the sampler be slow
        Path("/proc/self/oom_score_adj").write_text("1000")
    reference, current, suite = tables(rows)
    started = time.perf_counter()
    spark = None
    if engine == "spark":
        from mlci_lib.spark.session import SparkSettings, spark_session

        spark = spark_session(SparkSettings(master=master, conf={"spark.driver.memory": driver_memory}))
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
        # An expectation that raised counts as failed in the verdict; the bench says which kind.
        errors = [e for e in result.expectations if e.exception]
        outcome = f"{result.failed - len(errors)} of {result.evaluated} expectations failed"
        if errors:
            outcome += f", {len(errors)} not evaluated (first: {errors[0].describe()})"
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "startup": startup, "outcome": outcome}), flush=True)


# -- memory of a process tree ----------------------------------------------------------------------


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _rss_mb(pid: int) -> tuple[float, str]:
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, IndexError, ValueError):
        return 0.0, ""
    return resident * PAGE / 2**20, name


class Sampler(threading.Thread):
    """Peak RSS of a process tree (all of it, and its java processes), sampled every 0.2 s."""

    def __init__(self, process: subprocess.Popen[str], cap_mb: float) -> None:
        super().__init__(daemon=True)
        self.process, self.cap_mb = process, cap_mb
        self.peak_mb = self.peak_jvm_mb = 0.0
        self.killed = False

    def run(self) -> None:
        while self.process.poll() is None:
            total = jvm = 0.0
            for pid in _tree(self.process.pid):
                rss, name = _rss_mb(pid)
                total += rss
                if name == "java":
                    jvm += rss
            self.peak_mb, self.peak_jvm_mb = max(self.peak_mb, total), max(self.peak_jvm_mb, jvm)
            if total > self.cap_mb and not self.killed:
                self.killed = True
                os.killpg(self.process.pid, signal.SIGKILL)
            time.sleep(0.2)


def measure(engine: str, task: str, rows: int, args: argparse.Namespace) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", engine, task, str(rows), args.master, args.driver_memory]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    sampler = Sampler(process, args.cap_gb * 1024)
    sampler.start()
    out, err = process.communicate()
    sampler.join()
    with_memory = {"peak_mb": sampler.peak_mb, "jvm_mb": sampler.peak_jvm_mb}
    if sampler.killed:
        return {**with_memory, "failed": f"did not finish under {args.cap_gb:g} GB (killed at that RSS)"}
    line = out.strip().splitlines()[-1] if out.strip() else ""
    if process.returncode != 0 or not line.startswith("{"):
        last = (err.strip().splitlines() or ["no output"])[-1][:200]
        return {**with_memory, "failed": f"exit {process.returncode}: {last}"}
    return {**with_memory, **json.loads(line)}


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _gb(mb: object) -> str:
    return f"{float(mb) / 1024:,.2f} GB"  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--tasks", nargs="+", choices=("drift", "check"), default=["drift", "check"])
    parser.add_argument("--engines", nargs="+", choices=("pandas", "spark"), default=["pandas", "spark"])
    parser.add_argument(
        "--cap-gb", type=float, default=14.0, help="kill a run whose process tree grows past this"
    )
    parser.add_argument("--driver-memory", default="1g", help="spark.driver.memory (heap of the local JVM)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, task, rows, master, memory = args.child
        child(engine, task, int(rows), master, memory)
        return 0
    print(
        f"load average (1, 5, 15 min) at start: {_load()}; "
        f"Spark {args.master}, driver memory {args.driver_memory}"
    )
    print(
        "| task | rows | engine | time | s per 1M rows | peak RSS (tree) | of it JVM | on disk "
        "| Spark start-up | outcome |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for rows in args.rows:
        reference, current, _ = tables(rows)
        for task in args.tasks:
            disk = current.stat().st_size + (reference.stat().st_size if task == "drift" else 0)
            found: dict[str, dict[str, object]] = {}
            for engine in args.engines:
                r = found[engine] = measure(engine, task, rows, args)
                jvm = _gb(r["jvm_mb"]) if engine == "spark" else ""
                where = f"| {task} | {rows:,} | {engine} |"
                if "failed" in r:
                    print(
                        f"{where} {r['failed']} | | {_gb(r['peak_mb'])} | {jvm} | {_gb(disk / 2**20)} | | |"
                    )
                    continue
                seconds = float(r["seconds"])  # type: ignore[arg-type]
                startup = f"{float(r['startup']):.1f} s" if engine == "spark" else ""  # type: ignore[arg-type]
                print(
                    f"{where} {seconds:,.1f} s | {seconds / rows * 1e6:.2f} | {_gb(r['peak_mb'])} | {jvm} "
                    f"| {_gb(disk / 2**20)} | {startup} | {r['outcome']} |",
                    flush=True,
                )
            pandas, spark = found.get("pandas"), found.get("spark")
            if pandas and spark and "seconds" in pandas and "seconds" in spark:
                time_ratio = float(spark["seconds"]) / float(pandas["seconds"])  # type: ignore[arg-type]
                memory_ratio = float(spark["peak_mb"]) / float(pandas["peak_mb"])  # type: ignore[arg-type]
                same = spark["outcome"] == pandas["outcome"]
                print(
                    f"| | | spark / pandas | {time_ratio:.2f}x | | {memory_ratio:.2f}x | | | "
                    f"| same outcome: {same} |"
                )
            if pandas:
                ratio = float(pandas["peak_mb"]) * 2**20 / disk  # type: ignore[arg-type]
                bound = "at least " if "failed" in pandas else ""
                print(f"| | | pandas peak RSS / on disk | {bound}{ratio:.1f}x | | | | | | |", flush=True)
    print(f"load average at end: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
