"""Benchmark `mlci data check` against a plain Great Expectations 1.x script on the same suite.

Data: a Parquet file of 1,000,000 rows and 20 columns (generated once into bench/.cache/).
Suite: 40 expectations, written as a GX suite JSON that both sides run. Printed: the time to only
read the file, a plain GX script (read with pandas, ephemeral context, validate), and
`check_data` (mlci's read, checks, GX validation, result). Imports are warmed up first, so the
figures compare work, not import time.

    .venv/bin/python bench/data_check.py [--rows 1000000] [--repeat 2]
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
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    from mlci_lib.data import check_data
    from mlci_lib.tables import read_table

    path = make_table(CACHE / f"reference-{args.rows}.parquet", args.rows, seed=1)
    suite_file = CACHE / f"suite-{args.rows}.json"
    suite_file.write_text(json.dumps(suite_json(args.rows)))
    # warm up imports and GX's registries on a small slice
    small = CACHE / "warmup.parquet"
    pd.read_parquet(path).head(1000).to_parquet(small)
    check_data(small, suite_file)
    plain_gx(small, suite_file)

    # Interleaved in alternating order, best of --repeat each: other load on the machine and
    # the order of the runs hit both sides alike.
    read_s = gx_s = mlci_s = float("inf")
    for round_ in range(args.repeat):
        read_s = min(read_s, timed(lambda: read_table(path), 1)[0])
        if round_ % 2:
            mlci_time, result = timed(lambda: check_data(path, suite_file), 1)
            gx_time, gx_results = timed(lambda: plain_gx(path, suite_file), 1)
        else:
            gx_time, gx_results = timed(lambda: plain_gx(path, suite_file), 1)
            mlci_time, result = timed(lambda: check_data(path, suite_file), 1)
        gx_s, mlci_s = min(gx_s, gx_time), min(mlci_s, mlci_time)
    mlci_results = sorted((e.type, e.success, e.unexpected_count) for e in result.expectations)
    same = "same results" if mlci_results == gx_results else "RESULTS DIFFER"
    print(f"data: {args.rows:,} rows x 20 columns, suite of {result.evaluated} expectations ({same})")
    print(f"read only (mlci read_table):         {read_s:7.2f} s")
    print(f"plain GX script (read + validate):   {gx_s:7.2f} s")
    print(f"mlci data check (read + validate):   {mlci_s:7.2f} s")
    print(f"mlci / GX: {mlci_s / gx_s:.3f}  (overhead {100 * (mlci_s / gx_s - 1):+.1f}%)")
    return 0 if same == "same results" else 1


if __name__ == "__main__":
    sys.exit(main())
