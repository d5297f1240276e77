"""``--engine spark`` against ``--engine pandas`` on the same files, on a real local Spark.

Each test covers one command through the CLI in-process (so the session's one JVM is reused),
comparing the two engines: verdicts equal, counts and exact statistics equal, approximate ones
within the bounds the Spark engine states.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlci_lib.cli import main
from mlci_lib.runner import CiRunner
from tests.helpers.components import REPO_ROOT

pytestmark = pytest.mark.spark

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "data"


def run(argv: list[str], tmp_path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {
        "MLCI_OUTPUT_FILE": str(tmp_path / "outputs.txt"),
        "MLCI_SUMMARY_FILE": str(tmp_path / "summary.md"),
    }
    code = main(argv, runner=CiRunner(env, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def _drift_frames(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    rng = np.random.default_rng(7)

    def frame(n: int, shift: float) -> pd.DataFrame:
        x = rng.normal(shift, 1, n)
        x[rng.random(n) < 0.05] = np.nan
        plan = pd.Series(rng.choice(["free", "pro", "team", "edu"], n, p=[0.4, 0.3, 0.2, 0.1]))
        return pd.DataFrame(
            {
                "x": x,
                "rating": rng.integers(1, 6, n),
                "plan": plan.where(rng.random(n) > 0.02),
                "churned": rng.random(n) < 0.3 + shift,
                "seen": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
            }
        )

    ref, cur = frame(6_000, 0.0), frame(5_000, 0.15)
    cur.loc[:40, "plan"] = "enterprise"  # a level the reference never had
    ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    ref.to_parquet(ref_path)
    # The current data as a folder of two Parquet files, as Spark jobs write it.
    cur_path.mkdir()
    cur.iloc[:2_000].to_parquet(cur_path / "part-0.parquet")
    cur.iloc[2_000:].to_parquet(cur_path / "part-1.parquet")
    return ref_path, cur_path, ref


def _pandas_edges(ref: pd.DataFrame, name: str, bins: int) -> list[float]:
    """The pandas engine's bin edges (see mlci_lib.drift.stats.CONVENTIONS)."""
    values = ref[name]
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        values = values.astype("datetime64[ns]").astype("int64").astype(float)
    array = np.sort(values.to_numpy(dtype=float))
    array = array[~np.isnan(array)]
    return np.unique(array[[(k * len(array)) // bins for k in range(1, bins)]]).tolist()


def test_drift_statistics_match_the_pandas_engine(spark: Any, tmp_path: Path) -> None:
    from mlci_lib.drift.gate import DriftConfig, detect_drift
    from mlci_lib.spark.aggregates import numeric_value, quantiles
    from mlci_lib.spark.drift import detect_drift_spark

    ref_path, cur_path, ref = _drift_frames(tmp_path)
    config = DriftConfig(max_levels=3)  # team and edu's reference levels: edu goes to (other)
    pandas_verdict = detect_drift(ref_path, cur_path, config=config)
    numeric = ["x", "rating", "seen"]
    edges = {name: _pandas_edges(ref, name, config.bins) for name in numeric}
    same_bins = detect_drift_spark(spark, ref_path, cur_path, config=config, bin_edges=edges)
    expected = {f.name: f for f in pandas_verdict.features}
    assert same_bins.passed == pandas_verdict.passed
    assert same_bins.drifted_features == pandas_verdict.drifted_features
    assert (same_bins.reference_rows, same_bins.current_rows) == (6_000, 5_000)
    for feature in same_bins.features:
        want = expected[feature.name]
        # Counts are exact: on the same bins every bucket statistic is the pandas engine's, bit for bit.
        assert feature.psi == want.psi, feature.name
        assert feature.js_distance == want.js_distance, feature.name
        assert feature.chi2_p_value == want.chi2_p_value and feature.chi2_statistic == want.chi2_statistic
        assert feature.reference_missing_share == want.reference_missing_share
        assert feature.current_missing_share == want.current_missing_share
        assert feature.unseen_levels == want.unseen_levels and feature.unseen_share == want.unseen_share
        if feature.kind == "numeric":
            # KS on the grid: the exact statistic lies in [D, D + bound], the bound stated per feature.
            assert feature.ks_statistic is not None and feature.ks_error_bound is not None
            assert want.ks_statistic is not None
            assert (
                feature.ks_statistic - 1e-12
                <= want.ks_statistic
                <= feature.ks_statistic + feature.ks_error_bound
            )
            assert feature.ks_error_bound < 0.005
    # A column of five integer values: the grid holds every value, so KS is exact.
    rating = next(f for f in same_bins.features if f.name == "rating")
    assert rating.ks_error_bound == 0.0 and rating.ks_statistic == pytest.approx(
        expected["rating"].ks_statistic
    )
    # Quantiles within the stated bound: each edge's rank is within rows / accuracy of the exact one.
    accuracy = 200
    frame = spark.read.parquet(str(ref_path))
    types = {f.name: f.dataType for f in frame.schema.fields}
    probabilities = [k / 10 for k in range(1, 10)]
    found = quantiles(frame, {"x": numeric_value("x", types["x"])}, probabilities, accuracy)["x"]
    values = np.sort(ref["x"].dropna().to_numpy())
    for p, edge in zip(probabilities, found, strict=True):
        rank = np.searchsorted(values, edge, side="right")
        assert abs(rank - p * len(values)) <= len(values) / accuracy + 1
    # (The CLI's drift on Spark, its own bins and the bounds it states: tests/test_spark_connect.py.)


def test_bucket_counts_equal_numpy_on_ties_zeros_and_infinities(spark: Any) -> None:
    from mlci_lib.spark.aggregates import bucket_counts, numeric_value

    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=4_000), 1)  # ties at every edge, and -0.0 from rounding
    x[:40], x[40:42], x[42] = np.nan, np.inf, -np.inf
    frame = pd.DataFrame({"x": x, "y": rng.integers(0, 5, 4_000).astype(float)})
    assert (np.signbit(x) & (x == 0)).any()
    table = spark.createDataFrame(frame)
    types = {f.name: f.dataType for f in table.schema.fields}
    edges = sorted({float(e) for e in np.round(np.linspace(-2, 2, 17), 1)})  # 0.0 among them
    lists = {
        "x": [("left", edges), ("right", edges), ("left", [])],
        "y": [("left", [1.0, 2.0, 3.0]), ("right", [0.0, 4.0, float(np.finfo(float).max)])],
    }
    found = bucket_counts(table, {n: numeric_value(n, types[n]) for n in types}, lists)
    for name, wanted in lists.items():
        values = frame[name].dropna().to_numpy()
        for (side, e), counts in zip(wanted, found[name], strict=True):
            # The pandas engine's bins: np.searchsorted, closed on the left (-0.0 equal to 0.0).
            where = np.searchsorted(np.asarray(e), values, side="right" if side == "left" else "left")
            assert counts.tolist() == np.bincount(where, minlength=len(e) + 1).tolist(), (name, side)


def test_profile_and_data_check_match_the_pandas_engine(spark: Any, tmp_path: Path) -> None:
    from mlci_lib.tables import read_table

    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    read_table(FIXTURES / "customers.csv", what="data").to_parquet(good)
    read_table(FIXTURES / "customers_bad.csv", what="data").to_parquet(bad)
    suite = FIXTURES / "customers.suite.yaml"
    results: dict[str, dict[str, Any]] = {}
    for engine in ("pandas", "spark"):
        for name, data in (("good", good), ("bad", bad)):
            result = tmp_path / f"{name}-{engine}.json"
            check_engine = engine
            code, _, err = run(
                ["data", "check", str(data), "--suite", str(suite), "--engine", check_engine,
                 "--result-file", str(result)],
                tmp_path,
            )  # fmt: skip
            assert code == (0 if name == "good" else 1), err
            results[f"{name}-{engine}"] = json.loads(result.read_text())
        (tmp_path / engine).mkdir()
        profiled = tmp_path / engine / "profile.yaml"
        code, _, err = run(["data", "profile", str(good), "-o", str(profiled), "--engine", engine], tmp_path)
        assert code == 0, err
    assert (tmp_path / "spark" / "profile.yaml").read_bytes() == (
        tmp_path / "pandas" / "profile.yaml"
    ).read_bytes()
    for name in ("good", "bad"):
        pandas_result, spark_result = results[f"{name}-pandas"], results[f"{name}-spark"]
        assert spark_result["passed"] == pandas_result["passed"]
        assert (spark_result["rows"], spark_result["failed"]) == (
            pandas_result["rows"],
            pandas_result["failed"],
        )
        assert "on Spark" in spark_result["engine"]
        for mine, theirs in zip(spark_result["expectations"], pandas_result["expectations"], strict=True):
            assert (mine["type"], mine["column"], mine["kwargs"]) == (
                theirs["type"],
                theirs["column"],
                theirs["kwargs"],
            )
            assert mine["success"] == theirs["success"], mine
            if mine["type"] != "expect_column_values_to_be_in_type_list":
                # (GX checks a Spark column's type once, with no per-value count; pandas counts values.)
                assert mine["unexpected_count"] == theirs["unexpected_count"], mine
    # The profile written by Spark is a suite the good data passes on Spark too.
    code, _, err = run(
        [
            "data",
            "check",
            str(good),
            "--suite",
            str(tmp_path / "spark" / "profile.yaml"),
            "--engine",
            "spark",
        ],
        tmp_path,
    )
    assert code == 0, err


def _predictions(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    n = 4000
    labels = rng.integers(0, 3, n)
    candidate = np.where(rng.random(n) < 0.8, labels, rng.integers(0, 3, n))
    baseline = np.where(rng.random(n) < 0.78, labels, rng.integers(0, 3, n))
    segment = rng.choice(["web", "store"], n, p=[0.7, 0.3])
    cand_path, base_path = tmp_path / "candidate.parquet", tmp_path / "baseline.parquet"
    pd.DataFrame(
        {"id": np.arange(n), "label": labels, "prediction": candidate, "segment": segment}
    ).to_parquet(cand_path)
    # The baseline in another row order: rows join on the id.
    order = rng.permutation(n)
    base = pd.DataFrame({"id": np.arange(n)[order], "label": labels[order], "prediction": baseline[order]})
    base.to_parquet(base_path)
    return cand_path, base_path


def test_gate_verdict_from_spark_counts_equals_the_pandas_verdict(spark: Any, tmp_path: Path) -> None:
    cand, base = _predictions(tmp_path)
    argv = [
        "gate", "--candidate", str(cand), "--baseline", str(base),
        "--rule", "accuracy max-drop=0.01", "--rule", "f1_macro min=0.5",
        "--rule", "slice:recall_macro min=0.7", "--slice-column", "segment", "--resamples", "400",
    ]  # fmt: skip
    verdicts = {}
    for engine in ("pandas", "spark"):
        path = tmp_path / f"verdict-{engine}.json"
        code, _, err = run([*argv, "--engine", engine, "--verdict-file", str(path)], tmp_path)
        verdicts[engine] = (code, json.loads(path.read_text()))
    (code_pandas, pandas_verdict), (code_spark, spark_verdict) = verdicts["pandas"], verdicts["spark"]
    assert code_spark == code_pandas
    notes = spark_verdict.pop("notes")
    assert any("row types on Spark" in note for note in notes)
    assert notes[:-1] == pandas_verdict.pop("notes")
    # Outcomes, intervals, counts, slices, provenance: the same verdict, field by field.
    assert spark_verdict == pandas_verdict
    assert (
        spark_verdict["rows"] == 4000
        and spark_verdict["counts"]["pass"] + spark_verdict["counts"]["fail"] > 0
    )

    # Metrics that need every row's score are refused on counts, in one line.
    code, _, err = run(
        ["gate", "--candidate", str(cand), "--rule", "roc_auc min=0.5", "--engine", "spark"], tmp_path
    )
    assert code == 2 and "--engine pandas" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["drift", "--reference", "{missing}", "--current", "{ref}", "--engine", "spark"], "does not exist"),
        (["drift", "--reference", "{ref}", "--current", "{mixed}", "--engine", "spark"], "different schemas"),
        (["drift", "--reference", "{ref}", "--current", "{ref}", "--engine", "spark",
          "--spark-quantile-accuracy", "10"], "--spark-quantile-accuracy"),
        (["drift", "--reference", "{ref}", "--current", "{ref}", "--spark-master", "local[2]"],
         "--engine spark"),
        (["data", "profile", "{mixed}", "-o", "{out}", "--engine", "spark"], "different schemas"),
        (["data", "check", "{missing}", "--suite", "{suite}", "--engine", "spark"], "does not exist"),
        (["gate", "--candidate", "{ref}", "--rule", "accuracy min=0.5", "--engine", "spark"],
         "no column 'prediction'"),
    ],
    ids=["missing-path", "folder-schemas-differ", "accuracy-out-of-range", "spark-option-on-pandas",
         "profile-schemas-differ", "check-missing-path", "gate-missing-column"],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(spark: Any, tmp_path: Path, argv: list[str], message: str) -> None:
    ref = tmp_path / "ref.parquet"
    pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [0, 1, 0]}).to_parquet(ref)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(mixed / "a.parquet")
    pd.DataFrame({"x": ["one", "two"]}).to_parquet(mixed / "b.parquet")
    paths = {
        "ref": ref, "mixed": mixed, "missing": tmp_path / "nope.parquet", "out": tmp_path / "s.yaml",
        "suite": FIXTURES / "customers.suite.yaml",
    }  # fmt: skip
    code, _, err = run([a.format(**{k: str(v) for k, v in paths.items()}) for a in argv], tmp_path)
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_without_java_the_spark_engine_is_one_line_exit_2(tmp_path: Path) -> None:
    ref = tmp_path / "ref.parquet"
    pd.DataFrame({"x": [1.0, 2.0, 3.0]}).to_parquet(ref)
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME" and not k.startswith(("MLCI_", "GITHUB_"))}
    env["PATH"] = str(Path(sys.executable).parent)
    done = subprocess.run(
        [sys.executable, "-m", "mlci_lib", "drift", "--reference", str(ref), "--current", str(ref),
         "--engine", "spark"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "needs Java" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
