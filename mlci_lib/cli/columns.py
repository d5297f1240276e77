"""The column options of a predictions file, defined once for every command that reads one.

``--id-column``, ``--label-column``, ``--prediction-column``, ``--score-column`` and
``--proba-prefix`` mean the same in ``mlci gate``, ``mlci report`` and ``mlci model baseline``;
:func:`add_column_options` adds the ones a command reads (with its own help where the meaning
narrows) and :func:`columns_from` turns them into the one parameter object,
:class:`mlci_lib.gate.predictions.Columns`. Action inputs reach them as ``MLCI_INPUT_<DEST>``
(``--from-env``), so the destinations keep their names.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlci_lib.gate.predictions import Columns

#: Option -> (metavar, parser default, help). The defaults are Columns' own (a test checks); the
#: id has none, so that naming it is known (a named id column must exist).
_OPTIONS: dict[str, tuple[str, str | None, str]] = {
    "id": ("NAME", None, "row id column (default: id)"),
    "label": ("NAME", "label", "true label column"),
    "prediction": ("NAME", "prediction", "prediction column"),
    "score": ("NAME", "score", "positive-class probability column"),
    "proba-prefix": ("PREFIX", "proba_", "prefix of the class probability columns"),
}
ALL: tuple[str, ...] = tuple(_OPTIONS)


def _flag(name: str) -> str:
    return f"--{name}" if name == "proba-prefix" else f"--{name}-column"


def add_column_options(
    group: argparse._ActionsContainer,
    names: Sequence[str] = ALL,
    *,
    help: Mapping[str, str] | None = None,
    default: Mapping[str, str | None] | None = None,
) -> None:
    """Add the column options ``names`` (of :data:`ALL`) to ``group``.

    ``help`` narrows an option's meaning for the command; ``default`` replaces its default where
    the command's differs (``mlci drift``: no prediction column unless the data has one).
    """
    for name in names:
        metavar, default_value, text = _OPTIONS[name]
        default_value = (default or {}).get(name, default_value)
        shown = (help or {}).get(name, text)
        if default_value is not None:
            shown += f" (default: {default_value})"
        group.add_argument(_flag(name), metavar=metavar, default=default_value, help=shown)


def defaults() -> dict[str, str | None]:
    """The parser default of each column option."""
    return {name: default for name, (_, default, _) in _OPTIONS.items()}


def columns_from(args: argparse.Namespace) -> Columns:
    """The column names the options gave (an empty value is not given), the rest by default."""
    from mlci_lib.gate.predictions import Columns

    given: dict[str, Any] = {}
    for name in ALL:
        value = getattr(args, _flag(name).lstrip("-").replace("-", "_"), None)
        if value:
            given[name.replace("-", "_")] = value
    return Columns(**given, id_explicit="id" in given)
