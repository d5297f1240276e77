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

#: Option -> (metavar, default help). The defaults are Columns' own.
_OPTIONS: dict[str, tuple[str, str]] = {
    "id": ("NAME", "row id column (default: id)"),
    "label": ("NAME", "true label column (default: label)"),
    "prediction": ("NAME", "prediction column (default: prediction)"),
    "score": ("NAME", "positive-class probability column (default: score)"),
    "proba-prefix": ("PREFIX", "prefix of the class probability columns (default: proba_)"),
}
ALL: tuple[str, ...] = tuple(_OPTIONS)


def _flag(name: str) -> str:
    return f"--{name}" if name == "proba-prefix" else f"--{name}-column"


def add_column_options(
    group: argparse._ActionsContainer,
    names: Sequence[str] = ALL,
    *,
    help: Mapping[str, str] | None = None,
) -> None:
    """Add the column options ``names`` (of :data:`ALL`) to ``group``.

    No option has a parser default: :func:`columns_from` fills what was not given from
    :class:`Columns`, and so knows whether the id column was named (then it must exist).
    """
    for name in names:
        metavar, text = _OPTIONS[name]
        group.add_argument(_flag(name), metavar=metavar, help=(help or {}).get(name, text))


def columns_from(args: argparse.Namespace) -> Columns:
    """The column names the options gave (an empty value is not given), the rest by default."""
    from mlci_lib.gate.predictions import Columns

    given: dict[str, Any] = {}
    for name in ALL:
        value = getattr(args, _flag(name).lstrip("-").replace("-", "_"), None)
        if value:
            given[name.replace("-", "_")] = value
    return Columns(**given, id_explicit="id" in given)
