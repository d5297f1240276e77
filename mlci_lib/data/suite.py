"""Expectation suites: Great Expectations JSON as GX writes it, and mlci's compact YAML.

Both load into one :class:`Suite`, a list of GX expectation configurations (``type`` and
``kwargs``). The compact YAML compiles to GX expectations without importing GX:

.. code-block:: yaml

    name: churn-training
    table:
      rows: {min: 1000, max: 5000000}     # expect_table_row_count_to_be_between
      required_columns: [customer_id]     # expect_column_to_exist, one per column
    columns:
      age:
        type: int                         # int | float | number | string | bool | datetime
        nullable: false                   # or max_null_share: 0.05
        min: 0                            # expect_column_values_to_be_between
        max: 120
      plan:
        allowed: [free, pro, team]        # expect_column_values_to_be_in_set
      customer_id:
        unique: true
        regex: '^C[0-9]{6}$'
    expectations:                         # any other GX 1.x expectation, as GX writes it
      - type: expect_column_mean_to_be_between
        kwargs: {column: age, min_value: 30, max_value: 50}

Suites of GX 0.x (``expectation_type``, ``expectation_suite_name``) load too.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlci_lib.errors import ConfigError

#: GX type names per compact type, for ``expect_column_values_to_be_in_type_list`` on pandas.
TYPE_LISTS: dict[str, list[str]] = {
    "int": [
        *(f"int{b}" for b in (8, 16, 32, 64)),
        *(f"uint{b}" for b in (8, 16, 32, 64)),
        *(f"Int{b}Dtype" for b in (8, 16, 32, 64)),
        *(f"UInt{b}Dtype" for b in (8, 16, 32, 64)),
    ],
    "float": ["float16", "float32", "float64", "Float32Dtype", "Float64Dtype"],
    "string": ["object", "str", "StringDtype"],
    "bool": ["bool", "BooleanDtype"],
    "datetime": [
        "datetime64[ns]",
        "datetime64[us]",
        "datetime64[ms]",
        "datetime64[s]",
        "DatetimeTZDtype",
        # A date-only column (Parquet's date32) is an object column of datetime.date values,
        # whose type GX checks value by value.
        "date",
    ],
}
TYPE_LISTS["number"] = TYPE_LISTS["int"] + TYPE_LISTS["float"]

_SUITE_KEYS = {
    # compact
    "name",
    "table",
    "columns",
    "expectations",
    # GX 1.x
    "id",
    "meta",
    "notes",
    # GX 0.x
    "expectation_suite_name",
    "ge_cloud_id",
    "data_asset_type",
}
_EXPECTATION_KEYS = {
    "type",
    "expectation_type",
    "kwargs",
    "meta",
    "id",
    "notes",
    "severity",
    "description",
    "rendered_content",
    "ge_cloud_id",
}
_TABLE_KEYS = {"rows", "required_columns"}
_COLUMN_KEYS = {"type", "nullable", "max_null_share", "min", "max", "allowed", "unique", "regex", "mostly"}


@dataclasses.dataclass(frozen=True)
class Expectation:
    """One GX expectation configuration: its type (``expect_...``) and keyword arguments."""

    type: str
    kwargs: Mapping[str, Any]
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def column(self) -> str | None:
        value = self.kwargs.get("column")
        return str(value) if value is not None else None

    def to_gx_dict(self) -> dict[str, Any]:
        return {"type": self.type, "kwargs": dict(self.kwargs), "meta": dict(self.meta)}


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    expectations: tuple[Expectation, ...]
    source: str = "<suite>"

    def to_gx_json(self) -> dict[str, Any]:
        """The suite as GX 1.x writes it (``ExpectationSuite.to_json_dict()`` shape)."""
        return {
            "name": self.name,
            "id": None,
            "expectations": [e.to_gx_dict() for e in self.expectations],
            "meta": {"generated_by": "mlci"},
            "notes": None,
        }


def load_suite(suite: "str | os.PathLike[str] | Suite | Mapping[str, Any]") -> Suite:
    """Load a suite from a file (JSON: GX; YAML: compact or GX), a mapping, or pass one through."""
    from mlci_lib.files import read_json, read_yaml

    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, Mapping):
        return parse_suite(suite, source="<suite mapping>")
    path = Path(suite)
    suffix = path.suffix.lower()
    if suffix == ".json":
        raw = read_json(path, what="suite", option="--suite")
    elif suffix in (".yaml", ".yml"):
        raw = read_yaml(path, what="suite", option="--suite")
    else:
        raise ConfigError(
            f"suite {path} has extension {suffix or '(none)'!r}",
            hint="use a .json suite written by Great Expectations, or mlci's compact .yaml",
        )
    return parse_suite(raw, source=str(path))


def parse_suite(raw: Any, *, source: str) -> Suite:
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"suite {source} is not an expectation suite (top level is {type(raw).__name__}, not a mapping)",
            hint="a suite has 'expectations' (Great Expectations) or 'columns'/'table' (mlci compact)",
        )
    _no_unknown(raw, _SUITE_KEYS, f"suite {source}")
    if not any(key in raw for key in ("expectations", "columns", "table")):
        raise ConfigError(
            f"suite {source} is not an expectation suite: it has no 'expectations', 'columns' or 'table'",
            hint="export the suite with Great Expectations, or write mlci's compact YAML",
        )
    name = raw.get("name") or raw.get("expectation_suite_name") or Path(source).stem or "suite"
    expectations: list[Expectation] = []
    expectations += _compile_table(raw.get("table"), source)
    expectations += _compile_columns(raw.get("columns"), source)
    raw_list = raw.get("expectations")
    if raw_list is None:
        raw_list = []
    if not isinstance(raw_list, list):
        raise ConfigError(f"suite {source}: 'expectations' must be a list of expectations")
    for index, item in enumerate(raw_list):
        expectations.append(_parse_expectation(item, f"suite {source}: expectations[{index}]"))
    expectations = _dedupe(expectations)
    if not expectations:
        raise ConfigError(
            f"suite {source} has no expectations", hint="an empty suite would pass any data; add checks"
        )
    return Suite(name=str(name), expectations=tuple(expectations), source=source)


def _parse_expectation(item: Any, where: str) -> Expectation:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where} must be a mapping with 'type' and 'kwargs'")
    _no_unknown(item, _EXPECTATION_KEYS, where)
    kind = item.get("type", item.get("expectation_type"))
    if not isinstance(kind, str) or not kind.strip():
        raise ConfigError(f"{where} has no 'type'", hint="e.g. type: expect_column_values_to_not_be_null")
    kwargs = item.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"{where} ({kind}): 'kwargs' must be a mapping")
    meta = item.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise ConfigError(f"{where} ({kind}): 'meta' must be a mapping")
    kwargs = {str(k): v for k, v in kwargs.items() if k != "batch_id"}
    extra = {k: item[k] for k in ("severity", "description", "notes") if item.get(k) is not None}
    return Expectation(type=kind.strip(), kwargs=kwargs, meta=dict(meta), extra=extra)


def _compile_table(table: Any, source: str) -> list[Expectation]:
    if table is None:
        return []
    where = f"suite {source}: table"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a mapping with 'rows' and/or 'required_columns'")
    _no_unknown(table, _TABLE_KEYS, where)
    out: list[Expectation] = []
    rows = table.get("rows")
    if rows is not None:
        if not isinstance(rows, Mapping) or not set(rows) <= {"min", "max"} or not rows:
            raise ConfigError(f"{where}.rows must be a mapping like {{min: 1000, max: 100000}}")
        low, high = rows.get("min"), rows.get("max")
        for key, value in (("min", low), ("max", high)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ConfigError(f"{where}.rows.{key} must be a whole number of rows, got {value!r}")
        if low is not None and high is not None and low > high:
            raise ConfigError(f"{where}.rows: min {low} is above max {high}")
        out.append(Expectation("expect_table_row_count_to_be_between", {"min_value": low, "max_value": high}))
    required = table.get("required_columns")
    if required is not None:
        if not isinstance(required, list) or not all(isinstance(c, str) for c in required):
            raise ConfigError(f"{where}.required_columns must be a list of column names")
        out += [Expectation("expect_column_to_exist", {"column": c}) for c in required]
    return out


def _compile_columns(columns: Any, source: str) -> list[Expectation]:
    if columns is None:
        return []
    if not isinstance(columns, Mapping):
        raise ConfigError(f"suite {source}: columns must map column names to their checks")
    out: list[Expectation] = []
    for name, spec in columns.items():
        where = f"suite {source}: columns.{name}"
        spec = {} if spec is None else spec
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where} must be a mapping of checks, e.g. {{type: int, nullable: false}}")
        _no_unknown(spec, _COLUMN_KEYS, where)
        column = str(name)
        mostly = spec.get("mostly")
        extra_kwargs: dict[str, Any] = {}
        if mostly is not None:
            if not _is_number(mostly) or not 0 <= mostly <= 1:
                raise ConfigError(f"{where}.mostly must be a share between 0 and 1, got {mostly!r}")
            extra_kwargs["mostly"] = float(mostly)
        out.append(Expectation("expect_column_to_exist", {"column": column}))
        kind = spec.get("type")
        if kind is not None:
            if kind not in TYPE_LISTS:
                raise ConfigError(
                    f"{where}.type {kind!r} is unknown", hint=f"use one of {', '.join(sorted(TYPE_LISTS))}"
                )
            out.append(
                Expectation(
                    "expect_column_values_to_be_in_type_list",
                    {"column": column, "type_list": list(TYPE_LISTS[kind])},
                    meta={"mlci_type": kind},
                )
            )
        nullable, max_null = spec.get("nullable"), spec.get("max_null_share")
        if nullable is not None and not isinstance(nullable, bool):
            raise ConfigError(f"{where}.nullable must be true or false, got {nullable!r}")
        if nullable is not None and max_null is not None:
            raise ConfigError(f"{where}: give nullable or max_null_share, not both")
        if nullable is False:
            out.append(Expectation("expect_column_values_to_not_be_null", {"column": column}))
        if max_null is not None:
            if not _is_number(max_null) or not 0 <= max_null <= 1:
                raise ConfigError(f"{where}.max_null_share must be a share between 0 and 1, got {max_null!r}")
            if max_null < 1:
                out.append(
                    Expectation(
                        "expect_column_values_to_not_be_null",
                        {"column": column, "mostly": round(1 - float(max_null), 12)},
                    )
                )
        low, high = spec.get("min"), spec.get("max")
        for key, value in (("min", low), ("max", high)):
            if value is not None and not _is_number(value) and not isinstance(value, str):
                raise ConfigError(f"{where}.{key} must be a number (or a date string), got {value!r}")
        if _is_number(low) and _is_number(high) and float(low) > float(high):  # type: ignore[arg-type]
            raise ConfigError(f"{where}: min {low} is above max {high}")
        if low is not None or high is not None:
            out.append(
                Expectation(
                    "expect_column_values_to_be_between",
                    {"column": column, "min_value": low, "max_value": high, **extra_kwargs},
                )
            )
        allowed = spec.get("allowed")
        if allowed is not None:
            if not isinstance(allowed, list) or not allowed:
                raise ConfigError(f"{where}.allowed must be a non-empty list of values")
            out.append(
                Expectation(
                    "expect_column_values_to_be_in_set",
                    {"column": column, "value_set": allowed, **extra_kwargs},
                )
            )
        unique = spec.get("unique")
        if unique is not None and not isinstance(unique, bool):
            raise ConfigError(f"{where}.unique must be true or false, got {unique!r}")
        if unique:
            out.append(Expectation("expect_column_values_to_be_unique", {"column": column, **extra_kwargs}))
        regex = spec.get("regex")
        if regex is not None:
            import re

            if not isinstance(regex, str):
                raise ConfigError(f"{where}.regex must be a string, got {regex!r}")
            try:
                re.compile(regex)
            except re.error as exc:
                raise ConfigError(
                    f"{where}.regex {regex!r} is not a valid regular expression: {exc}"
                ) from None
            out.append(
                Expectation(
                    "expect_column_values_to_match_regex", {"column": column, "regex": regex, **extra_kwargs}
                )
            )
    return out


def _dedupe(expectations: list[Expectation]) -> list[Expectation]:
    """Drop repeats of the same check (a column both required and described, for instance)."""
    import json

    seen: set[str] = set()
    out = []
    for expectation in expectations:
        key = expectation.type + json.dumps(dict(expectation.kwargs), sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            out.append(expectation)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _no_unknown(mapping: Mapping[str, Any], known: set[str], where: str) -> None:
    from mlci_lib.options import check_keys

    check_keys(mapping, sorted(known), where=where)
