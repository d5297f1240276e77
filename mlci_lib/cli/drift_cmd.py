"""`mlci drift`: compare current data with reference data and gate on drift."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command
from mlci_lib.errors import UsageError


def register(subparsers: Any) -> None:
    add_command(subparsers, "drift", handle, "compare current data with reference data and gate on drift")


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    raise UsageError("mlci drift is being built in this release")
