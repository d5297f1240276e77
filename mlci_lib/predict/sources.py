"""Reading the input of ``mlci predict --engine pandas`` in chunks of at most ``chunk_rows`` rows.

Memory stays bounded by the chunk, never the whole table: Parquet is read batch by batch with
pyarrow's ``iter_batches``, without pre-buffering (a row group's pages at most are buffered), a
folder of Parquet files file by file, CSV and JSON Lines through pandas' chunked readers. Only
the columns scoring needs are read (the id and the model's inputs). The id column comes with
each chunk as an Arrow array: from Parquet exactly as stored, so it passes through unchanged.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: Input formats the pandas engine reads in chunks.
CHUNKED_FORMATS = ("parquet", "parquet-dir", "csv", "jsonl")


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Rows ``start`` to ``start + len(frame)`` of the input (0-based), ready to score."""

    start: int
    frame: pd.DataFrame
    ids: pa.Array


def open_chunks(
    path: str | os.PathLike[str], *, id_column: str, columns: Sequence[str] | None, chunk_rows: int
) -> Iterator[Chunk]:
    """The chunks of ``path``; raises InputError (before the first chunk) for a bad input.

    ``columns`` are the model's inputs (None: every column but the id).
    """
    from mlci_lib.tables import table_format

    file = Path(path)
    if not file.exists():
        raise InputError(f"input {file} (option --data) does not exist", hint="check the path")
    fmt = table_format(file)
    if fmt in ("parquet", "parquet-dir"):
        files = _parquet_files(file)
        wanted = _check_parquet(files, id_column, columns)
        return _parquet_chunks(files, id_column, wanted, chunk_rows)
    if file.stat().st_size == 0:
        raise InputError(f"input {file} is empty (0 bytes)", hint="check the step that writes it")
    header = _text_header(file, fmt)
    wanted = require_columns(header, id_column, columns, file)
    return _text_chunks(file, fmt, id_column, wanted, chunk_rows)


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    # The files read_table reads for a folder, in the same order.
    files = sorted(path.glob("*.parquet"))
    if not files:
        raise InputError(f"input folder {path} holds no .parquet files", hint="write Parquet files into it")
    return files


def require_columns(
    available: Sequence[str], id_column: str, columns: Sequence[str] | None, file: Path
) -> list[str]:
    """The columns to read, in the input's order; InputError for the first that is missing."""
    shown = ", ".join(list(available)[:12]) + (" ..." if len(available) > 12 else "")
    if id_column not in available:
        raise InputError(
            f"input {file} has no id column {id_column!r} (option --id-column)",
            hint=f"name the column that identifies each row; its columns are: {shown or '(none)'}",
        )
    if columns is None:
        return list(available)
    missing = [c for c in columns if c not in available]
    if missing:
        raise InputError(
            f"input {file} has no column {missing[0]!r}, which the model takes as input",
            hint=f"the model expects columns {', '.join(columns)}; the input has: {shown or '(none)'}",
        )
    wanted = {id_column, *columns}
    return [c for c in available if c in wanted]


def _check_parquet(files: list[Path], id_column: str, columns: Sequence[str] | None) -> list[str]:
    import pyarrow.parquet as pq

    wanted: list[str] | None = None
    first = None
    for file in files:
        _check_parquet_file(file)
        try:
            schema = pq.read_schema(file)
        except Exception as exc:  # pyarrow's errors for a damaged footer vary by version
            raise InputError(
                f"input {file} cannot be read as Parquet: {_short(exc)}",
                hint="write the file again",
            ) from None
        names = list(schema.names)
        if wanted is None:
            wanted = require_columns(names, id_column, columns, file)
            first = (file, schema)
            continue
        require_columns(names, id_column, columns, file)
        assert first is not None
        for name in wanted:
            a, b = first[1].field(name).type, schema.field(name).type
            if _text_as_one(a) != _text_as_one(b):
                raise InputError(
                    f"input {file.parent}: column {name!r} is {a} in {first[0].name} and {b} in {file.name}",
                    hint="write every file of the folder with the same column types",
                )
    assert wanted is not None
    return wanted


def _text_as_one(kind: Any) -> Any:
    """Text of any Arrow encoding as one type: each chunk becomes pandas text alike."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    return kind


def _check_parquet_file(file: Path) -> None:
    size = file.stat().st_size
    if size == 0:
        raise InputError(f"input {file} is empty (0 bytes)", hint="check the step that writes it")
    with open(file, "rb") as handle:
        head = handle.read(4)
        handle.seek(max(0, size - 4))
        tail = handle.read(4)
    if head != b"PAR1":
        raise InputError(f"input {file} is not a Parquet file (no PAR1 header)", hint="check the file")
    if tail != b"PAR1":
        raise InputError(f"input {file} is a truncated Parquet file (no PAR1 footer)", hint="write it again")


def _parquet_chunks(files: list[Path], id_column: str, wanted: list[str], chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = 0
    for file in files:
        # pre_buffer (pyarrow's default) reads every column chunk of the file ahead: the whole
        # file in memory. Without it, a row group's pages at most are buffered.
        parquet = pq.ParquetFile(file, pre_buffer=False)
        # The schema's pandas metadata restores what pandas wrote (categories, nullable integers).
        metadata = parquet.schema_arrow.metadata
        try:
            for batch in parquet.iter_batches(batch_size=chunk_rows, columns=wanted):
                if batch.num_rows == 0:
                    continue
                table = pa.Table.from_batches([batch]).replace_schema_metadata(metadata)
                yield Chunk(start, table.to_pandas(), batch.column(id_column))
                start += batch.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise InputError(
                f"input {file} cannot be read as Parquet at row {start + 1}: {_short(exc)}",
                hint="write the file again",
            ) from None


def _text_header(file: Path, fmt: str) -> list[str]:
    import csv
    import json

    try:
        with open(file, encoding="utf-8-sig", newline="") as handle:
            if fmt == "csv":
                return next(csv.reader(handle), [])
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    return [str(k) for k in record] if isinstance(record, dict) else []
    except UnicodeDecodeError:
        raise InputError(f"input {file} is not UTF-8 text", hint="save it as UTF-8") from None
    except ValueError as exc:
        raise InputError(f"input {file}: the first line is not a JSON object ({exc})") from None
    return []


def _text_chunks(file: Path, fmt: str, id_column: str, wanted: list[str], chunk_rows: int) -> Iterator[Chunk]:
    import pandas as pd
    import pyarrow as pa

    start = 0
    reader: Any
    try:
        if fmt == "csv":
            reader = pd.read_csv(file, chunksize=chunk_rows, usecols=wanted, encoding="utf-8-sig")
        else:
            reader = pd.read_json(file, lines=True, chunksize=chunk_rows, dtype=False, encoding="utf-8-sig")
        with reader:
            for frame in reader:
                if len(frame) == 0:
                    continue
                if fmt == "jsonl":
                    require_columns(
                        [str(c) for c in frame.columns],
                        id_column,
                        [c for c in wanted if c != id_column],
                        file,
                    )
                    frame = frame[wanted]
                yield Chunk(start, frame.reset_index(drop=True), pa.array(frame[id_column], from_pandas=True))
                start += len(frame)
    except UnicodeDecodeError:
        raise InputError(f"input {file} is not UTF-8 text", hint="save it as UTF-8") from None
    except (ValueError, pa.ArrowException, pd.errors.ParserError) as exc:
        raise InputError(
            f"input {file} cannot be read as {fmt.upper()} after row {start}: {_short(exc)}"
        ) from None


def _short(error: BaseException) -> str:
    return " ".join(str(error).split())[:200]
