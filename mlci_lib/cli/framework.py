"""What every CLI command shares: the outcome type, parser helpers and action-input mapping.

A command module defines ``register(subparsers)`` that adds its parsers with
:func:`add_command`, and handlers ``handler(args, ctx) -> Outcome``. Handlers import heavy
libraries inside their body, never at module level, so ``mlci --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from mlci_lib.errors import MlciError, UsageError
from mlci_lib.files import ResultFiles
from mlci_lib.options import number_problem, parse_bool, parse_list
from mlci_lib.results import Result
from mlci_lib.runner import Annotation, CiRunner

#: Prefix of the environment variables that carry action inputs to the CLI.
ACTION_INPUT_PREFIX = "MLCI_INPUT_"


@dataclasses.dataclass
class Outcome:
    """What a command hands back to the CLI core, which does all printing and exiting."""

    result: Result | None = None
    passed: bool = True
    text: str = ""
    summary: str | None = None
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: list[Annotation] = dataclasses.field(default_factory=list)
    #: The exit code when not passed; 1 means "a check or gate failed".
    failed_exit_code: int = 1


@dataclasses.dataclass
class Context:
    """Per-invocation services a handler may use: the runner and a progress printer."""

    runner: CiRunner
    json_output: bool = False
    debug: bool = False
    #: The command's result files (see :func:`add_result_file`); a handler may claim more.
    results: ResultFiles = dataclasses.field(default_factory=lambda: ResultFiles("mlci"))

    def progress(self, message: str) -> None:
        """A progress line for long commands; on stderr when stdout carries JSON."""
        self.runner.print(message, to_stderr=self.json_output)


Handler = Callable[[argparse.Namespace, Context], Outcome]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become one-line UsageErrors instead of exiting.

    Abbreviated options are refused: in a CI file, ``--model`` that means ``--model-name`` today
    would become ambiguous, and break the pipeline, the day another ``--model-...`` option appears.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        # The CLI prints errors as "mlci: error: ...": the root parser need not name itself again.
        where = "" if self.prog == "mlci" else f"{self.prog}: "
        raise UsageError(f"{where}{message}", hint=f"see '{self.prog} --help'")


def number(
    kind: type[int] | type[float] = float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[str], Any]:
    """An argparse ``type=`` for a numeric option with its range, checked by options.number_problem.

    Every numeric option of every command declares its range here, so ``--slice-min-size -1``
    stops as "argument --slice-min-size: must be a whole number of at least 1, got '-1'" (exit 2)
    whether it came from the command line or an action input.
    """

    def parse(text: str) -> Any:
        value, problem = number_problem(text, kind, low, high, low_open=low_open, high_open=high_open)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


def common_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the result as JSON on stdout",
    )
    parent.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show a traceback on errors",
    )
    return parent


_COMMON = common_options()


def add_group(subparsers: Any, name: str, help_text: str) -> Any:
    """Add a command group (``mlci data``) and return the subparsers to add its commands to."""
    group = subparsers.add_parser(name, help=help_text, description=help_text, parents=[_COMMON])
    group.set_defaults(handler=None, group_parser=group)
    return group.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)


def add_command(
    subparsers: Any,
    name: str,
    handler: Handler,
    help_text: str,
    description: str | None = None,
    usage: str | None = None,
) -> argparse.ArgumentParser:
    """Add one command with the common options (``--json``, ``--debug``) and its handler.

    ``usage`` replaces the generated usage line, for a command whose required options argparse
    cannot express (one of two options, say).
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        usage=usage,
        help=help_text,
        description=description or help_text,
        parents=[_COMMON],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


# -- result files -------------------------------------------------------------------------

_RESULT_FILES = "_mlci_result_files"


@dataclasses.dataclass(frozen=True)
class ResultOption:
    dest: str
    flag: str
    what: str
    json_record: bool
    default: Any = None


def add_result_file(
    parser: argparse.ArgumentParser,
    *flags: str,
    what: str,
    json_record: bool = True,
    group: Any = None,
    **kwargs: Any,
) -> argparse.Action:
    """Add an option naming a file the command writes (a verdict, a result, a latency file...).

    The CLI core claims the file before the handler runs (see :class:`ResultFiles`): a JSON file
    says ``passed: false`` until the command writes its result, and holds the error when the
    command stops, also on a usage error; any other file (``json_record=False``) is removed. A
    default path that does not exist is left alone: nothing there can mislead, and a command
    that stops creates no file the user did not name.
    """
    action = (group or parser).add_argument(*flags, **kwargs)
    declared: list[ResultOption] = getattr(parser, _RESULT_FILES, [])
    flag = max(action.option_strings, key=len)
    declared.append(ResultOption(action.dest, flag, what, json_record, action.default))
    setattr(parser, _RESULT_FILES, declared)
    return action


def result_options(parser: argparse.ArgumentParser) -> list[ResultOption]:
    return list(getattr(parser, _RESULT_FILES, []))


def claim_result_files(
    parser: argparse.ArgumentParser, args: argparse.Namespace, results: ResultFiles
) -> None:
    for option in result_options(parser):
        value = getattr(args, option.dest, None)
        if value == option.default and not (isinstance(value, str) and os.path.lexists(value)):
            continue
        if value:
            results.claim(value, what=option.what, option=option.flag, json_record=option.json_record)


def claim_unparsed_result_files(
    parser: argparse.ArgumentParser, argv: Sequence[str], results: ResultFiles
) -> None:
    """After argv failed to parse: the existing result files it names (or their defaults) get the error."""
    tokens = list(argv[: list(argv).index("--")] if "--" in argv else argv)
    for option in result_options(parser):
        action = next(a for a in parser._actions if a.dest == option.dest)
        value: Any = action.default
        for i, token in enumerate(tokens):
            for flag in action.option_strings:
                if token == flag and i + 1 < len(tokens):
                    value = tokens[i + 1]
                elif token.startswith(flag + "=") and flag.startswith("--"):
                    value = token[len(flag) + 1 :]
        # Only a file that exists can mislead (a result of an earlier run); argv that does not
        # parse creates none.
        if isinstance(value, str) and value.strip() and os.path.lexists(value):
            try:
                results.claim(value, what=option.what, option=option.flag, json_record=option.json_record)
            except (OSError, MlciError):
                continue


# -- action inputs ------------------------------------------------------------------------


def find_command_parser(
    root: argparse.ArgumentParser, argv: Sequence[str]
) -> tuple[argparse.ArgumentParser, int]:
    """Walk ``argv`` through nested subcommands; return the leaf parser and where its args start."""
    parser, index = root, 0
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return parser, index
        while index < len(argv) and argv[index].startswith("-"):
            index += 1
        if index >= len(argv) or argv[index] not in subs[0].choices:
            return parser, index
        parser = subs[0].choices[argv[index]]
        index += 1


def argv_from_action_inputs(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> list[str]:
    """Turn ``MLCI_INPUT_<DEST>`` variables into arguments of ``parser``.

    This is how action inputs reach the program: the action sets ``env:`` entries, never
    interpolates inputs into a shell script, and every value becomes one argv element, so no
    value can be interpreted by a shell. An empty value means "not given".
    """
    options: list[str] = []
    positionals: list[str] = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.dest in ("json", "debug", "help"):
            continue
        value = environ.get(ACTION_INPUT_PREFIX + action.dest.upper(), "")
        if value == "":
            continue
        if not action.option_strings:
            if action.nargs in ("*", "+"):
                positionals.extend(parse_list(value))
            else:
                positionals.append(value)
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            wanted = parse_bool(value, option=flag.lstrip("-"))
            if wanted == isinstance(action, argparse._StoreTrueAction):
                options.append(flag)
        elif isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+"):
            items = [line.strip() for line in value.splitlines() if line.strip()]
            if isinstance(action, argparse._AppendAction):
                for item in items:
                    options.extend([flag, item])
            else:
                options.append(flag)
                options.extend(items)
        else:
            options.append(f"{flag}={value}")
    # "--" keeps a positional value that starts with a dash from being read as an option.
    return options + (["--", *positionals] if positionals else [])


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else parse_bool(value, option=name)
