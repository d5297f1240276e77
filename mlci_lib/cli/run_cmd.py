"""`mlci run`: run the whole pipeline from mlci.yaml."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command
from mlci_lib.errors import UsageError


def register(subparsers: Any) -> None:
    add_command(subparsers, "run", handle, "run the whole pipeline from mlci.yaml")


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    raise UsageError("mlci run is being built in this release")
