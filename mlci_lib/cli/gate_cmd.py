"""`mlci gate`: gate a candidate model against its baseline."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command
from mlci_lib.errors import UsageError


def register(subparsers: Any) -> None:
    add_command(subparsers, "gate", handle, "gate a candidate model against its baseline")


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    raise UsageError("mlci gate is being built in this release")
