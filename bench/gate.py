"""Benchmark of `mlci gate` on 1,000,000 paired rows: accuracy, F1 and ROC AUC, 1,000 resamples.

Prints, side by side in one process:
- the time to only read the two predictions files (the columns the gate needs, into DataFrames;
  also into Arrow tables only, the least any reader does),
- the end-to-end gate (`mlci gate`, in process: read, join, metrics, bootstrap, verdict file),
- the straightforward approach: scikit-learn's metrics called on each paired resample
  (timed on a few resamples and scaled to 1,000),
and the ratios. Times are medians of --repeats runs, interleaved so that a busy machine slows
each the same. Run: .venv/bin/python bench/gate.py [--rows N] [--format parquet|csv] [--repeats N]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def make_files(folder: Path, rows: int, fmt: str) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, rows)
    z = rng.normal(size=rows)
    cand = 1 / (1 + np.exp(-(1.2 * (2 * y - 1) + z)))
    base = 1 / (1 + np.exp(-(1.1 * (2 * y - 1) + 0.8 * z + 0.6 * rng.normal(size=rows))))
    paths = []
    for name, score in (("candidate", cand), ("baseline", base)):
        frame = pd.DataFrame(
            {"id": np.arange(rows), "label": y, "prediction": (score > 0.5).astype(np.int64), "score": score}
        )
        path = folder / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        paths.append(path)
    return paths[0], paths[1]


def time_read(cand: Path, base: Path) -> float:
    from mlci_lib.tables import read_table

    columns = ["id", "label", "prediction", "score"]
    start = time.perf_counter()
    read_table(cand, columns=columns)
    read_table(base, columns=columns)
    return time.perf_counter() - start


def time_read_arrow(cand: Path, base: Path) -> float:
    from mlci_lib.tables import read_arrow

    columns = ["id", "label", "prediction", "score"]
    start = time.perf_counter()
    read_arrow(cand, columns=columns)
    read_arrow(base, columns=columns)
    return time.perf_counter() - start


def time_gate(cand: Path, base: Path, folder: Path, resamples: int) -> float:
    from mlci_lib.cli import main
    from mlci_lib.runner import CiRunner

    argv = ["gate", "--candidate", str(cand), "--baseline", str(base), "--resamples", str(resamples),
            "--rule", "accuracy max-drop=0.01", "--rule", "f1 max-drop=0.01",
            "--rule", "roc_auc max-drop=0.01", "--verdict-file", str(folder / "verdict.json")]  # fmt: skip
    runner = CiRunner({}, stdout=io.StringIO(), stderr=io.StringIO())
    start = time.perf_counter()
    code = main(argv, runner=runner)
    elapsed = time.perf_counter() - start
    assert code in (0, 1), runner.stderr.getvalue()  # type: ignore[attr-defined]
    return elapsed


def time_straightforward(cand: Path, base: Path, resamples: int, timed: int) -> float:
    """scikit-learn metrics on each paired resample (rows drawn with replacement)."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    c = pd.read_parquet(cand) if cand.suffix == ".parquet" else pd.read_csv(cand)
    b = pd.read_parquet(base) if base.suffix == ".parquet" else pd.read_csv(base)
    y, pc, sc = c["label"].to_numpy(), c["prediction"].to_numpy(), c["score"].to_numpy()
    pb, sb = b["prediction"].to_numpy(), b["score"].to_numpy()
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(timed):
        i = rng.integers(0, len(y), len(y))
        for p, s in ((pc, sc), (pb, sb)):
            accuracy_score(y[i], p[i])
            f1_score(y[i], p[i])
            roc_auc_score(y[i], s[i])
    return (time.perf_counter() - start) / timed * resamples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument(
        "--timed-resamples", type=int, default=5, help="straightforward resamples actually run"
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs of each timing (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cand, base = make_files(folder, args.rows, args.format)
        time_gate(cand, base, folder, 100)  # warm imports and caches once
        times: dict[str, list[float]] = {"read": [], "arrow": [], "gate": []}
        for _ in range(args.repeats):
            times["read"].append(time_read(cand, base))
            times["arrow"].append(time_read_arrow(cand, base))
            times["gate"].append(time_gate(cand, base, folder, args.resamples))
        read, arrow, gate = (statistics.median(times[k]) for k in ("read", "arrow", "gate"))
        naive = time_straightforward(cand, base, args.resamples, args.timed_resamples)
    print(
        f"rows: {args.rows:,} paired, {args.format}; accuracy, f1, roc_auc; resamples: {args.resamples}; "
        f"median of {args.repeats}"
    )
    print(f"read the two predictions files only:      {read:8.2f} s   (into Arrow only: {arrow:.2f} s)")
    print(f"mlci gate end to end:                     {gate:8.2f} s   ({gate / read:.1f}x the read)")
    print(
        f"scikit-learn on each resample (scaled):   {naive:8.2f} s   ({naive / gate:.0f}x slower than mlci)"
    )


if __name__ == "__main__":
    main()
