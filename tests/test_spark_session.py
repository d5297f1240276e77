"""The Spark session and table reading of ``--engine spark``, on a real local Spark."""

from __future__ import annotations

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
