"""The request body of ``POST /predict``, turned into a table of rows (a DataFrame, or the ONNX
runtime's :class:`~mlci_lib.models.plain_table.PlainTable`).

Accepted shapes (JSON):

- records: ``[{"a": 1, "b": "x"}, ...]`` or ``{"rows": [...]}`` (also MLflow's
  ``{"dataframe_records": [...]}``);
- column form: ``{"columns": {"a": [1, 2], "b": ["x", "y"]}}``;
- MLflow's split form: ``{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], ...]}}``.

Anything else is a :class:`PayloadError` (HTTP 400) whose message says which shape was expected.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal, overload

if TYPE_CHECKING:
    import pandas as pd

    from mlci_lib.models.plain_table import PlainTable

SHAPES_HINT = (
    'send {"rows": [{"col": value, ...}, ...]}, {"columns": {"col": [values]}} or '
    '{"dataframe_split": {"columns": [...], "data": [[...]]}}'
)


#: Columns one request may name; a model's input is far narrower, and each extra column costs a
#: DataFrame column (200,000 of them took seconds before anything was checked).
DEFAULT_MAX_COLUMNS = 10_000
#: Digits a JSON number may have: float64 holds 17 significant digits, and parsing a number of
#: thousands of digits costs quadratic time.
MAX_NUMBER_CHARS = 100


class PayloadError(ValueError):
    """The body is not a prediction request; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _parse_int(text: str) -> int | float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} digits is longer than {MAX_NUMBER_CHARS}")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} characters is longer than {MAX_NUMBER_CHARS}")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is beyond the range of a 64-bit float")
    return value


def parse_json(body: bytes) -> Any:
    if not body:
        raise PayloadError(f"empty request body: {SHAPES_HINT}")
    try:
        return json.loads(
            body, parse_constant=_refuse_constant, parse_int=_parse_int, parse_float=_parse_float
        )
    except RecursionError:
        raise PayloadError("request body nests JSON too deeply: send rows of plain values") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"request body is not valid JSON: {exc}") from None


def _check_scalar_cells(columns: dict[str, list[Any]]) -> None:
    for name, values in columns.items():
        for row, value in enumerate(values):
            if isinstance(value, (dict, list)):
                raise PayloadError(f"column {name!r}, row {row + 1}: nested values are not allowed")


def _frame(columns: dict[str, list[Any]], pd: Any) -> Any:
    """The cells as JSON gave them, each column ``object``: the model's signature converts them.

    Letting pandas guess instead turns a column of whole numbers with one ``null`` into float64,
    which rounds integers beyond 2**53 before anything can check them. ``pd`` None means the
    table without pandas (the ONNX runtime's), which keeps the cells as they are too.
    """
    _check_scalar_cells(columns)
    if pd is None:
        from mlci_lib.models.plain_table import PlainTable

        return PlainTable(columns)
    return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in columns.items()})


@overload
def rows_to_frame(payload: Any, *, max_columns: int = ..., plain: Literal[False] = ...) -> pd.DataFrame: ...
@overload
def rows_to_frame(payload: Any, *, max_columns: int = ..., plain: Literal[True]) -> PlainTable: ...
@overload
def rows_to_frame(payload: Any, *, max_columns: int = ..., plain: bool) -> pd.DataFrame | PlainTable: ...
def rows_to_frame(payload: Any, *, max_columns: int = DEFAULT_MAX_COLUMNS, plain: bool = False) -> Any:
    """A DataFrame from any accepted payload shape; raises PayloadError otherwise.

    ``plain``: a :class:`~mlci_lib.models.plain_table.PlainTable` instead, which needs no pandas
    (what the ONNX runtime predicts on).
    """
    pd: Any = None
    if not plain:
        import pandas

        pd = pandas

    if isinstance(payload, dict):
        if "rows" in payload or "dataframe_records" in payload:
            records = payload.get("rows", payload.get("dataframe_records"))
            return _records(records, pd, max_columns)
        if "columns" in payload and isinstance(payload["columns"], dict):
            _check_width(len(payload["columns"]), max_columns)
            return _columns(payload["columns"], pd)
        if "dataframe_split" in payload:
            split = payload["dataframe_split"]
            if isinstance(split, dict) and isinstance(split.get("columns"), list):
                _check_width(len(split["columns"]), max_columns)
            return _split(split, pd)
        if "instances" in payload or "inputs" in payload:
            raise PayloadError(f"tensor inputs are not supported: {SHAPES_HINT}")
        raise PayloadError(f"unknown request shape (keys {sorted(payload)[:5]}): {SHAPES_HINT}")
    if isinstance(payload, list):
        return _records(payload, pd, max_columns)
    raise PayloadError(f"request body must be a JSON object or array: {SHAPES_HINT}")


def check_width(payload: Any, max_columns: int = DEFAULT_MAX_COLUMNS) -> None:
    """Refuse a payload naming more than ``max_columns`` columns, before any work on its cells."""
    if isinstance(payload, dict):
        if isinstance(payload.get("columns"), dict):
            _check_width(len(payload["columns"]), max_columns)
            return
        split = payload.get("dataframe_split")
        if isinstance(split, dict) and isinstance(split.get("columns"), list):
            _check_width(len(split["columns"]), max_columns)
            return
        payload = payload.get("rows", payload.get("dataframe_records"))
    if isinstance(payload, list):
        widest = max((len(record) for record in payload if isinstance(record, dict)), default=0)
        _check_width(widest, max_columns)


def _check_width(count: int, max_columns: int) -> None:
    if count > max_columns:
        raise PayloadError(
            f"the request names {count} columns, more than the limit of {max_columns}: "
            "send only the model's input columns"
        )


def _records(records: Any, pd: Any, max_columns: int = DEFAULT_MAX_COLUMNS) -> Any:
    if not isinstance(records, list) or not records:
        raise PayloadError(f"rows must be a non-empty list of objects: {SHAPES_HINT}")
    names: dict[str, None] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise PayloadError(f"row {index + 1} is not a JSON object: {SHAPES_HINT}")
        for key in record:
            names.setdefault(key, None)
        _check_width(len(names), max_columns)
    columns = {name: [record.get(name) for record in records] for name in names}
    return _frame(columns, pd)


def _columns(columns: dict[str, Any], pd: Any) -> Any:
    if not columns:
        raise PayloadError(f"columns must not be empty: {SHAPES_HINT}")
    lengths = set()
    for name, values in columns.items():
        if not isinstance(values, list):
            raise PayloadError(f"column {name!r} must be a list of values")
        lengths.add(len(values))
    if len(lengths) != 1 or 0 in lengths:
        raise PayloadError("all columns must be non-empty lists of the same length")
    return _frame(columns, pd)


def _split(split: Any, pd: Any) -> Any:
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
        raise PayloadError(f"dataframe_split needs 'columns' and 'data': {SHAPES_HINT}")
    names = [str(n) for n in split["columns"]]
    data = split.get("data")
    if not isinstance(data, list) or not data:
        raise PayloadError("dataframe_split.data must be a non-empty list of rows")
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(names):
            raise PayloadError(f"dataframe_split.data row {index + 1} must be a list of {len(names)} values")
    columns = {name: [row[i] for row in data] for i, name in enumerate(names)}
    return _frame(columns, pd)
