"""The CI runner module: outputs, summary, annotations and masks, on GitHub and elsewhere."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

from mlci_lib.runner import Annotation, CiRunner, workflow_command


def parse_output_file(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        name, _, delimiter = lines[i].partition("<<")
        end = lines.index(delimiter, i + 1)
        values[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return values


def test_outputs_are_multiline_safe(tmp_path: Path) -> None:
    output = tmp_path / "out"
    runner = CiRunner({"GITHUB_OUTPUT": str(output)})
    runner.set_outputs({"summary": "line 1\nEOF\nline 3", "passed": "true"})
    runner.set_outputs({"other": "x=y"})
    assert parse_output_file(output.read_text()) == {
        "summary": "line 1\nEOF\nline 3",
        "passed": "true",
        "other": "x=y",
    }


def test_annotations_encode_newlines_and_properties() -> None:
    line = workflow_command(Annotation("error", "50% bad\nsecond", title="a: b, c", file="d,e.csv", line=3))
    assert line == "::error title=a%3A b%2C c,file=d%2Ce.csv,line=3::50%25 bad%0Asecond"
    assert "\n" not in line


def test_masks_are_announced_and_applied(tmp_path: Path) -> None:
    out = io.StringIO()
    summary = tmp_path / "summary.md"
    runner = CiRunner({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}, stdout=out)
    runner.mask("s3cr3t-token")
    runner.print("token is s3cr3t-token")
    runner.append_summary("used s3cr3t-token")
    runner.annotate(Annotation("warning", "leaked s3cr3t-token?"))
    text = out.getvalue()
    assert text.startswith("::add-mask::s3cr3t-token\n")
    assert text.count("s3cr3t-token") == 1
    assert "token is ***" in text
    assert summary.read_text() == "used ***\n"


def test_outside_github_annotations_are_plain_text() -> None:
    out = io.StringIO()
    CiRunner({}, stdout=out).annotate(Annotation("error", "bad", title="T", file="f.csv", line=2))
    assert out.getvalue() == "error: T: bad [f.csv:2]\n"
    assert not re.search(r"^::", out.getvalue())


def test_importing_the_runner_opens_no_file(tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist" / "out"
    code = "import mlci_lib.runner, mlci_lib.cli; mlci_lib.runner.CiRunner()"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"GITHUB_OUTPUT": str(missing), "GITHUB_STEP_SUMMARY": str(missing), "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert not missing.parent.exists()
