"""The one module that talks to the CI runner.

It writes step outputs (``$GITHUB_OUTPUT``), the job summary (``$GITHUB_STEP_SUMMARY``),
annotations (``::error title=...::``) and secret masks (``::add-mask::``). Outside GitHub Actions
it degrades to plain text, and to files when asked through ``MLCI_OUTPUT_FILE`` and
``MLCI_SUMMARY_FILE``. Nothing is opened at import time: the environment is read when a
:class:`CiRunner` is created, and files are opened only when something is written.
"""

from __future__ import annotations

import dataclasses
import os
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
                    self.stdout.write(f"::add-mask::{_escape_data(part)}\n")
                    self.stdout.flush()

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
            while delimiter in value:  # pragma: no cover - a uuid in user data is not a real risk
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
        stream = self.stderr if to_stderr else self.stdout
        if self.on_github:
            clean = dataclasses.replace(annotation, message=self.redact(annotation.message))
            stream.write(workflow_command(clean) + "\n")
        else:
            where = ""
            if annotation.file:
                where = f" [{annotation.file}{':' + str(annotation.line) if annotation.line else ''}]"
            title = f"{annotation.title}: " if annotation.title else ""
            stream.write(f"{annotation.level}: {title}{self.redact(annotation.message)}{where}\n")
        stream.flush()

    def print(self, text: str, *, to_stderr: bool = False) -> None:
        stream = self.stderr if to_stderr else self.stdout
        stream.write(self.redact(text) + ("" if text.endswith("\n") else "\n"))
        stream.flush()

    def write_file_output(self, path: str | os.PathLike[str], text: str) -> Path:
        from mlci_lib.files import write_text_atomic

        return write_text_atomic(path, self.redact(text))
