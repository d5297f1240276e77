"""`mlci init`: write starter workflows and mlci.yaml into a repository."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command
from mlci_lib.errors import UsageError


def register(subparsers: Any) -> None:
    add_command(subparsers, "init", handle, "write starter workflows and mlci.yaml into a repository")


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    raise UsageError("mlci init is being built in this release")
