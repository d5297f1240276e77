"""The one module that talks to the CI runner.

It writes step outputs (``$GITHUB_OUTPUT``), the job summary (``$GITHUB_STEP_SUMMARY``),
annotations (``::error title=...::``) and secret masks (``::add-mask::``). Outside GitHub Actions
it degrades to plain text, and to files when asked through ``MLCI_OUTPUT_FILE`` and
``MLCI_SUMMARY_FILE``. Nothing is opened at import time: the environment is read when a
:class:`CiRunner` is created, and files are opened only when something is written.

Under GitHub Actions every line mlci writes is read by the runner for workflow commands, and much
of what mlci prints comes from users' data (column names, category values, file paths, a shell
stage's output). So this module is the only writer, and it never lets such text start a command:

- the data and properties of mlci's own commands use the runner's escapes (``%25``, ``%0D``,
  ``%0A``; ``%3A`` and ``%2C`` in properties);
- any other text that could hold a command (``::`` at a line start, ``##[`` anywhere) is wrapped in
  ``::stop-commands::TOKEN`` ... ``::TOKEN::`` with a fresh random token;
- a JSON result on stdout is made inert instead (``#`` before ``[`` written ``\\u0023``: the same
  JSON value), so that ``$(mlci --json ...)`` still reads plain JSON;
- all of it goes to one stream (stdout, or stderr when stdout carries a JSON result): the runner
  reads stdout and stderr in separate batches, so a stop on one stream does not order lines of the
  other, and an ``::error::`` written to one while the other is stopped would be lost.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO


@dataclasses.dataclass(frozen=True)
class Annotation:
    """A message attached to the run, and to a file and line when known."""

    level: str  # "error", "warning" or "notice"
    message: str
    title: str | None = None
    file: str | None = None
    line: int | None = None

    def __post_init__(self) -> None:
        if self.level not in ("error", "warning", "notice"):
            raise ValueError(f"annotation level must be error, warning or notice, not {self.level!r}")


def _escape_data(text: str) -> str:
    # The runner decodes these three escapes; a raw newline would end the command early.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


#: What the runner could parse as a command: ``::`` (at a line start once leading blanks are
#: trimmed; looking for it anywhere is simpler and errs on the safe side) or the legacy ``##[``,
#: which the runner finds anywhere in a line.
_MAY_HOLD_COMMAND = re.compile(r"::|##\[")


def stop_commands(text: str) -> str:
    """``text`` as the runner will show it but never execute: wrapped in ``stop-commands``.

    The token is random, so text cannot guess it and resume command processing early; it is
    drawn again in the (theoretical) case that it occurs in the text (the runner compares tokens
    without regard to case).
    """
    if not _MAY_HOLD_COMMAND.search(text):
        return text
    token = secrets.token_hex(16)
    while token in text.lower():  # pragma: no cover - 128 random bits
        token = secrets.token_hex(16)
    body = text[:-1] if text.endswith("\n") else text
    return f"::stop-commands::{token}\n{body}\n::{token}::"


def inert_json(text: str) -> str:
    """JSON text in which the runner finds no command, and that decodes to the same value.

    JSON lines never start with ``::`` (a string cannot hold a raw line break), so only the legacy
    ``##[`` form could match; ``#`` appears only inside strings, where ``\\u0023`` means the same.
    """
    return re.sub(r"#(?=\[)", r"\\u0023", text)


def workflow_command(annotation: Annotation) -> str:
    """Render an annotation as a GitHub workflow command line."""
    props = []
    if annotation.title:
        props.append(f"title={_escape_property(annotation.title)}")
    if annotation.file:
        props.append(f"file={_escape_property(annotation.file)}")
        if annotation.line is not None:
            props.append(f"line={int(annotation.line)}")
    prop_text = (" " + ",".join(props)) if props else ""
    return f"::{annotation.level}{prop_text}::{_escape_data(annotation.message)}"


class CiRunner:
    """Writes outputs, summaries, annotations and masks for the CI system mlci runs under."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.on_github = env.get("GITHUB_ACTIONS") == "true"
        self.output_path = env.get("GITHUB_OUTPUT") or env.get("MLCI_OUTPUT_FILE") or None
        self.summary_path = env.get("GITHUB_STEP_SUMMARY") or env.get("MLCI_SUMMARY_FILE") or None
        self._stdout = stdout
        self._stderr = stderr
        self._secrets: list[str] = []
        #: True once stdout is reserved for a machine-readable result (``--json``).
        self.stdout_is_data = False

    def reserve_stdout(self) -> None:
        """Keep stdout for the result (``--json``): on GitHub the log then goes to stderr."""
        self.stdout_is_data = True

    def _stream(self, to_stderr: bool) -> TextIO:
        if self.on_github:
            # One stream for everything the runner reads as a log (see the module docstring).
            return self.stderr if self.stdout_is_data else self.stdout
        return self.stderr if to_stderr else self.stdout

    @property
    def stdout(self) -> TextIO:
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self._stderr or sys.stderr

    # -- secrets -------------------------------------------------------------------------
    def mask(self, secret: str | None) -> None:
        """Ask the runner to hide ``secret`` in logs, and hide it in what mlci itself writes."""
        if not secret:
            return
        for part in secret.splitlines():
            if part.strip():
                self._secrets.append(part)
                if self.on_github:
                    stream = self._stream(False)
                    stream.write(f"::add-mask::{_escape_data(part)}\n")
                    stream.flush()

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    # -- outputs -------------------------------------------------------------------------
    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        """Write step outputs, multi-line safe (``name<<DELIMITER``)."""
        if not outputs or not self.output_path:
            return
        chunks = []
        for name, value in outputs.items():
            value = self.redact(str(value))
            delimiter = f"MLCI_EOF_{uuid.uuid4().hex}"
            # A line equal to the delimiter would end the value early and start output lines
            # of the value's choosing: draw again in that (theoretical) case.
            while delimiter in value:
                delimiter = f"MLCI_EOF_{uuid.uuid4().hex}"
            chunks.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        with open(self.output_path, "a", encoding="utf-8") as handle:
            handle.write("".join(chunks))

    def append_summary(self, markdown: str) -> None:
        """Append Markdown to the job summary (a file outside GitHub, when one is named)."""
        if not markdown or not self.summary_path:
            return
        text = self.redact(markdown)
        with open(self.summary_path, "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")

    # -- annotations ---------------------------------------------------------------------
    def annotate(self, annotation: Annotation, *, to_stderr: bool = False) -> None:
        """Emit an annotation: a workflow command on GitHub, a plain line elsewhere."""
        stream = self._stream(to_stderr)
        if self.on_github:
            clean = dataclasses.replace(
                annotation,
                message=self.redact(annotation.message),
                title=self.redact(annotation.title) if annotation.title else annotation.title,
            )
            stream.write(workflow_command(clean) + "\n")
        else:
            where = ""
            if annotation.file:
                where = f" [{annotation.file}{':' + str(annotation.line) if annotation.line else ''}]"
            title = f"{annotation.title}: " if annotation.title else ""
            stream.write(f"{annotation.level}: {title}{self.redact(annotation.message)}{where}\n")
        stream.flush()

    def print(self, text: str, *, to_stderr: bool = False) -> None:
        """Print text for people; on GitHub it can never start a workflow command."""
        stream = self._stream(to_stderr)
        clean = self.redact(text)
        if self.on_github:
            clean = stop_commands(clean)
        stream.write(clean + ("" if clean.endswith("\n") else "\n"))
        stream.flush()

    def print_json(self, text: str) -> None:
        """Print a JSON result on stdout (on GitHub made inert, still the same JSON value)."""
        clean = self.redact(text)
        if self.on_github:
            clean = inert_json(clean)
        self.stdout.write(clean + ("" if clean.endswith("\n") else "\n"))
        self.stdout.flush()

    def write_file_output(self, path: str | os.PathLike[str], text: str) -> Path:
        from mlci_lib.files import write_text_atomic

        return write_text_atomic(path, self.redact(text))
