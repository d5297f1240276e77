"""Read a step's log the way the GitHub Actions runner does, and return the commands it would run.

The runner splits what a step writes into lines (at ``\\r\\n``, ``\\r`` or ``\\n``, as .NET's
``ReadLine`` does), and each line is a command when, with leading white space trimmed, it is
``::name props::data`` (or holds the legacy ``##[name props]data`` anywhere), for a registered
name. ``::stop-commands::TOKEN`` stops all processing until ``::TOKEN::``. Data and properties are
unescaped (``%25``, ``%0D``, ``%0A``; properties also ``%3A``, ``%2C``). This follows the runner's
``ActionCommandManager`` and ``ActionCommand`` parsers closely enough to tell which lines of a log
it would act on.
"""

from __future__ import annotations

import dataclasses
import re

REGISTERED = {
    "set-env",
    "set-output",
    "save-state",
    "add-mask",
    "add-path",
    "add-matcher",
    "remove-matcher",
    "warning",
    "error",
    "notice",
    "debug",
    "group",
    "endgroup",
    "echo",
}


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    properties: dict[str, str]
    data: str


def _unescape(text: str, *, prop: bool) -> str:
    pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if prop else []) + [("%25", "%")]
    for code, char in pairs:
        text = text.replace(code, char)
    return text


def _parse_v2(line: str, registered: set[str]) -> Command | None:
    message = line.lstrip()
    if not message.startswith("::"):
        return None
    end = message.find("::", 2)
    if end < 0:
        return None
    info = message[2:end]
    name, _, props_text = info.partition(" ")
    if name.lower() not in registered:
        return None
    props: dict[str, str] = {}
    for item in props_text.strip().split(","):
        key, sep, value = item.partition("=")
        if item and sep and key and value:
            props[key] = _unescape(value, prop=True)
    return Command(name.lower(), props, _unescape(message[end + 2 :], prop=False))


def _parse_v1(line: str, registered: set[str]) -> Command | None:
    start = line.find("##[")
    if start < 0:
        return None
    close = line.find("]", start)
    if close < 0:
        return None
    info = line[start + 3 : close]
    name = info.split(" ", 1)[0]
    if name.lower() not in registered:
        return None
    return Command(name.lower(), {}, line[close + 1 :])


def runner_lines(log: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", log)


def processed_commands(log: str) -> list[Command]:
    """The commands the runner would process in ``log``, in order (stop and resume included)."""
    registered = set(REGISTERED) | {"stop-commands"}
    stop_token: str | None = None
    done: list[Command] = []
    for line in runner_lines(log):
        if not line:
            continue
        command = _parse_v2(line, registered) or _parse_v1(line, registered)
        if command is None:
            continue
        if stop_token is not None:
            if command.name == stop_token.lower():
                registered.discard(stop_token.lower())
                stop_token = None
                done.append(Command("resume-commands", {}, command.name))
            continue
        if command.name == "stop-commands":
            stop_token = command.data
            registered.add(stop_token.lower())
        done.append(command)
    return done


def unintended(
    log: str, *, allowed_titles: tuple[str, ...] = ("mlci",), masks: tuple[str, ...] = ()
) -> list[Command]:
    """Commands in ``log`` that mlci did not mean to write.

    mlci writes annotations titled ``mlci ...``, masks, and stop/resume pairs; any other command,
    or an annotation without an mlci title, came from data.
    """
    bad = []
    for command in processed_commands(log):
        if command.name in ("stop-commands", "resume-commands"):
            continue
        titled = command.properties.get("title", "").startswith(allowed_titles)
        if command.name in ("error", "warning", "notice") and titled:
            continue
        if command.name == "add-mask" and command.data in masks:
            continue
        bad.append(command)
    return bad
