"""The Spark session and table reading of ``--engine spark``, on a real local Spark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlci_lib.errors import InputError, UsageError
from mlci_lib.spark.session import SparkSettings
from mlci_lib.spark.tables import read_table


@pytest.mark.parametrize(
    "master", ["local", "local[*]", "local[2]", "spark://h1:7077,h2:7077", "yarn", "sc://localhost:15002"]
)
def test_masters_spark_accepts_are_accepted(master: str) -> None:
    assert SparkSettings.from_options(master).master == master


@pytest.mark.parametrize(
    "master", ["local[0]", "local[x]", "mesos://h:5050", "local[2]; rm -rf /", "sc://h:1\n", ""]
)
def test_other_masters_are_refused_before_a_jvm_starts(master: str) -> None:
    with pytest.raises(UsageError, match="--spark-master"):
        SparkSettings.from_options(master or " ")


def test_conf_must_be_spark_keys_on_one_line() -> None:
    settings = SparkSettings.from_options("local[2]", ["spark.executor.memory=4g"])
    assert settings.effective_conf()["spark.executor.memory"] == "4g"
    assert settings.effective_conf()["spark.ui.enabled"] == "false"
    for bad in ["executor.memory=4g", "spark.x", "spark.x=a\nb"]:
        with pytest.raises(UsageError, match="--spark-conf"):
            SparkSettings.from_options("local[2]", [bad])


def test_user_conf_overrides_the_local_defaults() -> None:
    settings = SparkSettings.from_options("local[2]", ["spark.sql.shuffle.partitions=64"])
    assert settings.effective_conf()["spark.sql.shuffle.partitions"] == "64"
    assert "spark.driver.host" not in SparkSettings.from_options("yarn").effective_conf()


@pytest.mark.parametrize("accuracy", [99, 10_000_001, 1.5, True, "5000"])
def test_a_quantile_accuracy_out_of_range_is_refused_before_spark_is_asked(accuracy: object) -> None:
    from mlci_lib.spark.drift import detect_drift_spark

    # No session at all: the library refuses the setting first, in the CLI option's words.
    with pytest.raises(
        UsageError, match=r"--spark-quantile-accuracy must be a whole number from 100 to 10000000"
    ):
        detect_drift_spark(None, "ref.parquet", "cur.parquet", accuracy=accuracy)  # type: ignore[arg-type]


def test_no_java_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # A fresh process with no java on PATH and no JAVA_HOME: refused before pyspark tries a JVM.
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(Path(sys.executable).parent)
    code = (
        "from mlci_lib.spark.session import spark_session\n"
        "from mlci_lib.errors import MlciError\n"
        "try:\n spark_session()\n"
        "except MlciError as e:\n print(e.one_line()); raise SystemExit(e.exit_code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "needs Java" in done.stdout and len(done.stdout.strip().splitlines()) == 1


@pytest.mark.spark
def test_reads_a_parquet_folder_lazily(spark: object, tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    pd.DataFrame({"a": [1, 2], "b": ["x", None]}).to_parquet(folder / "part-0.parquet")
    pd.DataFrame({"a": [3], "b": ["z"]}).to_parquet(folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    frame = read_table(spark, str(folder))  # type: ignore[arg-type]
    assert frame.count() == 3
    assert sorted(frame.columns) == ["a", "b"]


@pytest.mark.spark
def test_a_folder_whose_files_differ_in_schema_is_refused(spark: object, tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    pd.DataFrame({"a": [1, 2]}).to_parquet(folder / "part-0.parquet")
    pd.DataFrame({"a": ["one"]}).to_parquet(folder / "part-1.parquet")
    with pytest.raises(InputError, match=r"different schemas .*column 'a'"):
        read_table(spark, str(folder))  # type: ignore[arg-type]
    pd.DataFrame({"a": [1], "c": [2]}).to_parquet(folder / "part-1.parquet")
    with pytest.raises(InputError, match="column 'c'"):
        read_table(spark, str(folder))  # type: ignore[arg-type]


@pytest.mark.spark
def test_missing_empty_and_truncated_inputs_are_one_line(spark: object, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_table(spark, str(tmp_path / "nope.parquet"))  # type: ignore[arg-type]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no data files"):
        read_table(spark, str(empty))  # type: ignore[arg-type]
    good = tmp_path / "good.parquet"
    pd.DataFrame({"a": range(1000)}).to_parquet(good)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_table(spark, str(cut))  # type: ignore[arg-type]


@pytest.mark.spark
def test_catalog_tables_are_read_by_name(spark: object) -> None:
    from pyspark.sql import SparkSession

    assert isinstance(spark, SparkSession)
    spark.createDataFrame(pd.DataFrame({"a": [1, 2, 3]})).createOrReplaceTempView("mlci_rows")
    assert read_table(spark, "mlci_rows").count() == 3


@pytest.mark.spark
def test_the_running_session_is_reused_and_a_different_master_refused(spark: object) -> None:
    from mlci_lib.spark.session import spark_session

    assert spark_session(SparkSettings.from_options(None)) is spark
    with pytest.raises(UsageError, match="differs from"):
        spark_session(SparkSettings.from_options("spark://elsewhere:7077"))


def _one_line_error(setup: str, call: str) -> str:
    """Run ``setup`` then ``call`` in a Python process of its own; the mlci error's one line (exit 2)."""
    code = (
        "from mlci_lib.errors import MlciError\n"
        f"{setup}"
        f"try:\n    {call}\n"
        "except MlciError as e:\n    print(e.one_line()); raise SystemExit(e.exit_code)\n"
        "print('no error')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.spark
@pytest.mark.slow
def test_a_session_that_dies_under_the_data_check_is_a_service_error_not_a_verdict(tmp_path: Path) -> None:
    """A driver out of memory stops the SparkContext midway: every later expectation then raises.

    A process of its own (the suite's shared session must live on) runs the real check on a real
    local session whose context is stopped once GX starts validating, as an out-of-memory stops
    it; the command must say the session stopped, in one line, and not pass off the expectations
    it could not evaluate as the data's failures.
    """
    import pandas as pd

    pd.DataFrame({"a": range(50), "b": ["x"] * 50}).to_parquet(tmp_path / "data.parquet")
    suite = tmp_path / "suite.json"
    suite.write_text(
        json.dumps(
            {
                "name": "s",
                "expectations": [
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
                    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0}},
                ],
            }
        )
    )
    code = (
        "import great_expectations.validator.v1_validator as v\n"
        "from mlci_lib.spark.check import check_data_spark\n"
        "from mlci_lib.spark.session import SparkSettings, spark_session\n"
        "spark = spark_session(SparkSettings(master='local[1]'))\n"
        "validate = v.Validator.validate_expectation_suite\n"
        "def stopping(self, *a, **k):\n"
        "    spark.sparkContext.stop()\n"
        "    return validate(self, *a, **k)\n"
        "v.Validator.validate_expectation_suite = stopping\n"
    )
    line = _one_line_error(
        code, f"check_data_spark(spark, {str(tmp_path / 'data.parquet')!r}, {str(suite)!r})"
    )
    assert "the Spark session stopped while checking data" in line and "2 of 2 expectations" in line
    assert "spark.driver.memory" in line


@pytest.mark.spark
@pytest.mark.slow
def test_a_job_on_a_session_stopped_under_it_names_the_session_not_the_input(tmp_path: Path) -> None:
    """The JVM stops its own SparkContext when the driver runs out of memory; Python is not told.

    A process of its own stops the context from the JVM's side, as that handler does, then runs
    drift: the one line must say the session stopped (exit 2), not that Spark could not read the
    inputs.
    """
    import pandas as pd

    for name in ("ref", "cur"):
        pd.DataFrame({"a": range(30)}).to_parquet(tmp_path / f"{name}.parquet")
    code = (
        "from mlci_lib.spark.drift import detect_drift_spark\n"
        "from mlci_lib.spark.session import SparkSettings, spark_session\n"
        "spark = spark_session(SparkSettings(master='local[1]'))\n"
        "spark.sparkContext._jsc.sc().stop()\n"
    )
    line = _one_line_error(
        code,
        f"detect_drift_spark(spark, {str(tmp_path / 'ref.parquet')!r}, {str(tmp_path / 'cur.parquet')!r})",
    )
    assert "the Spark session stopped under the job" in line and "could not read" not in line, line
