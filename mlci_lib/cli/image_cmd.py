"""`mlci image`: build, smoke-test and push the serving image."""

from __future__ import annotations

from typing import Any

from mlci_lib.cli.framework import add_group


def register(subparsers: Any) -> None:
    add_group(subparsers, "image", "build, smoke-test and push the serving image")
