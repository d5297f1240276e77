"""Tables read by Spark: Parquet files or folders, Delta tables, catalog tables.

Reading is lazy and stays in Spark: nothing here collects rows to the driver. What can be checked
before Spark plans anything is checked here, so a bad input is one line naming the file, not a
JVM stack trace at the first action: the path exists, a folder holds data files, every Parquet
file of a local folder has the same schema (Spark would silently take one file's schema).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mlci_lib.errors import InputError, ServiceError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}")
_URL = re.compile(r"[a-z][a-z0-9+.\-]*://\S+")


def read_table(spark: SparkSession, source: str, *, what: str = "input") -> DataFrame:
    """A lazy Spark DataFrame over ``source``, after the checks that need no Spark job."""
    text = str(source).strip()
    if not text:
        raise InputError(f"{what}: empty table path", hint="give a Parquet file or folder, or a table name")
    if _URL.fullmatch(text):
        # Object stores and HDFS: only Spark can list them; its errors become one line.
        with spark_errors(f"{what} {text}"):
            return _read_path(spark, text)
    path = Path(text)
    if path.exists():
        _check_local(path, what)
        with spark_errors(f"{what} {path}"):
            return _read_path(spark, str(path.resolve()))
    if _TABLE_NAME.fullmatch(text) and _table_exists(spark, text):
        with spark_errors(f"{what} table {text}"):
            return spark.table(text)
    raise InputError(
        f"{what} {text} does not exist (no such file or folder, and no such table in the Spark catalog)",
        hint="give a Parquet file or folder, a Delta table folder, a storage URL or a catalog table name",
    )


def _read_path(spark: SparkSession, location: str) -> DataFrame:
    if location.rstrip("/").endswith("_delta_log") or _is_delta(location):
        return spark.read.format("delta").load(location)
    return spark.read.parquet(location)


def _is_delta(location: str) -> bool:
    path = Path(location)
    return path.is_dir() and (path / "_delta_log").is_dir()


def _table_exists(spark: SparkSession, name: str) -> bool:
    try:
        return bool(spark.catalog.tableExists(name))
    except Exception:
        return False


def parquet_files(folder: Path) -> list[Path]:
    """The data files of a Parquet folder, as Spark reads them (hidden and ``_`` files skipped)."""
    files = []
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder).parts
        if any(part.startswith((".", "_")) for part in relative):
            continue
        if file.is_file():
            files.append(file)
    return files


def _check_local(path: Path, what: str) -> None:
    if _is_delta(str(path)):
        return
    files = [path] if path.is_file() else parquet_files(path)
    if not files:
        raise InputError(f"{what} {path}: the folder holds no data files", hint="write Parquet files into it")
    import pyarrow.parquet as pq

    first_schema = None
    first_file = files[0]
    for file in files:
        if file.stat().st_size == 0:
            raise InputError(f"{what} {file} is empty", hint="remove it or write the file again")
        try:
            schema = pq.read_schema(file)
        except Exception as error:
            raise InputError(
                f"{what} {file} is not a readable Parquet file ({_short(error)})",
                hint="write the file again; Spark reads Parquet files, folders of them, or Delta tables",
            ) from None
        if first_schema is None:
            first_schema = schema
            continue
        difference = _schema_difference(first_schema, schema)
        if difference:
            raise InputError(
                f"{what} {path}: {file.name} and {first_file.name} have different schemas ({difference})",
                hint="write every file of the folder with the same columns and types",
            )


def _schema_difference(first: object, other: object) -> str | None:
    import pyarrow as pa

    assert isinstance(first, pa.Schema) and isinstance(other, pa.Schema)
    a = {f.name: f.type for f in first}
    b = {f.name: f.type for f in other}
    for name in a:
        if name not in b:
            return f"column {name!r} is missing from one"
    for name in b:
        if name not in a:
            return f"column {name!r} is only in one"
    for name, kind in a.items():
        if kind != b[name] and not _same_kind(kind, b[name]):
            return f"column {name!r} is {kind} in one and {b[name]} in the other"
    return None


def _same_kind(a: object, b: object) -> bool:
    # Dictionary-encoded strings, large strings and strings are one Spark type.
    import pyarrow as pa
    import pyarrow.types as t

    def base(kind: object) -> object:
        assert isinstance(kind, pa.DataType)
        if t.is_dictionary(kind):
            kind = kind.value_type
        if t.is_large_string(kind) or t.is_string_view(kind):
            return pa.string()
        return kind

    return bool(base(a) == base(b))


@contextlib.contextmanager
def spark_errors(what: str) -> Iterator[None]:
    """Spark's analysis and runtime errors as one :class:`InputError` line naming ``what``.

    Unless the session itself stopped under the job (a driver out of memory stops it): then the
    input is not to blame, and the line is a :class:`ServiceError` that says so.
    """
    from mlci_lib.spark.session import STOPPED_HINT, session_stopped

    try:
        yield
    except InputError:
        raise
    except Exception as error:
        module = type(error).__module__
        if not module.startswith(("pyspark", "py4j", "grpc")):  # grpc: Spark Connect's transport
            raise
        if session_stopped():
            raise ServiceError(
                f"{what}: the Spark session stopped under the job ({_short(error)})",
                hint=STOPPED_HINT,
            ) from None
        raise InputError(
            f"{what}: Spark could not read it ({_short(error)})",
            hint="check the path, its format and its schema",
        ) from None


def _short(error: BaseException) -> str:
    for line in str(error).splitlines():
        line = line.strip()
        if line:
            return line[:240]
    return type(error).__name__
