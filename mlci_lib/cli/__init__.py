"""The ``mlci`` command line: the only place in mlci that prints and exits.

``main(argv)`` returns the exit code (0 passed, 1 a check or gate failed, 2 bad usage or bad
input) so tests call it directly; :func:`entrypoint` is the console script.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from collections.abc import Sequence

from mlci_lib import __version__
from mlci_lib.cli.framework import (
    Context,
    Outcome,
    Parser,
    argv_from_action_inputs,
    claim_result_files,
    claim_unparsed_result_files,
    find_command_parser,
)
from mlci_lib.errors import MlciError, UsageError
from mlci_lib.files import ResultFiles
from mlci_lib.runner import Annotation, CiRunner

#: Command modules, in the order ``mlci --help`` lists them. Each has ``register(subparsers)``.
COMMAND_MODULES = (
    "data",
    "drift",
    "gate",
    "model",
    "image",
    "serve",
    "predict",
    "deploy",
    "monitor",
    "report",
    "run",
    "init",
    "demo",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` one command of :data:`COMMAND_MODULES` registered.

    A run parses one command, and building all of them (a few hundred options, each help text
    through gettext) is a measurable part of a short command: :func:`main` registers only the
    command it was given when that is a known one, and everything for help and unknown names.
    """
    parser = Parser(
        prog="mlci",
        description="CI/CD for machine learning: data checks, metric gates, model registry, "
        "serving images and reports.",
        epilog="Exit codes: 0 passed, 1 a check or gate failed, 2 bad usage or bad input.",
    )
    parser.add_argument("--version", action="version", version=f"mlci {__version__}")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    parser.add_argument(
        "--from-env",
        action="store_true",
        help="read the command's options from MLCI_INPUT_<OPTION> variables (how actions call mlci)",
    )
    subparsers = parser.add_subparsers(
        title="commands", metavar="COMMAND", parser_class=Parser, dest="command"
    )
    for name in COMMAND_MODULES:
        if only is None or name == only:
            importlib.import_module(f"mlci_lib.cli.{name}_cmd").register(subparsers)
    return parser


def _named_command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names (its first word that is not a top-level flag), when known."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMAND_MODULES else None
    return None


def _wants(flag: str, argv: Sequence[str]) -> bool:
    return flag in argv[: argv.index("--")] if "--" in argv else flag in argv


def main(argv: Sequence[str] | None = None, *, runner: CiRunner | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    runner = runner or CiRunner()
    json_output = _wants("--json", args_list)
    if json_output:
        runner.reserve_stdout()
    debug = _wants("--debug", args_list) or os.environ.get("MLCI_DEBUG") == "1"
    # The command's result files: claimed before its handler reads any input, and given the
    # error when it stops, so a verdict of an earlier run never stands for this one.
    results = ResultFiles("mlci")
    parsed = False
    parser: argparse.ArgumentParser | None = None
    try:
        parser = build_parser(_named_command(args_list))
        if _wants("--from-env", args_list):
            command_parser, start = find_command_parser(parser, args_list)
            extra = argv_from_action_inputs(command_parser, os.environ)
            explicit = args_list[start:]
            if "--" in extra and "--" in explicit:
                raise UsageError("give positional arguments either in MLCI_INPUT_* or on the command line")
            args_list = (
                args_list[:start] + explicit + extra
                if "--" in extra
                else (args_list[:start] + extra + explicit)
            )
        command_parser, _ = find_command_parser(parser, args_list)
        results.command = command_parser.prog
        args = parser.parse_args(args_list)
        parsed = True
        handler = getattr(args, "handler", None)
        if handler is None:
            group_parser = getattr(args, "group_parser", parser)
            runner.print(group_parser.format_help())
            return 2
        context = Context(runner=runner, json_output=json_output, debug=debug, results=results)
        claim_result_files(command_parser, args, results)
        outcome = handler(args, context)
        code = _finish(outcome, runner, json_output)
        results.finish(code)
        return code
    except MlciError as error:
        _fail_results(results, parser, args_list, parsed, error.one_line(), error.exit_code)
        return _fail(error.one_line(), error.title, error.exit_code, runner, json_output, debug)
    except KeyboardInterrupt:
        _fail_results(results, parser, args_list, parsed, f"{results.command} was interrupted", 130)
        runner.print("mlci: interrupted", to_stderr=True)
        return 130
    except Exception as error:  # the CLI is the last line: no traceback unless asked for
        message = (
            f"internal error: {type(error).__name__}: {' '.join(str(error).split())} "
            "(rerun with --debug for the traceback, and please report it)"
        )
        _fail_results(results, parser, args_list, parsed, message, 2)
        return _fail(message, "mlci internal error", 2, runner, json_output, debug)


def _fail_results(
    results: ResultFiles,
    parser: argparse.ArgumentParser | None,
    argv: Sequence[str],
    parsed: bool,
    message: str,
    exit_code: int,
) -> None:
    """Write the error into the command's result files; argv that did not parse names them too."""
    if not parsed and parser is not None:
        command_parser, _ = find_command_parser(parser, argv)
        claim_unparsed_result_files(command_parser, argv, results)
    results.fail(message, exit_code)


def _finish(outcome: Outcome, runner: CiRunner, json_output: bool) -> int:
    exit_code = 0 if outcome.passed else outcome.failed_exit_code
    for annotation in outcome.annotations:
        runner.annotate(annotation, to_stderr=json_output)
    if outcome.summary:
        runner.append_summary(outcome.summary)
    if outcome.outputs:
        runner.set_outputs(outcome.outputs)
    if json_output:
        if outcome.result is not None:
            from mlci_lib import result_schemas

            # The same check as a written result file: what a later step parses matches its schema.
            result_schemas.check(outcome.result.to_dict(), what="the --json result")
            runner.print_json(outcome.result.to_json())
        else:
            runner.print_json(json.dumps({"passed": outcome.passed, "outputs": outcome.outputs}))
    elif outcome.text:
        runner.print(outcome.text)
    return exit_code


def _fail(message: str, title: str, exit_code: int, runner: CiRunner, json_output: bool, debug: bool) -> int:
    if debug:
        # The traceback holds messages built from user data: it goes through the runner too.
        runner.print(traceback.format_exc(), to_stderr=True)
    if runner.on_github:
        runner.annotate(Annotation("error", message, title=title), to_stderr=True)
        from mlci_lib.report.escape import text

        runner.append_summary(f"> [!CAUTION]\n> **{text(title)}**: {text(message, 2000)}\n")
    else:
        runner.print(f"mlci: error: {message}", to_stderr=True)
    if json_output:
        error = {
            "schema": "mlci.error",
            "schema_version": 1,
            "error": message,
            "title": title,
            "exit_code": exit_code,
        }
        runner.print_json(json.dumps(error))
    return exit_code


def entrypoint() -> None:
    """Console script ``mlci``."""
    raise SystemExit(main())
