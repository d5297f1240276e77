"""The output columns of batch scoring: the id, the prediction, one probability per class.

Names are predictable: ``prediction`` and ``probability_<class>``, the class written with letters,
digits and ``_`` only (``probability_north``, ``probability_1``, ``a b/c`` -> ``probability_a_b_c``),
so every engine and every reader (Spark, SQL, pandas) takes them as they are. Two names that
differ only in case are the same column to Spark, so collisions are checked case-insensitively;
two classes that give one name each get their position among the model's classes appended.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from mlci_lib.errors import InputError

DEFAULT_PREDICTION_COLUMN = "prediction"
DEFAULT_PROBABILITY_PREFIX = "probability_"
_UNSAFE = re.compile(r"[^0-9A-Za-z_]")


@dataclasses.dataclass(frozen=True)
class OutputColumns:
    """The columns of a predictions table, and which class each probability column holds."""

    id: str
    prediction: str
    #: (column name, class) in the order of the model's classes.
    probabilities: tuple[tuple[str, Any], ...] = ()

    @property
    def names(self) -> list[str]:
        return [self.id, self.prediction, *(name for name, _ in self.probabilities)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prediction": self.prediction,
            "probabilities": [{"column": name, "class": cls} for name, cls in self.probabilities],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputColumns:
        return cls(
            id=data["id"],
            prediction=data["prediction"],
            probabilities=tuple((p["column"], p["class"]) for p in data["probabilities"]),
        )


def class_column(prefix: str, cls: Any) -> str:
    """``prefix`` + the class as letters, digits and underscores."""
    text = _UNSAFE.sub("_", str(cls)) or "_"
    return f"{prefix}{text}"


def output_columns(
    id_column: str,
    classes: Sequence[Any] | None,
    *,
    prediction_column: str = DEFAULT_PREDICTION_COLUMN,
    probability_prefix: str = DEFAULT_PROBABILITY_PREFIX,
) -> OutputColumns:
    """The output columns for a model with these classes (None: a regressor)."""
    if not prediction_column.strip():
        raise InputError("option --prediction-column is empty", hint="name the prediction column")
    names = [class_column(probability_prefix, c) for c in classes or ()]
    folded = [n.casefold() for n in names]
    names = [
        f"{name}_{index}" if folded.count(folded[index]) > 1 else name for index, name in enumerate(names)
    ]
    taken: dict[str, str] = {}
    for name, option in [
        (id_column, "--id-column"),
        (prediction_column, "--prediction-column"),
        *((n, "--probability-prefix") for n in names),
    ]:
        other = taken.get(name.casefold())
        if other is not None:
            raise InputError(
                f"output column {name!r} ({option}) collides with {other} (column names are compared "
                "ignoring case, as Spark does)",
                hint="choose another --prediction-column or --probability-prefix",
            )
        taken[name.casefold()] = f"the column of {option} {name!r}"
    return OutputColumns(
        id=id_column,
        prediction=prediction_column,
        probabilities=tuple(zip(names, list(classes or ()), strict=True)),
    )
