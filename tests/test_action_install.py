"""The root action, run for real through act: it installs mlci and exposes it to later steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.act import run_workflow

pytestmark = pytest.mark.workflow

WORKFLOW = """
on: push
jobs:
  use-mlci:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0
        with:
          python-version: '3.11'
      - id: mlci
        uses: mlci-dev/mlci@v1
        with:
          extras: {extras}
      - id: later
        run: |
          mlci --version
          echo "version=$(mlci --version)" >> "$GITHUB_OUTPUT"
"""


def test_root_action_installs_mlci_for_later_steps(act_binary: str, tmp_path: Path) -> None:
    import mlci_lib

    run = run_workflow(act_binary, tmp_path, WORKFLOW.format(extras="''"))
    assert run.returncode == 0, run.log[-3000:]
    assert run.outputs("mlci")["version"] == mlci_lib.__version__
    assert run.outputs("later")["version"] == f"mlci {mlci_lib.__version__}"
    assert "already installed" in run.log


def test_root_action_refuses_a_bad_input_with_exit_2(act_binary: str, tmp_path: Path) -> None:
    run = run_workflow(act_binary, tmp_path, WORKFLOW.format(extras="'data; rm -rf /'"))
    assert run.returncode != 0
    assert run.outcome("mlci") == "failure"
    assert run.outcome("later") == "skipped"
    assert "exit status 2" in run.log
    errors = run.error_lines
    assert any("::error title=mlci install::input extras: unknown extra 'data;'" in e for e in errors), errors
