"""`mlci model`: push, promote, roll back models in the registry, and predict with the champion."""

from __future__ import annotations

from typing import Any

from mlci_lib.cli.framework import add_group


def register(subparsers: Any) -> None:
    add_group(
        subparsers, "model", "push, promote, roll back models in the registry, and predict with the champion"
    )
