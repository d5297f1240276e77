"""Reading tabular inputs (CSV, Parquet, JSON Lines, a folder of Parquet) as hostile input.

Every way a table can be wrong becomes an :class:`InputError` that names the file and, where it
applies, the column: a missing or empty file, content that does not match the extension, a
truncated Parquet file, non-UTF-8 text, a missing column, a non-numeric or non-finite value.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError
from mlci_lib.values import shown

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_PARQUET_MAGIC = b"PAR1"


def table_format(path: str | os.PathLike[str]) -> str:
    """The format named by the file's extension (``csv``, ``parquet``, ``jsonl``), or an error."""
    file = Path(path)
    if file.is_dir():
        return "parquet-dir"
    fmt = FORMATS.get(file.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise InputError(
            f"{file}: unknown table format {file.suffix or '(no extension)'!r}",
            hint=f"use one of {known}, or a folder of .parquet files",
        )
    return fmt


def _sniff(file: Path, fmt: str, what: str) -> None:
    with open(file, "rb") as handle:
        head = handle.read(4096)
        handle.seek(max(0, file.stat().st_size - 4))
        tail = handle.read(4)
    is_parquet = head[:4] == _PARQUET_MAGIC
    if fmt == "parquet":
        if not is_parquet:
            raise InputError(
                f"{what} {file} is not a Parquet file (no PAR1 header)",
                hint="check the file, or give it the extension of its real format",
            )
        if tail != _PARQUET_MAGIC:
            raise InputError(
                f"{what} {file} is a truncated Parquet file (no PAR1 footer)", hint="write the file again"
            )
        return
    if is_parquet:
        raise InputError(
            f"{what} {file} holds Parquet data but its extension says {fmt}", hint="rename it to .parquet"
        )
    if b"\0" in head:
        raise InputError(
            f"{what} {file} is binary, not {fmt.upper()} text", hint="check the file and its extension"
        )


def read_table(
    path: str | os.PathLike[str],
    *,
    what: str = "table",
    columns: Sequence[str] | None = None,
    require_rows: bool = True,
) -> "pd.DataFrame":
    """Read a table into a DataFrame; ``columns`` restricts the read and must all exist."""
    import pandas as pd
    import pyarrow as pa

    file = Path(path)
    if not file.exists():
        raise InputError(f"{what} {file} does not exist", hint="check the path")
    fmt = table_format(file)
    if fmt == "parquet-dir":
        parts = sorted(file.glob("*.parquet"))
        if not parts:
            raise InputError(f"{what} folder {file} holds no .parquet files")
        frames = [read_table(p, what=what, columns=columns, require_rows=False) for p in parts]
        frame = pd.concat(frames, ignore_index=True)
        if require_rows and len(frame) == 0:
            raise InputError(f"{what} folder {file} has no rows", hint="check the data export")
        return frame
    if fmt in ("parquet", "csv"):
        table = read_arrow(file, what=what, columns=columns, require_rows=require_rows)
        try:
            # Column by column, each Arrow buffer released once converted: the read then peaks
            # near one copy of the data instead of the Arrow table plus the whole frame.
            return table.to_pandas(self_destruct=True, split_blocks=True)
        except (pa.ArrowInvalid, pa.ArrowException, ValueError, OSError) as exc:
            raise _unreadable(file, fmt, what, exc) from None
    _check_file(file, fmt, what)
    try:
        frame = pd.read_json(file, lines=True, dtype=False, encoding="utf-8-sig")
        if columns is not None:
            _require_names(list(frame.columns), columns, file, what)
            frame = frame[list(columns)]
    except InputError:
        raise
    except UnicodeDecodeError:
        raise InputError(f"{what} {file} is not UTF-8 text", hint="save it as UTF-8") from None
    except (pa.ArrowInvalid, pa.ArrowException, ValueError, OSError) as exc:
        raise _unreadable(file, fmt, what, exc) from None
    if require_rows and len(frame) == 0:
        raise InputError(
            f"{what} {file} has no rows (only a header, or nothing)", hint="check the step that writes it"
        )
    return frame


def read_arrow(
    path: str | os.PathLike[str],
    *,
    what: str = "table",
    columns: Sequence[str] | None = None,
    require_rows: bool = True,
) -> "pa.Table":
    """Read a CSV or Parquet file into an Arrow table, with :func:`read_table`'s checks.

    For callers that want NumPy arrays: Arrow columns convert to them directly, without building
    a DataFrame. Other formats (JSON Lines, a folder of Parquet) are for :func:`read_table`.
    """
    import pyarrow as pa

    file = Path(path)
    if not file.exists():
        raise InputError(f"{what} {file} does not exist", hint="check the path")
    fmt = table_format(file)
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"read_arrow reads CSV and Parquet files, not {fmt}: use read_table")
    _check_file(file, fmt, what)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            if columns is not None:
                schema_names = pq.read_schema(file).names
                _require_names(schema_names, columns, file, what)
            table = pq.read_table(file, columns=list(columns) if columns is not None else None)
        else:
            table = _read_csv(file, columns, what)
    except InputError:
        raise
    except UnicodeDecodeError:
        raise InputError(f"{what} {file} is not UTF-8 text", hint="save it as UTF-8") from None
    except (pa.ArrowInvalid, pa.ArrowException, ValueError, OSError) as exc:
        raise _unreadable(file, fmt, what, exc) from None
    if require_rows and table.num_rows == 0:
        raise InputError(
            f"{what} {file} has no rows (only a header, or nothing)", hint="check the step that writes it"
        )
    return table


class ParquetColumns:
    """A Parquet file read one column at a time: its names and row count up front, with
    :func:`read_table`'s checks, then each column as :func:`read_table` would give it.

    For a command that looks at one column at a time (drift): it never holds the whole table,
    nor an Arrow copy of it, so its memory is the columns it is working on. The footer is read
    once, here; each column is then read from it, on any thread.
    """

    def __init__(self, path: str | os.PathLike[str], *, what: str = "table") -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.file = Path(path)
        self.what = what
        if not self.file.exists():
            raise InputError(f"{what} {self.file} does not exist", hint="check the path")
        _check_file(self.file, "parquet", what)
        try:
            metadata = pq.read_metadata(self.file)
            self._metadata = metadata
            self._schema = metadata.schema.to_arrow_schema()
            self.names: list[str] = list(self._schema.names)
        except (pa.ArrowInvalid, pa.ArrowException, ValueError, OSError) as exc:
            raise _unreadable(self.file, "parquet", what, exc) from None
        twice = next((n for i, n in enumerate(self.names) if n in self.names[:i]), None)
        if twice is not None:
            raise InputError(
                f"{what} {self.file} has two columns named {twice!r}", hint="give each column its own name"
            )
        self.rows: int = metadata.num_rows
        if self.rows == 0:
            raise InputError(
                f"{what} {self.file} has no rows (only a header, or nothing)",
                hint="check the step that writes it",
            )

    def column(self, name: str, *, text_as_levels: bool = False) -> "pd.Series":
        """Column ``name``, converted as in :func:`read_table`.

        ``text_as_levels`` reads a text column as a pandas categorical from the file's own
        dictionary pages: the same values, counted by level without hashing every string again.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        if name not in self.names:
            raise InputError(f"{self.what} {self.file} has no column {name!r}")
        kind = self._schema.field(name).type
        text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        levels = [name] if text and text_as_levels else None
        try:
            # A reader of its own per call, on the footer parsed once: threads read side by side.
            with pq.ParquetFile(self.file, metadata=self._metadata, read_dictionary=levels) as reader:
                table = reader.read(columns=[name])
            return table.to_pandas(self_destruct=True, split_blocks=True)[name]
        except (pa.ArrowInvalid, pa.ArrowException, ValueError, OSError) as exc:
            raise _unreadable(self.file, "parquet", self.what, exc) from None


def _check_file(file: Path, fmt: str, what: str) -> None:
    if file.stat().st_size == 0:
        raise InputError(f"{what} {file} is empty (0 bytes)", hint="check the step that writes it")
    _sniff(file, fmt, what)


def _unreadable(file: Path, fmt: str, what: str, exc: Exception) -> InputError:
    detail = " ".join(str(exc).split())[:200]
    if "utf-8" in detail.lower() or "utf8" in detail.lower():
        return InputError(f"{what} {file} is not UTF-8 text", hint="save it as UTF-8")
    return InputError(f"{what} {file} cannot be read as {fmt.upper()}: {detail}")


#: The texts pandas.read_csv reads as missing by default (pandas._libs.parsers.STR_NA_VALUES), so
#: that a CSV means the same to mlci as to the pandas code that wrote or checks it.
CSV_MISSING_VALUES: tuple[str, ...] = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


def _csv_convert_options(columns: Sequence[str] | None, column_types: Any = None) -> Any:
    import pyarrow.csv as pcsv

    # pandas.read_csv's conventions: its missing-value texts, in text columns too (Arrow's default
    # reads an empty text field as ''), quoted or not; and only True/False spellings as booleans.
    return pcsv.ConvertOptions(
        include_columns=list(columns) if columns is not None else None,
        null_values=list(CSV_MISSING_VALUES),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        true_values=["True", "TRUE", "true"],
        false_values=["False", "FALSE", "false"],
        column_types=column_types,
    )


def _read_csv(file: Path, columns: Sequence[str] | None, what: str) -> "pa.Table":
    """Read a CSV with Arrow, giving the columns pandas.read_csv would give.

    Arrow's reader is several times faster than pandas' own and checks UTF-8 as it goes; its
    type inference differs from pandas' in two ways that change what a check decides, both
    undone here: it turns date-like text into dates and timestamps (pandas keeps text, so a
    suite's strftime and dateutil expectations can run), and it types an all-missing column as
    null (pandas: float64).
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        table = pcsv.read_csv(file, convert_options=_csv_convert_options(columns))
    except Exception as exc:  # Arrow raises ArrowInvalid/KeyError for a missing included column
        text = str(exc)
        if columns is not None and ("include_columns" in text or "not found" in text.lower()):
            _require_names(_csv_header(file), columns, file, what)
        if "Empty CSV file" in text:
            raise InputError(
                f"{what} {file} has no header row", hint="write the column names first"
            ) from None
        raise
    names = table.schema.names
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(
                f"{what} {file} has two columns named {name!r}",
                hint="give every column its own name in the header row",
            )
        seen.add(name)
    retype = {
        field.name: pa.string()
        for field in table.schema
        if pa.types.is_date(field.type) or pa.types.is_timestamp(field.type) or pa.types.is_time(field.type)
    }
    if retype:
        table = pcsv.read_csv(file, convert_options=_csv_convert_options(columns, retype))
    for index, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            table = table.set_column(index, field.name, pa.nulls(table.num_rows, pa.float64()))
        # Arrow falls back to a binary column when a text column is not valid UTF-8.
        elif pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise InputError(
                f"{what} {file} is not UTF-8 text (column {field.name!r})", hint="save it as UTF-8"
            )
    return table


def _csv_header(file: Path) -> list[str]:
    import csv

    # utf-8-sig: spreadsheet tools start a CSV with a byte-order mark, which is not part of the
    # first column's name.
    with open(file, encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


def _require_names(available: Sequence[str], wanted: Sequence[str], file: Path, what: str) -> None:
    missing = [name for name in wanted if name not in available]
    if missing:
        shown = ", ".join(list(available)[:12]) + (" ..." if len(available) > 12 else "")
        raise InputError(
            f"{what} {file} has no column {missing[0]!r}",
            hint=f"its columns are: {shown or '(none)'}",
        )


def require_columns(
    frame: "pd.DataFrame", names: Sequence[str], *, file: str | os.PathLike[str], what: str = "table"
) -> None:
    _require_names([str(c) for c in frame.columns], names, Path(file), what)


def numeric_column(
    frame: "pd.DataFrame",
    name: str,
    *,
    file: str | os.PathLike[str],
    what: str = "table",
    allow_nan: bool = False,
) -> "np.ndarray":
    """Column ``name`` as a float64 array; non-numeric or non-finite values are an InputError."""
    import numpy as np
    import pandas as pd

    require_columns(frame, [name], file=file, what=what)
    series = frame[name]
    values: np.ndarray
    if series.dtype == bool:
        values = series.to_numpy(dtype=np.float64)
        return values
    if not pd.api.types.is_numeric_dtype(series.dtype):
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{what} {file}: column {name!r} is not numeric (row {row + 1} is {shown(series.iloc[row])})",
                hint="write numbers only in this column",
            )
        series = converted
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if not allow_nan:
        finite = np.isfinite(values)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise InputError(
                f"{what} {file}: column {name!r} has a missing or infinite value at row {row + 1}",
                hint="drop or fill those rows before this step",
            )
    return values


#: What :func:`pandas.api.types.infer_dtype` says of a column whose values are of several kinds.
_MIXED_KINDS = {"mixed", "mixed-integer"}


def require_uniform_types(
    frame: "pd.DataFrame", *, file: str | os.PathLike[str], what: str = "table"
) -> None:
    """Raise InputError for a column whose values mix types (e.g. numbers and text in JSON Lines).

    Only ``object`` columns can mix; typed columns (numbers, strings, Arrow types) cannot.
    Integers mixed with floats count as numbers, and missing values are ignored.
    """
    import pandas as pd

    for name in frame.columns:
        series = frame[name]
        if series.dtype != object:
            continue
        if pd.api.types.infer_dtype(series, skipna=True) not in _MIXED_KINDS:
            continue
        values = series.dropna()
        first_type = type(values.iloc[0])
        odd = values.map(lambda v, t=first_type: type(v) is not t)
        row = int(odd.to_numpy().nonzero()[0][0])
        position = int(frame.index.get_loc(values.index[row])) + 1
        first = int(frame.index.get_loc(values.index[0])) + 1
        raise InputError(
            f"{what} {file}: column {str(name)!r} mixes types ({first_type.__name__} at row {first}, "
            f"{type(values.iloc[row]).__name__} at row {position})",
            hint="write one type per column, e.g. quote numbers that are really text",
        )
