"""Benchmark `mlci data check` against a plain Great Expectations 1.x script and pandera, same checks.

Data: a Parquet file of 1,000,000 rows and 20 columns (generated once into bench/.cache/).
Suite: 40 expectations, written as a GX suite JSON that mlci and GX run; pandera runs the same 40
checks as a DataFrameSchema (lazy, so every check runs). Two measures, interleaved per round,
median and range over the rounds:

- **command**: each side as a fresh process (imports, read, checks, result), as a CI step runs
  it: ``mlci data check`` (native engine, then ``--engine gx``), the plain GX script, the
  pandera script, and the read alone; with each process's peak memory;
- **work**: in this process after warm-up (no import time): the read, mlci native, mlci
  ``engine="gx"``, plain GX, pandera.

The native engine's outcomes are compared with GX's field by field, and pandera's verdict with
both.

    .venv/bin/python bench/data_check.py [--rows 1000000] [--repeat 3]

pandera is not a dependency of mlci: ``pip install 'mlci[bench]'`` (or ``pandera[pandas]``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

CACHE = Path(__file__).resolve().parent / ".cache"
NUMERIC = [f"num_{i}" for i in range(13)]
CATEGORICAL = [f"cat_{i}" for i in range(6)]
LEVELS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def make_table(path: Path, rows: int, seed: int, shift: float = 0.0) -> Path:
    """Write the benchmark table once: 13 numeric, 6 string, 1 bool column (20 in all)."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for i, name in enumerate(NUMERIC):
        if i % 3 == 0:
            columns[name] = rng.integers(0, 1000, rows) + int(shift * 100 * (i % 2))
        else:
            columns[name] = rng.normal(i + shift * (i % 4 == 1), 1 + i / 10, rows)
    for i, name in enumerate(CATEGORICAL):
        weights = np.linspace(1, 2 + i + shift * 4 * (i == 0), len(LEVELS))
        columns[name] = rng.choice(LEVELS, rows, p=weights / weights.sum())
    columns["flag"] = rng.random(rows) < 0.3
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(columns).to_parquet(path.with_suffix(".tmp"), index=False)
    os.replace(path.with_suffix(".tmp"), path)
    return path


def suite_json(rows: int) -> dict:
    expectations = [
        {
            "type": "expect_table_row_count_to_be_between",
            "kwargs": {"min_value": rows // 2, "max_value": rows * 2},
        }
    ]
    for name in NUMERIC:
        expectations.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": name}})
        expectations.append(
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": name, "min_value": -100, "max_value": 2000},
            }
        )
    for name in CATEGORICAL:
        expectations.append(
            {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": name, "value_set": LEVELS}}
        )
    expectations.append(
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "flag", "value_set": [True, False]},
        }
    )
    for name in NUMERIC[:6]:
        expectations.append(
            {
                "type": "expect_column_values_to_be_in_type_list",
                "kwargs": {"column": name, "type_list": ["int64", "float64"]},
            }
        )
    assert len(expectations) == 40
    return {"name": "bench", "expectations": expectations, "meta": {}}


def plain_gx(path: Path, suite_file: Path) -> list[tuple[str, bool, int | None]]:
    import great_expectations as gx

    frame = pd.read_parquet(path)
    suite = gx.ExpectationSuite(**json.loads(suite_file.read_text()))
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    batch = (
        context.data_sources.add_pandas("p")
        .add_dataframe_asset("a")
        .add_batch_definition_whole_dataframe("b")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(suite, result_format="BASIC")
    return sorted(
        (r.expectation_config.type, bool(r.success), r.result.get("unexpected_count")) for r in result.results
    )


def pandera_schema(rows: int):
    """The 40 checks of :func:`suite_json` as a pandera schema."""
    import pandera.pandas as pa

    columns = {}
    for i, name in enumerate(NUMERIC):
        checks = [pa.Check.in_range(-100, 2000)]
        if i < 6:
            checks.append(pa.Check(lambda s: str(s.dtype) in ("int64", "float64"), element_wise=False))
        columns[name] = pa.Column(nullable=False, checks=checks)
    for name in CATEGORICAL:
        columns[name] = pa.Column(nullable=True, checks=pa.Check.isin(LEVELS))
    columns["flag"] = pa.Column(nullable=True, checks=pa.Check.isin([True, False]))
    return pa.DataFrameSchema(columns, checks=[pa.Check(lambda df: rows // 2 <= len(df) <= rows * 2)])


def plain_pandera(path: Path, rows: int) -> bool:
    import pandera.errors

    frame = pd.read_parquet(path)
    try:
        pandera_schema(rows).validate(frame, lazy=True)
    except pandera.errors.SchemaErrors:
        return False
    return True


# -- fresh processes --------------------------------------------------------------------------

_PEAK = (
    "import resource, sys\n"
    "print('peak_mb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)"
)


def command(side: str, path: Path, suite_file: Path, rows: int) -> tuple[float, float]:
    """Seconds and peak memory (MB) of one fresh process doing ``side``."""
    import subprocess

    here = Path(__file__).resolve().parent
    scripts = {
        "read": f"from mlci_lib.tables import read_table; read_table({str(path)!r})",
        "mlci": f"from mlci_lib.cli import main; main(['data', 'check', {str(path)!r}, "
        f"'--suite', {str(suite_file)!r}])",
        "mlci-gx": f"from mlci_lib.cli import main; main(['data', 'check', {str(path)!r}, "
        f"'--suite', {str(suite_file)!r}, '--engine', 'gx'])",
        "gx": f"import sys; sys.path.insert(0, {str(here)!r}); import data_check as b; "
        f"b.plain_gx(b.Path({str(path)!r}), b.Path({str(suite_file)!r}))",
        "pandera": f"import sys; sys.path.insert(0, {str(here)!r}); import data_check as b; "
        f"b.plain_pandera(b.Path({str(path)!r}), {rows})",
    }
    # A script file, not ``python -c``: under -c, importing GX ends the process early (one of
    # pyspark's modules runs its doctest entry point and exits when ``__main__`` is not a file).
    script = CACHE / f"command-{side}.py"
    script.write_text(scripts[side] + "\n" + _PEAK + "\n")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    seconds = time.perf_counter() - start
    peak = [line for line in done.stderr.splitlines() if line.startswith("peak_mb")]
    if not peak:
        raise RuntimeError(f"{side} failed: {done.stderr[-2000:]}")
    return seconds, float(peak[-1].split()[1])


def spread(values: list[float], unit: str = "s") -> str:
    import statistics

    return f"{statistics.median(values):6.2f} {unit} ({min(values):.2f}-{max(values):.2f})"


def timed(fn, repeat: int):
    best, value = float("inf"), None
    for _ in range(repeat):
        value = None
        gc.collect()  # garbage left by the other side must not be collected on this side's clock
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-commands", action="store_true", help="only the in-process work")
    args = parser.parse_args()
    import warnings

    warnings.simplefilter("ignore")
    from mlci_lib.data import check_data
    from mlci_lib.tables import read_table

    path = make_table(CACHE / f"reference-{args.rows}.parquet", args.rows, seed=1)
    suite_file = CACHE / f"suite-{args.rows}.json"
    suite_file.write_text(json.dumps(suite_json(args.rows)))
    # warm up imports and GX's registries on a small slice
    small = CACHE / "warmup.parquet"
    pd.read_parquet(path).head(1000).to_parquet(small)
    check_data(small, suite_file)
    check_data(small, suite_file, engine="gx")
    plain_gx(small, suite_file)
    plain_pandera(small, 1000)

    sides = {
        "read": lambda: read_table(path),
        "mlci native": lambda: check_data(path, suite_file),
        "mlci --engine gx": lambda: check_data(path, suite_file, engine="gx"),
        "plain GX": lambda: plain_gx(path, suite_file),
        "pandera": lambda: plain_pandera(path, args.rows),
    }
    work: dict[str, list[float]] = {side: [] for side in sides}
    values: dict[str, object] = {}
    names = list(sides)
    for round_ in range(args.repeat):
        # Interleaved, the order turned each round: other load on the machine hits all alike.
        for side in names if round_ % 2 == 0 else names[::-1]:
            seconds, values[side] = timed(sides[side], 1)
            work[side].append(seconds)
    native, gx_result = values["mlci native"], values["mlci --engine gx"]
    same = native.to_dict()["expectations"] == gx_result.to_dict()["expectations"]
    mlci_results = sorted((e.type, e.success, e.unexpected_count) for e in native.expectations)
    same_as_plain = mlci_results == values["plain GX"]
    agree = values["pandera"] == native.passed
    print(
        f"data: {args.rows:,} rows x 20 columns, {native.evaluated} checks; "
        f"{args.repeat} rounds, median (range)"
    )
    print(
        f"native outcomes equal to GX's, field by field: {same}; to the plain GX script's: {same_as_plain}; "
        f"pandera's verdict agrees: {agree}"
    )
    print("\nwork in this process, imports warm:")
    import statistics

    for side in sides:
        ratio = statistics.median(work[side]) / statistics.median(work["pandera"])
        print(f"  {side:18} {spread(work[side])}" + (f"  {ratio:.2f}x pandera" if side != "read" else ""))
    if not args.skip_commands:
        commands = {"read": "read", "mlci native": "mlci", "mlci --engine gx": "mlci-gx", "plain GX": "gx",
                    "pandera": "pandera"}  # fmt: skip
        timing: dict[str, list[float]] = {side: [] for side in commands}
        memory: dict[str, list[float]] = {side: [] for side in commands}
        order = list(commands)
        for round_ in range(args.repeat):
            for side in order if round_ % 2 == 0 else order[::-1]:
                seconds, peak = command(commands[side], path, suite_file, args.rows)
                timing[side].append(seconds)
                memory[side].append(peak)
        print("\nfresh process each (imports, read, checks), peak memory:")
        pandera_median = statistics.median(timing["pandera"])
        for side in commands:
            median = statistics.median(timing[side])
            print(
                f"  {side:18} {spread(timing[side])}  {median / pandera_median:.2f}x pandera  "
                f"peak {spread(memory[side], 'MB')}"
            )
    return 0 if same and same_as_plain and agree else 1


if __name__ == "__main__":
    sys.exit(main())
