"""Base for the typed results every library function returns.

Results are frozen dataclasses. They serialize to JSON with a ``schema`` name and a
``schema_version`` so that consumers (the report, the pipeline, users' own scripts) can tell
which shape they read.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from pathlib import PurePath
from typing import Any, ClassVar


def to_jsonable(value: Any) -> Any:
    """Convert dataclasses, enums, paths, numpy scalars and non-finite floats to JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if isinstance(value, Result):
            return value.to_dict()
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(v) for v in items]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, float):
        # JSON has no NaN or infinity; null is the honest spelling of "no value".
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    tolist = getattr(value, "tolist", None)  # numpy arrays (before .item(), which needs size 1)
    if callable(tolist) and getattr(value, "ndim", 0) > 0:
        return to_jsonable(tolist())
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return to_jsonable(item())
    if callable(tolist):
        return to_jsonable(tolist())
    raise TypeError(f"cannot serialize {type(value).__name__} to JSON")


@dataclasses.dataclass(frozen=True)
class Result:
    """Mixin for result dataclasses. Subclasses set ``SCHEMA`` and ``SCHEMA_VERSION``."""

    SCHEMA: ClassVar[str] = "mlci.result"
    SCHEMA_VERSION: ClassVar[int] = 1

    def to_dict(self) -> dict[str, Any]:
        body = {f.name: to_jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {"schema": self.SCHEMA, "schema_version": self.SCHEMA_VERSION, **body}

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, allow_nan=False)
