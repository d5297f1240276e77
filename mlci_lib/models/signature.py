"""The input columns a model expects, and the coercion of a table to them."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # "integer", "float", "boolean", "string", "datetime"


@dataclasses.dataclass(frozen=True)
class ModelSignature:
    """The input columns a model expects, with the kind of value of each."""

    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [{"name": c.name, "type": c.kind} for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSignature:
        return cls(tuple(ColumnSpec(str(c["name"]), str(c["type"])) for c in data["inputs"]))

    @classmethod
    def infer(cls, frame: pd.DataFrame) -> ModelSignature:
        return cls(tuple(ColumnSpec(str(name), _kind_of(frame[name])) for name in frame.columns))

    def coerce(self, frame: pd.DataFrame, *, source: str = "input") -> pd.DataFrame:
        """Return ``frame`` with exactly the signature's columns, each of the declared kind.

        Raises InputError naming the first missing column or the first value of a wrong type.
        """
        import pandas as pd

        missing = [c.name for c in self.columns if c.name not in frame.columns]
        if missing:
            raise InputError(
                f"{source}: missing column {missing[0]!r}",
                hint=f"the model expects columns {', '.join(self.names)}",
            )
        out = {}
        for spec in self.columns:
            series = frame[spec.name]
            if spec.kind in ("integer", "float"):
                converted = pd.to_numeric(series, errors="coerce")
                bad = converted.isna() & series.notna()
                if bad.any():
                    row = int(bad.to_numpy().nonzero()[0][0])
                    raise InputError(
                        f"{source}: column {spec.name!r} must be numeric, row {row + 1} is "
                        f"{series.iloc[row]!r}"
                    )
                if spec.kind == "integer" and not converted.isna().any():
                    if (converted != converted.round()).any():
                        raise InputError(f"{source}: column {spec.name!r} must hold whole numbers")
                    converted = converted.astype("int64")
                out[spec.name] = converted.astype("float64") if spec.kind == "float" else converted
            elif spec.kind == "boolean":
                if series.dtype != bool:
                    raise InputError(f"{source}: column {spec.name!r} must be true or false")
                out[spec.name] = series
            elif spec.kind == "string":
                non_strings = series.map(lambda v: v is not None and not isinstance(v, str))
                if non_strings.any():
                    row = int(non_strings.to_numpy().nonzero()[0][0])
                    raise InputError(
                        f"{source}: column {spec.name!r} must be text, row {row + 1} is {series.iloc[row]!r}"
                    )
                out[spec.name] = series.astype(object)
            else:
                out[spec.name] = series
        return pd.DataFrame(out, index=frame.index)


def _kind_of(series: pd.Series) -> str:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"
