"""`mlci demo`: run the whole pipeline on the bundled example project."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command
from mlci_lib.errors import UsageError


def register(subparsers: Any) -> None:
    add_command(subparsers, "demo", handle, "run the whole pipeline on the bundled example project")


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    raise UsageError("mlci demo is being built in this release")
