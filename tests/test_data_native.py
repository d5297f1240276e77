"""The native data-check engine against Great Expectations itself: the same outcome, field by field.

Every suite the tests use (the fixtures, the examples, the parity list of ``test_gx_parity``, a
profiled suite) and generated suites on generated frames (NaN, None, text, numbers stored as
text, object columns with both None and NaN, nullable dtypes) run twice, with ``engine="pandas"`` and with
``engine="gx"``; the outcomes (success, counts, shares, unexpected samples, observed values,
exceptions) must be equal. The tests also check that the native engine answered most of them
itself, and that GX is not imported when it answers all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlci_lib.data import check_data, load_suite, profile_data
from mlci_lib.data.native import NATIVE_TYPES
from tests.test_gx_parity import EXPECTATIONS, _table

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "data"


Outcomes = list[dict[str, Any]]


def _both(data: Any, suite: Any, sample_size: int = 5) -> tuple[Outcomes, Outcomes, str]:
    native = check_data(data, suite, engine="pandas", sample_size=sample_size)
    gx = check_data(data, suite, engine="gx", sample_size=sample_size)
    assert gx.engine.startswith("Great Expectations")
    ours = list(native.to_dict()["expectations"])
    theirs = list(gx.to_dict()["expectations"])
    assert (native.passed, native.failed) == (gx.passed, gx.failed)
    return ours, theirs, native.engine


def _assert_same(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    pairs = zip(ours, theirs, strict=True)
    differ = [f"{a['type']} {a['kwargs']}:\n  native {a}\n  gx     {b}" for a, b in pairs if a != b]
    assert not differ, "\n".join(differ)


def _native_share(suite: Any) -> float:
    loaded = load_suite(suite)
    return sum(e.type in NATIVE_TYPES for e in loaded.expectations) / len(loaded.expectations)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("data", "suite"),
    [
        (FIXTURES / "customers.csv", FIXTURES / "customers.suite.yaml"),
        (FIXTURES / "customers_bad.csv", FIXTURES / "customers.suite.yaml"),
        (FIXTURES / "customers_bad.csv", REPO / "examples" / "data.suite.yaml"),
        (FIXTURES / "customers.csv", REPO / "examples" / "data.suite.yaml"),
    ],
    ids=["fixture-good", "fixture-bad", "example-on-bad", "example-on-good"],
)
def test_the_suites_of_the_tests_get_gx_outcomes(data: Path, suite: Path) -> None:
    ours, theirs, _engine = _both(data, suite)
    _assert_same(ours, theirs)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_parity_list_gets_gx_outcomes(tmp_path: Path, fmt: str) -> None:
    frame = _table()
    file = tmp_path / f"table.{fmt}"
    frame.to_csv(file, index=False) if fmt == "csv" else frame.to_parquet(file, index=False)
    suite = {"name": "parity", "expectations": [{"type": t, "kwargs": k} for t, k in EXPECTATIONS]}
    ours, theirs, engine = _both(file, suite)
    _assert_same(ours, theirs)
    assert "expectations on Great Expectations" in engine  # a mixed suite: both engines answered


@pytest.mark.slow
def test_a_profiled_suite_gets_gx_outcomes(tmp_path: Path) -> None:
    reference = _table(300)
    suite = profile_data(reference, name="profiled")
    drifted = _table(200)
    drifted = drifted.assign(age=drifted.age * 1.5, plan=drifted.plan.where(drifted.index % 9 > 0, "gold"))
    for frame in (reference, drifted):
        ours, theirs, _engine = _both(frame, suite)
        _assert_same(ours, theirs)


# -- generated frames and suites ------------------------------------------------------------


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    def holes(values: Any, share: float) -> Any:
        values = np.asarray(values, dtype=object)
        values[rng.random(n) < share] = None
        return values

    floats = rng.normal(50, 20, n)
    floats[rng.random(n) < 0.1] = np.nan
    words = rng.choice(["alpha", "beta", "gamma", "delta", "", "x1", "Beta"], n)
    return pd.DataFrame(
        {
            "f": floats,
            "i": rng.integers(-5, 100, n),
            "small": rng.integers(0, 5, n).astype("int32"),
            "nullable": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 9, n)), dtype="Int64"),
            "word": pd.Series(holes(words, 0.08), dtype="str"),
            "text_numbers": holes(rng.integers(0, 30, n).astype(str), 0.05),
            # Text whose missing values are both None and NaN (mlci refuses columns mixing types).
            "mixed": np.where(rng.random(n) < 0.05, np.nan, holes(rng.choice(["a", "b", "ab"], n), 0.05)),
            "flag": rng.random(n) < 0.3,
            "code": [f"C{v:04d}" if v % 17 else f"c{v}" for v in rng.integers(0, 3000, n)],
            "dup": rng.integers(0, n // 2 + 1, n),
            "f32": rng.normal(0, 1, n).astype("float32"),
        }
    )


def _bound(rng: np.random.Generator, column: pd.Series) -> Any:
    values = pd.to_numeric(column, errors="coerce").dropna()
    if values.empty or rng.random() < 0.1:
        return None
    value = float(rng.choice(values.to_numpy())) + float(rng.choice([-1.0, 0.0, 0.5]))
    return int(value) if rng.random() < 0.5 else value


TYPE_NAMES = [
    "int64", "float64", "str", "object", "int", "float", "bool",
    "Int64Dtype", "StringDtype", "int32", "float32",
]  # fmt: skip


def _generated(rng: np.random.Generator, frame: pd.DataFrame) -> list[dict[str, Any]]:
    numeric = ["f", "i", "small", "nullable", "dup", "f32"]
    names = [*frame.columns, "absent"]
    out: list[dict[str, Any]] = []
    for _ in range(40):
        kind = str(rng.choice(sorted(NATIVE_TYPES)))
        column = str(rng.choice(numeric if "mean" in kind or "min" in kind or "max" in kind else names))
        kwargs: dict[str, Any] = {"column": column}
        if rng.random() < 0.4:
            kwargs["mostly"] = float(rng.choice([0.5, 0.8, 0.9, 0.95, 0.99]))
        series = frame[column] if column in frame.columns else frame["f"]
        if kind == "expect_table_row_count_to_be_between":
            kwargs = {"min_value": int(rng.integers(0, 300)), "max_value": int(rng.integers(100, 400))}
            if kwargs["min_value"] > kwargs["max_value"]:
                kwargs["min_value"], kwargs["max_value"] = kwargs["max_value"], kwargs["min_value"]
        elif kind == "expect_column_to_exist":
            kwargs = {"column": column}
        elif kind in (
            "expect_column_values_to_be_between",
            "expect_column_mean_to_be_between",
            "expect_column_min_to_be_between",
            "expect_column_max_to_be_between",
            "expect_column_value_lengths_to_be_between",
        ):
            if "values" not in kind and "lengths" not in kind:
                kwargs.pop("mostly", None)
            if "lengths" in kind:
                low, high = int(rng.integers(0, 3)), int(rng.integers(2, 7))
            else:
                low, high = _bound(rng, series), _bound(rng, series)
            if low is None and high is None:
                low = 0
            if low is not None and high is not None and low > high:
                low, high = high, low
            kwargs.update({"min_value": low, "max_value": high})
            if rng.random() < 0.3:
                kwargs["strict_min"] = True
            if rng.random() < 0.3:
                kwargs["strict_max"] = True
        elif kind == "expect_column_values_to_be_in_set":
            pool = [v for v in series.dropna().unique().tolist()[:8]] or [1]
            chosen = [pool[int(k)] for k in rng.choice(len(pool), size=max(1, len(pool) - 1), replace=False)]
            kwargs["value_set"] = [v.item() if hasattr(v, "item") else v for v in chosen]
        elif kind == "expect_column_values_to_match_regex":
            kwargs["regex"] = str(rng.choice(["^C[0-9]{4}$", "a", "^[a-z]+$", "[0-9]", "^$"]))
        elif kind == "expect_column_value_lengths_to_equal":
            kwargs["value"] = int(rng.integers(0, 6))
        elif kind == "expect_column_values_to_be_in_type_list":
            kwargs["type_list"] = [str(t) for t in rng.choice(TYPE_NAMES, size=2, replace=False)]
        elif kind == "expect_column_quantile_values_to_be_between":
            kwargs.pop("mostly", None)
            picked = rng.choice([0.05, 0.25, 0.5, 0.75, 0.95], size=2, replace=False)
            quantiles = sorted(float(q) for q in picked)
            ranges = []
            for _q in quantiles:
                low, high = _bound(rng, series), _bound(rng, series)
                if low is not None and high is not None and low > high:
                    low, high = high, low
                ranges.append([low, high])
            kwargs["quantile_ranges"] = {"quantiles": quantiles, "value_ranges": ranges}
        out.append({"type": kind, "kwargs": kwargs})
    return out


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_generated_suites_on_generated_frames_get_gx_outcomes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = _frame(rng, int(rng.integers(30, 250)))
    suite = {"name": f"generated-{seed}", "expectations": _generated(rng, frame)}
    ours, theirs, _engine = _both(frame, suite, sample_size=int(rng.integers(0, 8)))
    _assert_same(ours, theirs)
    assert sum(not e["success"] for e in theirs) >= 3 and sum(e["success"] for e in theirs) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_generated_frames_read_from_files_get_gx_outcomes(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(11)
    frame = _frame(rng, 200).drop(columns=["mixed"])  # a file holds one type per column
    file = tmp_path / f"data.{fmt}"
    frame.to_csv(file, index=False) if fmt == "csv" else frame.to_parquet(file, index=False)
    suite = {"name": "file", "expectations": _generated(rng, frame)}
    ours, theirs, _engine = _both(file, suite)
    _assert_same(ours, theirs)


@pytest.mark.slow
def test_a_compact_suite_runs_without_importing_gx(tmp_path: Path) -> None:
    data, suite = FIXTURES / "customers_bad.csv", FIXTURES / "customers.suite.yaml"
    script = (
        "import sys, json\n"
        "from mlci_lib.data import check_data\n"
        f"r = check_data({str(data)!r}, {str(suite)!r})\n"
        "gx = 'great_expectations' in sys.modules\n"
        "print(json.dumps({'gx': gx, 'engine': r.engine, 'failed': r.failed}))\n"
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["gx"] is False, answer
    assert answer["engine"].startswith("mlci native engine") and answer["failed"] > 0
    assert _native_share(FIXTURES / "customers.suite.yaml") == 1.0


def test_an_unknown_engine_is_an_input_error() -> None:
    from mlci_lib.errors import InputError

    with pytest.raises(InputError, match="unknown data check engine 'spark2'"):
        check_data(FIXTURES / "customers.csv", FIXTURES / "customers.suite.yaml", engine="spark2")
