"""Benchmark `mlci monitor check` over a million logged rows with labels, against reading the logs.

Data (generated once into bench/.cache/): a logistic regression on 8 numeric inputs; 1,000,000
rows of its predictions logged by the serving runtime's own log writer (JSON Lines, the default,
or Parquet with --format parquet) in files of 100,000 rows; a labels file (Parquet) for every row
joined on request id and row; labelled evaluation data (20,000 rows) and an expectation suite on
the inputs.

Timed, interleaved run after run: reading the logs (``read_prediction_logs`` over the folder,
what every monitor run must do) and the whole ``monitor_logs`` call — reading, window, labels
join, input and prediction drift, data quality (GX), realized performance with 1000 bootstrap
resamples, calibration and estimated performance, rules. Printed per run and as the median with
the spread (min to max); target: monitor within 3x the read time. Both are timed warm (after
one untimed run on one log file): importing GX and scikit-learn is a start-up cost, not the rows'.
Each is timed twice: wall time, and the process's CPU time (all its threads), which other work
on a shared machine disturbs far less than the wall time.

    .venv/bin/python bench/monitor.py [--rows 1000000] [--repeat 3] [--format jsonl|parquet]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parent / ".cache"
FEATURES = [f"f{i}" for i in range(8)]
BATCH = 1000


def simulate(rng: Any, n: int, shift: float = 0.0) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    x = rng.normal(0, 1, (n, len(FEATURES)))
    x[:, 0] += shift
    weights = np.linspace(1.2, -0.8, len(FEATURES))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ weights)))).astype(int)
    return pd.DataFrame(x.round(5), columns=FEATURES), y


def build(rows: int, fmt: str) -> dict[str, Path]:
    """Write the model, the logs, the labels, the evaluation data and the suite once."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from mlci_lib.models import load_model, save_model
    from mlci_lib.serving.metrics import ServingMetrics
    from mlci_lib.serving.prediction_log import LogSettings, PredictionLog

    root = CACHE / f"monitor-{rows}-{fmt}"
    paths = {
        "model": root / "model",
        "train": root / "train.parquet",
        "evaluation": root / "evaluation.parquet",
        "labels": root / "labels.parquet",
        "suite": root / "suite.yml",
        "logs": root / "logs",
    }
    if (root / "complete").exists():
        return paths
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    train, y = simulate(rng, 20_000)
    evaluation, y_eval = simulate(rng, 20_000)
    train.assign(label=y).to_parquet(paths["train"], index=False)
    evaluation.assign(label=y_eval).to_parquet(paths["evaluation"], index=False)
    save_model(LogisticRegression().fit(train, y), paths["model"], sample_input=train.head(), name="bench")
    loaded = load_model(paths["model"])
    columns = "\n".join(f"  {f}: {{min: -6, max: 6, nullable: false}}" for f in FEATURES)
    paths["suite"].write_text(f"name: bench\ncolumns:\n{columns}\n  label: {{allowed: [0, 1]}}\n")
    settings = LogSettings(directory=paths["logs"], format=fmt, max_rows=100_000, queue_rows=rows + BATCH)
    log = PredictionLog(
        settings,
        {"name": "bench", "version": "1", "digest": loaded.digest},
        ServingMetrics(FEATURES, classes=loaded.classes),
        classes=loaded.classes,
    ).start()
    window, labels = simulate(rng, rows, shift=0.3)
    predictions, proba = loaded.predict(window)
    ids = []
    for k, start in enumerate(range(0, rows, BATCH)):
        stop = min(start + BATCH, rows)
        log.submit(f"req-{k}", window.iloc[start:stop], predictions[start:stop], proba[start:stop])
        ids += [f"req-{k}"] * (stop - start)
    log.close(timeout=3600)
    pd.DataFrame({"request_id": ids, "row": np.arange(rows) % BATCH, "label": labels}).to_parquet(
        paths["labels"], index=False
    )
    (root / "complete").write_text("")
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    args = parser.parse_args()

    from mlci_lib.monitor.monitor import monitor_logs
    from mlci_lib.serving.prediction_log import log_files, read_prediction_logs

    start = time.perf_counter()
    paths = build(args.rows, args.format)
    built = time.perf_counter() - start

    def read() -> Any:
        return read_prediction_logs(log_files([paths["logs"]]))

    def monitor() -> Any:
        return monitor_logs(
            [paths["logs"]],
            paths["train"],
            paths["model"],
            labels=paths["labels"],
            evaluation=paths["evaluation"],
            suite=paths["suite"],
            rules=["accuracy min=0.7", "roc_auc min=0.7", "estimated_accuracy min=0.7"],
        )

    def timed(fn: Any) -> tuple[float, float, Any]:
        gc.collect()
        begin, cpu = time.perf_counter(), time.process_time()
        value = fn()
        return time.perf_counter() - begin, time.process_time() - cpu, value

    # Warm up on one log file: imports (GX, skops, scikit-learn) and GX's first validation are a
    # fixed start-up cost, not a cost of the rows.
    first = log_files([paths["logs"]])[0]
    monitor_logs(
        [first], paths["train"], paths["model"], evaluation=paths["evaluation"], suite=paths["suite"]
    )
    read_prediction_logs([first])
    for file in log_files([paths["logs"]]):  # the page cache holds the files for both sides alike
        file.read_bytes()

    reads, monitors, ratios = [], [], []
    read_cpus, monitor_cpus, cpu_ratios = [], [], []
    verdict = None
    for run in range(args.repeat):
        read_s, read_cpu, frame = timed(read)
        del frame
        monitor_s, monitor_cpu, verdict = timed(monitor)
        reads.append(read_s)
        monitors.append(monitor_s)
        ratios.append(monitor_s / read_s)
        read_cpus.append(read_cpu)
        monitor_cpus.append(monitor_cpu)
        cpu_ratios.append(monitor_cpu / read_cpu)
        print(
            f"run {run + 1}: read {read_s:6.2f} s, monitor {monitor_s:6.2f} s, ratio {ratios[-1]:.2f}x; "
            f"CPU: read {read_cpu:6.2f} s, monitor {monitor_cpu:6.2f} s, ratio {cpu_ratios[-1]:.2f}x"
        )
    assert verdict is not None
    (version,) = verdict.versions
    print(
        f"data: {verdict.rows:,} logged rows ({args.format}, {len(verdict.files)} files; "
        f"built in {built:.0f} s), "
        f"{verdict.labels.joined_rows:,} labelled; status {verdict.status}; accuracy "
        f"{version.realized.metrics['accuracy']:.4f}, estimated {version.estimated.metrics['accuracy']:.4f}"
    )

    def spread(values: list[float], unit: str) -> str:
        return f"median {statistics.median(values):.2f}{unit} (min {min(values):.2f}, max {max(values):.2f})"

    print(f"read the logs:  {spread(reads, ' s')}")
    print(f"mlci monitor:   {spread(monitors, ' s')}")
    print(f"monitor / read: {spread(ratios, 'x')}  (target: under 3x)")
    print(f"CPU time: read {spread(read_cpus, ' s')}; monitor {spread(monitor_cpus, ' s')}")
    print(f"CPU time, monitor / read: {spread(cpu_ratios, 'x')}")
    # Other work on the machine only ever adds time: the fastest run of each is the least disturbed.
    print(
        f"fastest runs: monitor {min(monitors):.2f} s / read {min(reads):.2f} s = "
        f"{min(monitors) / min(reads):.2f}x; CPU {min(monitor_cpus) / min(read_cpus):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
