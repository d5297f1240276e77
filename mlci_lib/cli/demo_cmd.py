"""`mlci demo`: run the whole pipeline on the bundled example project."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command

_DESCRIPTION = """\
Run the whole pipeline on the bundled example (a loan-approval classifier with a sensitive
attribute for a slice gate), with nothing to configure: the project is copied to a new folder,
the registry is an MLflow SQLite store inside it, and the image stages run when a Docker engine
answers. Then a deliberately worse model is gated against the new champion and must be stopped.
Prints progress stage by stage and the path of the report.

examples:
  mlci demo
  mlci demo --registry localhost:5000       # also push the serving image
"""


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "demo",
        handle,
        "run the whole pipeline on the bundled example project",
        description=_DESCRIPTION,
    )
    parser.add_argument(
        "--dir", default="", metavar="DIR", help="where to run (default: a new temporary folder)"
    )
    parser.add_argument("--no-image", action="store_true", help="leave out the image stages")
    parser.add_argument("--registry", default="", metavar="HOST:PORT", help="image registry to push to")
    parser.add_argument("--base-image", default="", metavar="IMAGE", help="base of the serving image")
    parser.add_argument("--python-version", default="", metavar="X.Y", help="Python of the base image")
    parser.add_argument("--quick", action="store_true", help="skip the second run with a worse model")


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.demo import run_demo

    result = run_demo(
        args.dir or None,
        image=False if args.no_image else None,
        registry=args.registry or None,
        base_image=args.base_image or None,
        python_version=args.python_version or None,
        worse_candidate=not args.quick,
        progress=ctx.progress,
    )
    release, candidate = result.release, result.candidate
    lines = []
    if release["passed"]:
        version = (release.get("model") or {}).get("version")
        lines.append(f"release passed: loan-approval version {version} is the champion")
    else:
        lines.append(f"release failed at {release.get('failed_stage')}")
    if candidate is not None:
        if not candidate["passed"] and candidate.get("failed_stage") == "gate":
            lines.append("worse candidate: stopped by the gate, as it should be")
        else:
            lines.append(f"worse candidate: NOT stopped by the gate ({candidate.get('failed_stage')})")
    if result.image_note:
        lines.append(result.image_note)
    lines.append(f"project: {result.workspace}")
    lines.append(f"report: {result.report_file}")
    return Outcome(
        result=result,
        passed=result.passed,
        text="\n".join(lines),
        outputs={"report-file": result.report_file or "", "workspace": result.workspace},
    )
