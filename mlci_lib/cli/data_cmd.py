"""`mlci data`: check data against a suite, or profile data into a starter suite."""

from __future__ import annotations

from typing import Any

from mlci_lib.cli.framework import add_group


def register(subparsers: Any) -> None:
    add_group(subparsers, "data", "check data against a suite, or profile data into a starter suite")
