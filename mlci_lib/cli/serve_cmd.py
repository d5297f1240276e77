"""`mlci serve`: serve a model over HTTP (the serving image's entrypoint)."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command
from mlci_lib.errors import UsageError


def register(subparsers: Any) -> None:
    add_command(subparsers, "serve", handle, "serve a model over HTTP (the serving image's entrypoint)")


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    raise UsageError("mlci serve is being built in this release")
