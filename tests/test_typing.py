"""mypy in strict mode (as configured in pyproject.toml) finds no error in the package."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers.components import REPO_ROOT, require, venv_tool


@pytest.mark.slow  # about 20 s without mypy's cache
def test_mypy_finds_no_error() -> None:
    mypy = venv_tool("mypy")
    require(mypy is not None, "mypy", "install mlci[dev] (scripts/test does)")
    assert mypy is not None
    # The files and options come from pyproject.toml, as when mypy is run by hand.
    done = subprocess.run([mypy], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout, done.stdout
