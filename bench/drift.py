"""Benchmark `mlci drift` against the time to only read its two inputs.

Data: reference and current Parquet files of 1,000,000 rows and 20 columns each (generated once
into bench/.cache/; the current one has a few shifted features). Printed: the time to read both
files, `detect_drift` on them (reading included), and, for scale, SciPy's `ks_2samp` on the
13 numeric features alone. Target: drift within 1.5x the read time.

    .venv/bin/python bench/drift.py [--rows 1000000] [--repeat 2]

It also prints drift's peak memory in a fresh process, above what the imports take, against the
in-memory size of both frames (``--skip-memory`` to leave it out).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data_check import CACHE, NUMERIC, make_table, timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-scipy", action="store_true", help="do not time SciPy's ks_2samp")
    parser.add_argument("--skip-memory", action="store_true", help="do not measure peak memory")
    args = parser.parse_args()
    from mlci_lib.drift import detect_drift
    from mlci_lib.tables import read_table

    reference = make_table(CACHE / f"reference-{args.rows}.parquet", args.rows, seed=1)
    current = make_table(CACHE / f"current-{args.rows}.parquet", args.rows, seed=2, shift=1.5)
    detect_drift(reference, reference, columns=NUMERIC[:2])  # warm up imports

    # Interleaved, best of --repeat each: other load on the machine hits both sides alike.
    read_s = drift_s = float("inf")
    for _ in range(args.repeat):
        read_time, frames = timed(lambda: (read_table(reference), read_table(current)), 1)
        drift_time, verdict = timed(lambda: detect_drift(reference, current), 1)
        read_s, drift_s = min(read_s, read_time), min(drift_s, drift_time)
    print(
        f"data: 2 x {args.rows:,} rows x 20 columns; {len(verdict.drifted_features)} of "
        f"{len(verdict.features)} features drifted ({', '.join(verdict.drifted_features)})"
    )
    print(f"read both files (mlci read_table):   {read_s:7.2f} s")
    print(f"mlci drift (read + all statistics):  {drift_s:7.2f} s")
    print(f"drift / read: {drift_s / read_s:.2f}x  (target: at most 1.5x)")
    if not args.skip_scipy:
        from scipy import stats

        ref, cur = frames
        start = time.perf_counter()
        for name in NUMERIC:
            stats.ks_2samp(ref[name].to_numpy(), cur[name].to_numpy())
        scipy_s = time.perf_counter() - start
        print(
            f"for scale: scipy ks_2samp on the 13 numeric features alone: {scipy_s:.2f} s "
            f"({scipy_s / drift_s:.1f}x mlci drift's whole run)"
        )
    if not args.skip_memory:
        ref, cur = frames
        size = (ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum()) / 2**20
        peak = peak_memory(reference, current)
        print(
            f"peak memory of a drift run above its imports: {peak:.0f} MB; both frames: {size:.0f} MB "
            f"({peak / size:.2f}x; target at most 1.5x)"
        )
    return 0


def peak_memory(reference: Path, current: Path) -> float:
    """MB a fresh process's peak grows by while ``detect_drift`` runs, imports excluded."""
    import subprocess

    script = CACHE / "drift-memory.py"
    # VmHWM (this process's own high-water mark), not ru_maxrss: Linux carries ru_maxrss over
    # from the parent that forked the process, which here holds both frames already.
    script.write_text(
        "import warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import numpy, pandas, pyarrow.parquet, scipy.special\n"
        "from mlci_lib.drift import detect_drift\n"
        "def hwm():\n"
        "    line = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0]\n"
        "    return int(line.split()[1]) / 1024\n"
        "base = hwm()\n"
        f"detect_drift({str(reference)!r}, {str(current)!r})\n"
        "print(hwm() - base)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
