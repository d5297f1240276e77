"""Latency figures (``mlci.latency`` JSON, written by the image smoke test) for the gate."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from mlci_lib.errors import InputError

LATENCY_SCHEMA = "mlci.latency"
FIGURES = ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms")


def load_latency(source: str | os.PathLike[str] | Mapping[str, Any], *, what: str) -> dict[str, float]:
    """The latency figures of a file or mapping, checked: schema, finite non-negative numbers."""
    from mlci_lib.files import read_json

    if isinstance(source, Mapping):
        data: Any = dict(source)
        where = what
    else:
        data = read_json(source, what=what)
        where = f"{what} {source}"
    if not isinstance(data, dict):
        raise InputError(f"{where} must be a JSON object", hint=f"write it with schema {LATENCY_SCHEMA!r}")
    schema = data.get("schema")
    if schema is not None and schema != LATENCY_SCHEMA:
        raise InputError(
            f"{where} has schema {schema!r}, not {LATENCY_SCHEMA!r}",
            hint="pass the latency file that 'mlci image smoke' writes",
        )
    figures: dict[str, float] = {}
    for name in FIGURES:
        if name not in data:
            continue
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{where}: {name} is {value!r}, not a finite number of milliseconds")
        if value < 0:
            raise InputError(f"{where}: {name} is negative ({value})")
        figures[name] = float(value)
    if not figures:
        raise InputError(f"{where} holds no latency figure", hint=f"expected some of {', '.join(FIGURES)}")
    return figures
