"""`mlci run`: run the whole pipeline from mlci.yaml."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TypeVar

from mlci_lib.cli.framework import Context, Outcome, add_command
from mlci_lib.pipeline.config import STAGES as _STAGES

if TYPE_CHECKING:
    from mlci_lib.results import Result

R = TypeVar("R", bound="Result")

_DESCRIPTION = f"""\
Run the pipeline that mlci.yaml declares. Stages run in this order, each when the file has an entry
for it: {", ".join(_STAGES)}.
The run stops at the first stage that fails, and writes one verdict JSON (mlci.pipeline-verdict)
after every stage, linking the git commit, the data fingerprint, each stage's verdict, the model
version and the image digest.

Training and evaluation are your own commands: 'command: [python, train.py]' runs without a shell
('python' is the interpreter mlci runs in); 'shell: "..."' runs a string with /bin/sh.

examples:
  mlci run                         # every stage in mlci.yaml
  mlci run --until gate            # pull requests: stop after the gate
  mlci run --stage model-push      # one stage, updating the verdict on disk

exit codes: 0 passed, 1 a stage failed, 2 bad usage, bad input or a stage error
"""


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers, "run", handle, "run the whole pipeline from mlci.yaml", description=_DESCRIPTION
    )
    parser.add_argument(
        "--config", default="mlci.yaml", metavar="FILE", help="pipeline file (default mlci.yaml)"
    )
    parser.add_argument(
        "--stage",
        action="append",
        default=[],
        choices=_STAGES,
        metavar="NAME",
        help="run only this stage (repeatable); the verdict on disk keeps the other stages",
    )
    parser.add_argument("--until", choices=_STAGES, metavar="NAME", help="stop after this stage")
    parser.add_argument(
        "--skip", action="append", default=[], choices=_STAGES, metavar="NAME", help="leave out this stage"
    )
    parser.add_argument(
        "--verdict-file",
        metavar="FILE",
        help="where to write the verdict (default: verdict-file in mlci.yaml)",
    )


def handle(args: argparse.Namespace, ctx: Context) -> Outcome:
    import dataclasses
    from pathlib import Path

    from mlci_lib.cli.gate_cmd import rule_annotations
    from mlci_lib.errors import MlciError
    from mlci_lib.pipeline import load_config, run_pipeline
    from mlci_lib.pipeline.render import pipeline_markdown
    from mlci_lib.pipeline.verdict import ERROR
    from mlci_lib.report.champion import TITLE, missing_champion, no_champion_markdown, no_champion_message
    from mlci_lib.runner import Annotation

    # The pipeline verdict gets the error if the run stops (the pipeline itself marks it running
    # before its first stage; 'mlci run --stage' reads it first, so it is not replaced here).
    if args.verdict_file:
        ctx.results.claim(args.verdict_file, what="verdict file", option="--verdict-file", replace_now=False)
    else:
        default = Path(args.config).parent / ".mlci" / "pipeline-verdict.json"
        if default.is_file():
            ctx.results.claim(default, what="verdict file", replace_now=False)
    config = load_config(args.config)
    if args.verdict_file:
        config = dataclasses.replace(config, verdict_file=Path(args.verdict_file).resolve())
    else:
        ctx.results.claim(config.verdict_file, what="verdict file", replace_now=False)
    verdict = run_pipeline(
        config,
        only=args.stage,
        until=args.until,
        skip=args.skip,
        progress=ctx.progress,
        command_output=lambda line: ctx.progress(f"  | {line}"),
        mask=ctx.runner.mask,
    )
    annotations = []
    failed = verdict.stage(verdict.failed_stage) if verdict.failed_stage else None
    gate_rules = _gate_rules(failed.verdict if failed is not None and failed.name == "gate" else None)
    if failed is not None and gate_rules:
        # One ::error:: per failing rule, as `mlci gate` writes them, not only the first.
        annotations += rule_annotations(
            gate_rules, str((failed.verdict or {}).get("on_inconclusive") or "fail"), title="mlci run: gate"
        )
    elif failed is not None and (checks := _failed_expectations(failed.verdict)):
        # A failed data check: one ::error:: per failed expectation, as `mlci data check` writes.
        where = str((failed.verdict or {}).get("data") or "data")
        problems = [str(p) for p in (failed.verdict or {}).get("problems") or []]
        annotations += [Annotation("error", p, title="mlci run: data-check") for p in problems]
        annotations += [
            Annotation("error", f"{where}: {e.describe()}", title="mlci run: data-check failed")
            for e in checks
        ]
    elif failed is not None:
        annotations.append(
            Annotation("error", failed.message, title=f"mlci run: {failed.name} {failed.status}")
        )
    summary = pipeline_markdown(verdict)
    no_champion = missing_champion(verdict.to_dict())
    if no_champion is not None:
        annotations.append(
            Annotation("warning", no_champion_message(no_champion), title=f"mlci run: {TITLE}")
        )
        summary = no_champion_markdown(no_champion) + "\n\n" + summary
    outputs = {
        "passed": "true" if verdict.passed else "false",
        "verdict-file": str(config.verdict_file),
        "failed-stage": verdict.failed_stage or "",
        "model-version": str((verdict.model or {}).get("version") or ""),
        "model-uri": str((verdict.model or {}).get("uri") or ""),
        "image-digest": str((verdict.image or {}).get("digest") or ""),
        "image-reference": str((verdict.image or {}).get("reference") or ""),
    }
    outcome = Outcome(
        result=verdict,
        passed=verdict.passed,
        text=verdict.text() + f"\nverdict: {config.verdict_file}",
        summary=summary,
        outputs=outputs,
        annotations=annotations,
    )
    # A stage that could not do its work (bad input, a service down) exits 2, like any other
    # mlci command; a check that did not pass exits 1.
    if failed is not None and failed.status == ERROR:
        outcome.failed_exit_code = MlciError.exit_code
    return outcome


def _stage_result(verdict: Any, cls: type[R]) -> R | None:
    """A stage's embedded verdict as its result class, as the annotations of its command use it.

    None for another kind, or for one not of its schema: then the stage line is the annotation.
    """
    from mlci_lib.result_schemas import SchemaError, from_dict

    if not isinstance(verdict, dict) or verdict.get("schema") != cls.SCHEMA:
        return None
    try:
        return from_dict(cls, verdict, what="the stage verdict")
    except SchemaError:
        return None


def _gate_rules(verdict: Any) -> list[Any]:
    """The rules of a gate verdict (as the pipeline embeds it), for the annotations."""
    from mlci_lib.gate.results import GateVerdict

    gate = _stage_result(verdict, GateVerdict)
    return list(gate.rules) if gate is not None else []


def _failed_expectations(verdict: Any) -> list[Any]:
    """The failed expectations of a data-check result (as the pipeline embeds it)."""
    from mlci_lib.data.check import DataCheckResult

    check = _stage_result(verdict, DataCheckResult)
    return list(check.failures) if check is not None else []
