"""`mlci report`: render the pipeline report and post it on the pull request."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command
from mlci_lib.errors import UsageError


def register(subparsers: Any) -> None:
    add_command(subparsers, "report", handle, "render the pipeline report and post it on the pull request")


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    raise UsageError("mlci report is being built in this release")
