"""Running the user's own commands (training, evaluation) for the pipeline.

``command: [python, train.py]`` runs that argv with no shell, so no value in it is ever read by a
shell; ``python`` and ``python3`` as the first word mean the interpreter mlci itself runs in, which
has the project's packages. ``shell: "..."`` runs a string through ``/bin/sh -c``; that happens only
when the user writes one, and a ``${VAR}`` in it reaches the shell as the environment variable
``VAR``, never spliced into the string (``pipeline.config.shell_script``), so a value holding
``;``, ``|`` or ``$(...)`` stays data. Output is streamed line by line to a callback, and the last lines are
kept for the stage's message when the command fails.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mlci_lib.errors import ConfigError

_PYTHON_NAMES = {"python", "python3"}


@dataclasses.dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    duration_s: float
    timed_out: bool
    tail: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def command_argv(command: Sequence[str] | None, shell: str | None, *, where: str) -> list[str]:
    """The argv to execute for a stage's ``command`` list or ``shell`` string."""
    if command:
        argv = [str(part) for part in command]
        if argv[0] in _PYTHON_NAMES:
            argv[0] = sys.executable
        return argv
    if shell:
        return ["/bin/sh", "-c", shell]
    raise ConfigError(f"{where}: give 'command' (an argv list) or 'shell' (a string)")


def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    base_env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    on_line: Callable[[str], None] | None = None,
    keep_lines: int = 15,
) -> CommandResult:
    """Run ``argv`` in ``cwd``; stream its merged output to ``on_line``; kill it after ``timeout_s``.

    The command sees ``base_env`` (default: this process's environment) plus ``env``.
    """
    environment = dict(os.environ if base_env is None else base_env)
    environment.update(env or {})
    environment.setdefault("PYTHONUNBUFFERED", "1")
    tail: collections.deque[str] = collections.deque(maxlen=keep_lines)
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
    except FileNotFoundError:
        return CommandResult(tuple(argv), 127, 0.0, False, (f"command not found: {argv[0]}",))
    except PermissionError:
        return CommandResult(tuple(argv), 126, 0.0, False, (f"command not executable: {argv[0]}",))
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)

    timer = threading.Timer(timeout_s, kill) if timeout_s else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            text = line.rstrip("\n")
            tail.append(text)
            if on_line:
                on_line(text)
        returncode = process.wait()
    finally:
        if timer:
            timer.cancel()
        if process.poll() is None:
            kill()
            process.wait()
    return CommandResult(tuple(argv), returncode, time.monotonic() - started, timed_out.is_set(), tuple(tail))
