"""A GX suite run by mlci decides what GX decides on the frame pandas reads from the same file.

The suite's author wrote it against ``pandas.read_csv`` / ``pandas.read_parquet``; mlci reads files
its own (faster) way, so these tests hold the two readings, and the decisions made on them, equal
on ordinary tables: text ids, dates kept as text, categories, missing values, numbers, booleans.
"""

from __future__ import annotations

import datetime
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlci_lib.data.check import _gx_context, check_data
from mlci_lib.errors import InputError
from mlci_lib.tables import read_table

# -- the reading ------------------------------------------------------------------------------

CSV_CASES = {
    "empty text fields": "id,plan\n1,free\n2,\n3,pro\n",
    "pandas missing texts": "a,b\n1,NA\nN/A,x\nnull,None\nNaN,<NA>\n#N/A,y\n",
    "dates kept as text": "d,ts\n2024-01-05,2024-01-05 10:00:00\n2024-02-29,2024-03-01T00:00:00\n",
    "all missing column": "a,b\n1,\n2,\n",
    "booleans": "a,b,c\nTrue,true,1\nFalse,FALSE,0\n",
    "booleans with a gap": "a\nTrue\n\nFalse\n",
    "quoted numbers": 'a,b\n"1","x"\n"2",""\n',
    "integers with a gap": "a\n1\n\n3\n",
    "byte-order mark": "\ufeffa,b\n1,2\n",
    "floats": "a\n1.5\n-2e3\ninf\n",
    "text that looks numeric in part": "a\n1\nx\n",
}


@pytest.mark.parametrize("text", CSV_CASES.values(), ids=CSV_CASES.keys())
def test_csv_reads_as_pandas_reads_it(tmp_path: Path, text: str) -> None:
    file = tmp_path / "t.csv"
    file.write_bytes(text.encode("utf-8"))
    ours = read_table(file)
    theirs = pd.read_csv(io.BytesIO(text.encode("utf-8")))
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=True)


def test_csv_with_two_columns_of_one_name_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "t.csv"
    file.write_text("a,b,a\n1,2,3\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"t\.csv has two columns named 'a'"):
        read_table(file)


def test_csv_with_a_byte_order_mark_reads_a_named_column(tmp_path: Path) -> None:
    file = tmp_path / "t.csv"
    file.write_bytes("\ufeffscore,label\n0.5,1\n".encode())
    frame = read_table(file, columns=["score"])
    assert list(frame.columns) == ["score"]


# -- the decisions ----------------------------------------------------------------------------


def _table(n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "id": [f"C{i:06d}" for i in range(n)],
            "signup": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
            "plan": rng.choice(["free", "pro", "team"], n).astype(object),
            "age": rng.integers(18, 90, n).astype(float),
            "visits": rng.integers(0, 50, n),
            "spend": np.round(rng.gamma(2.0, 20.0, n), 2),
            "active": rng.choice([True, False], n),
            "note": rng.choice(["a", "bb", "", "ccc"], n).astype(object),
        }
    )
    frame.loc[frame.index[5::37], "age"] = np.nan
    frame.loc[frame.index[7:9], "plan"] = None
    return frame


_SETS: dict[str, list[Any]] = {"plan": ["free", "pro", "team"]}

EXPECTATIONS: list[tuple[str, dict[str, Any]]] = [
    ("expect_column_to_exist", {"column": "plan"}),
    ("expect_column_to_exist", {"column": "missing_column"}),
    ("expect_table_row_count_to_be_between", {"min_value": 10, "max_value": 1000}),
    ("expect_table_column_count_to_equal", {"value": 8}),
    (
        "expect_table_columns_to_match_set",
        {"column_set": ["id", "signup", "plan", "age", "visits", "spend", "active", "note"]},
    ),
    ("expect_column_values_to_not_be_null", {"column": "note"}),
    ("expect_column_values_to_not_be_null", {"column": "plan"}),
    ("expect_column_values_to_not_be_null", {"column": "plan", "mostly": 0.9}),
    ("expect_column_values_to_not_be_null", {"column": "age"}),
    ("expect_column_values_to_be_null", {"column": "age", "mostly": 0.01}),
    ("expect_column_values_to_be_unique", {"column": "id"}),
    ("expect_column_values_to_be_unique", {"column": "note"}),
    ("expect_column_value_lengths_to_be_between", {"column": "note", "min_value": 1}),
    ("expect_column_value_lengths_to_equal", {"column": "id", "value": 7}),
    ("expect_column_values_to_match_strftime_format", {"column": "signup", "strftime_format": "%Y-%m-%d"}),
    ("expect_column_values_to_be_dateutil_parseable", {"column": "signup"}),
    ("expect_column_values_to_match_regex", {"column": "id", "regex": "^C[0-9]{6}$"}),
    ("expect_column_values_to_not_match_regex", {"column": "note", "regex": "^c+$"}),
    ("expect_column_values_to_be_in_set", {"column": "plan", "value_set": _SETS["plan"]}),
    ("expect_column_values_to_be_in_set", {"column": "plan", "value_set": ["free", "pro"]}),
    ("expect_column_values_to_not_be_in_set", {"column": "note", "value_set": [""]}),
    ("expect_column_distinct_values_to_be_in_set", {"column": "plan", "value_set": _SETS["plan"]}),
    ("expect_column_distinct_values_to_equal_set", {"column": "active", "value_set": [True, False]}),
    ("expect_column_most_common_value_to_be_in_set", {"column": "plan", "value_set": ["free"]}),
    ("expect_column_unique_value_count_to_be_between", {"column": "note", "min_value": 4}),
    ("expect_column_proportion_of_unique_values_to_be_between", {"column": "id", "min_value": 0.99}),
    ("expect_column_values_to_be_between", {"column": "visits", "min_value": 0, "max_value": 49}),
    ("expect_column_values_to_be_between", {"column": "age", "min_value": 18, "max_value": 60}),
    ("expect_column_values_to_be_between", {"column": "spend", "min_value": 0, "mostly": 0.95}),
    ("expect_column_mean_to_be_between", {"column": "age", "min_value": 10, "max_value": 80}),
    ("expect_column_median_to_be_between", {"column": "visits", "min_value": 0, "max_value": 100}),
    ("expect_column_stdev_to_be_between", {"column": "age", "min_value": 1, "max_value": 80}),
    ("expect_column_min_to_be_between", {"column": "spend", "min_value": 0}),
    ("expect_column_max_to_be_between", {"column": "visits", "max_value": 40}),
    ("expect_column_sum_to_be_between", {"column": "visits", "min_value": 0}),
    (
        "expect_column_quantile_values_to_be_between",
        {"column": "age", "quantile_ranges": {"quantiles": [0.25, 0.5], "value_ranges": [[0, 60], [0, 80]]}},
    ),
    ("expect_column_values_to_be_of_type", {"column": "age", "type_": "float64"}),
    ("expect_column_values_to_be_of_type", {"column": "active", "type_": "bool"}),
    ("expect_column_values_to_be_in_type_list", {"column": "visits", "type_list": ["int64", "float64"]}),
    ("expect_column_values_to_be_increasing", {"column": "id"}),
    ("expect_column_pair_values_a_to_be_greater_than_b", {"column_A": "age", "column_B": "visits"}),
    ("expect_column_pair_values_to_be_equal", {"column_A": "visits", "column_B": "visits"}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["id", "plan"]}),
    ("expect_select_column_values_to_be_unique_within_record", {"column_list": ["plan", "note"]}),
    ("expect_multicolumn_sum_to_equal", {"column_list": ["visits", "visits"], "sum_total": 0}),
]


def _key(kind: str, kwargs: dict[str, Any]) -> str:
    return kind + json.dumps(kwargs, sort_keys=True, default=str)


def _gx_decisions(frame: pd.DataFrame, expectations: list[tuple[str, dict[str, Any]]]) -> list[bool]:
    """What GX itself decides, used the way its documentation shows (batch.validate)."""
    import great_expectations as gx
    from great_expectations.expectations.registry import get_expectation_impl

    context = _gx_context()
    definition = (
        context.data_sources.add_pandas("p")
        .add_dataframe_asset("d")
        .add_batch_definition_whole_dataframe("w")
    )
    built = [get_expectation_impl(kind)(**kwargs) for kind, kwargs in expectations]
    suite = context.suites.add(gx.ExpectationSuite(name="s", expectations=built))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite).results
    pools: dict[str, list[bool]] = {}
    for result in results:
        config = result.expectation_config
        raised = bool((result.exception_info or {}).get("raised_exception")) or any(
            isinstance(v, dict) and v.get("raised_exception") for v in (result.exception_info or {}).values()
        )
        kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
        pools.setdefault(_key(config.type, kwargs), []).append(bool(result.success) and not raised)
    decisions = []
    for expectation in built:
        kwargs = {k: v for k, v in expectation.configuration.kwargs.items() if k != "batch_id"}
        decisions.append(pools[_key(expectation.expectation_type, kwargs)].pop(0))
    return decisions


def _write(frame: pd.DataFrame, folder: Path, fmt: str) -> tuple[Path, pd.DataFrame]:
    file = folder / f"table.{fmt}"
    if fmt == "csv":
        frame.to_csv(file, index=False)
        return file, pd.read_csv(file)
    frame.to_parquet(file, index=False)
    return file, pd.read_parquet(file)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_suite_decides_what_gx_decides_on_the_frame_pandas_reads(tmp_path: Path, fmt: str) -> None:
    file, pandas_frame = _write(_table(), tmp_path, fmt)
    expected = _gx_decisions(pandas_frame, EXPECTATIONS)
    suite = {"name": "parity", "expectations": [{"type": t, "kwargs": k} for t, k in EXPECTATIONS]}
    result = check_data(file, suite)
    json.dumps(result.to_dict(), allow_nan=False)  # every result value serializes
    ours = [o.success for o in result.expectations]
    differ = [
        f"{kind} {kwargs}: GX {gx_ok}, mlci {ok}"
        for (kind, kwargs), gx_ok, ok in zip(EXPECTATIONS, expected, ours, strict=True)
        if gx_ok != ok
    ]
    assert not differ, "\n".join(differ)
    # Not a vacuous comparison: the table is built so that both outcomes occur.
    assert 5 < sum(expected) < len(expected) - 5


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_suites_decide_as_gx_does(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = _table(int(rng.integers(40, 300)))
    picks = sorted(rng.choice(len(EXPECTATIONS), size=12, replace=False).tolist())
    chosen = [EXPECTATIONS[i] for i in picks]
    fmt = "csv" if seed % 2 else "parquet"
    file, pandas_frame = _write(frame, tmp_path, fmt)
    expected = _gx_decisions(pandas_frame, chosen)
    result = check_data(file, {"name": "g", "expectations": [{"type": t, "kwargs": k} for t, k in chosen]})
    assert [o.success for o in result.expectations] == expected


def test_date_only_parquet_column_is_profiled_as_datetime_and_passes_its_own_suite(tmp_path: Path) -> None:
    from mlci_lib.data import profile_data

    frame = pd.DataFrame({"day": [datetime.date(2024, 1, d) for d in range(1, 29)], "x": np.arange(28.0)})
    file = tmp_path / "dates.parquet"
    frame.to_parquet(file, index=False)
    profile = profile_data(file)
    assert profile["columns"]["day"]["type"] == "datetime"
    result = check_data(file, profile)
    assert result.passed, [o.describe() for o in result.failures]


# -- missing values in CSV text, the same for every command ----------------------------------


def test_empty_csv_text_fields_are_missing_for_check_profile_and_drift(tmp_path: Path) -> None:
    from mlci_lib.data import profile_data
    from mlci_lib.drift import detect_drift

    frame = pd.DataFrame({"plan": ["free", None, "pro", "team"] * 25, "x": np.arange(100.0)})
    csv_file, parquet_file = tmp_path / "t.csv", tmp_path / "t.parquet"
    frame.to_csv(csv_file, index=False)
    frame.to_parquet(parquet_file, index=False)
    suite = {"name": "s", "columns": {"plan": {"nullable": False}}}
    from_csv, from_parquet = check_data(csv_file, suite), check_data(parquet_file, suite)
    assert not from_csv.passed and not from_parquet.passed
    assert [o.unexpected_count for o in from_csv.expectations] == [
        o.unexpected_count for o in from_parquet.expectations
    ]
    failure = next(o for o in from_csv.expectations if not o.success)
    assert "(missing)" in failure.describe() and "None" not in failure.describe()
    assert profile_data(csv_file)["columns"]["plan"] == profile_data(parquet_file)["columns"]["plan"]
    assert "nullable" not in profile_data(csv_file)["columns"]["plan"]
    drift = detect_drift(csv_file, parquet_file)
    plan = next(f for f in drift.features if f.name == "plan")
    assert plan.reference_missing_share == pytest.approx(0.25)
    assert plan.current_missing_share == pytest.approx(0.25)


def test_a_column_missing_everywhere_in_one_file_takes_the_other_files_type(tmp_path: Path) -> None:
    from mlci_lib.drift import detect_drift

    reference = tmp_path / "ref.csv"
    current = tmp_path / "cur.jsonl"
    pd.DataFrame({"x": np.arange(50.0), "y": np.arange(50.0)}).to_csv(reference, index=False)
    current.write_text("".join(f'{{"x": {i}.0, "y": null}}\n' for i in range(50)), encoding="utf-8")
    verdict = detect_drift(reference, current)
    y = next(f for f in verdict.features if f.name == "y")
    assert y.kind == "numeric" and y.current_missing_share == 1.0 and y.drifted


def test_drift_verdict_states_its_conventions(tmp_path: Path) -> None:
    from mlci_lib.drift import detect_drift
    from mlci_lib.drift.stats import CONVENTIONS

    file = tmp_path / "t.csv"
    pd.DataFrame({"x": np.arange(50.0)}).to_csv(file, index=False)
    body = detect_drift(file, file).to_dict()
    assert body["conventions"] == CONVENTIONS
    assert {"numeric_bin_edges", "numeric_bin_sides", "psi_share_floor", "chi_square"} <= set(CONVENTIONS)
    assert "Yates" in CONVENTIONS["chi_square"]


def test_profile_gives_a_few_valued_numeric_column_a_value_set(tmp_path: Path) -> None:
    from mlci_lib.data import profile_data

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"flag": rng.integers(0, 2, 200), "rating": rng.integers(1, 6, 200).astype(float)})
    frame["count"] = rng.integers(0, 1000, 200)
    columns = profile_data(frame)["columns"]
    assert columns["flag"]["allowed"] == [0, 1]
    assert columns["rating"]["allowed"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert "allowed" not in columns["count"]


def test_profile_null_share_bound_leaves_room_for_sampling_noise() -> None:
    from mlci_lib.data import profile_data

    rng = np.random.default_rng(5)
    rows = 100_000
    share = 0.001
    values = np.where(rng.random(rows) < share, np.nan, 1.0)
    bound = profile_data(pd.DataFrame({"x": values}))["columns"]["x"]["max_null_share"]
    observed = float(np.isnan(values).mean())
    # Fresh batches with the same missing rate stay under the bound (about 1 in 700 would not).
    fresh = (rng.random((100, rows)) < share).mean(axis=1)
    assert bound > observed and (fresh <= bound).mean() >= 0.98
