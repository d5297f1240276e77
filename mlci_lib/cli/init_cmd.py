"""`mlci init`: write starter workflows and mlci.yaml into a repository."""

from __future__ import annotations

import argparse
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command

_DESCRIPTION = """\
Write mlci.yaml, a starter gate.yaml, a .gitignore for what runs write, and the starter CI files
into a repository: GitHub workflows (pr, release, retrain, monitor) by default, a .gitlab-ci.yml
and a Jenkinsfile on request. No file is overwritten without --force: if one exists, nothing is
written (an existing .gitignore only gets mlci's lines added).

examples:
  mlci init --model-name churn
  mlci init --model-name churn --ci github,gitlab --image-repository ghcr.io/acme/churn
"""


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "init",
        handle,
        "write starter workflows and mlci.yaml into a repository",
        description=_DESCRIPTION,
    )
    parser.add_argument("--dir", default=".", metavar="DIR", help="the repository's folder (default .)")
    parser.add_argument("--model-name", required=True, metavar="NAME", help="registered model name")
    parser.add_argument(
        "--tracking-uri", default="", metavar="URI", help="MLflow tracking URI (default: none)"
    )
    parser.add_argument(
        "--image-repository", default="", metavar="REPO", help="serving image repository, e.g. ghcr.io/o/n"
    )
    parser.add_argument(
        "--ci", default="github", metavar="LIST", help="CI systems, comma-separated: github, gitlab, jenkins"
    )
    parser.add_argument("--force", action="store_true", help="overwrite files that exist")


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.options import parse_list
    from mlci_lib.scaffold import PROFILE_HINT, init_project

    result = init_project(
        args.dir,
        model_name=args.model_name,
        tracking_uri=args.tracking_uri or None,
        image_repository=args.image_repository or None,
        ci=tuple(parse_list(args.ci)) or ("github",),
        force=args.force,
    )
    lines = [f"mlci init wrote {len(result.written)} files in {result.directory}:"]
    for name in result.written:
        lines.append(f"  {name}{'  (overwritten)' if name in result.overwritten else ''}")
    lines.append(
        f"next: add train.py and evaluate.py, write the data suite with '{PROFILE_HINT}' "
        "(see mlci.yaml), then run 'mlci run'"
    )
    return Outcome(
        result=result,
        passed=True,
        text="\n".join(lines),
        outputs={"written": "\n".join(result.written)},
    )
