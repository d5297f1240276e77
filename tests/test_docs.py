"""The documentation site builds with no warning, and its generated reference matches the code."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.components import REPO_ROOT, require, venv_tool


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mkdocs = venv_tool("mkdocs")
    require(mkdocs is not None, "mkdocs", "install mlci[dev] (scripts/test does)")
    assert mkdocs is not None
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.mark.slow  # about 5 s
def test_the_site_builds_strictly(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "reference" / "cli" / "index.html").is_file()


@pytest.mark.slow
def test_the_cli_reference_lists_every_command_and_option(site: Path) -> None:
    import argparse

    from mlci_lib.cli import build_parser

    html = (site / "reference" / "cli" / "index.html").read_text()

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            for sub_name, sub in action.choices.items():
                walk(sub, f"{name} {sub_name}")
        if not subs:
            assert f"<code>{name}</code>" in html, f"{name} is missing from the CLI reference"
            for option in parser._actions:
                if isinstance(option, argparse._HelpAction) or option.help == argparse.SUPPRESS:
                    continue
                for flag in option.option_strings:
                    assert f"<code>{flag}</code>" in html, f"{name} {flag} is missing"

    walk(build_parser(), "mlci")


@pytest.mark.slow
def test_the_action_and_schema_references_cover_every_file(site: Path) -> None:
    actions = (site / "reference" / "actions" / "index.html").read_text()
    for file in sorted((REPO_ROOT / "actions").glob("*/action.yml")):
        assert f"mlci-dev/mlci/actions/{file.parent.name}@v1" in actions
    schemas = (site / "reference" / "schemas" / "index.html").read_text()
    for file in sorted((REPO_ROOT / "mlci_lib" / "schemas").glob("mlci.*.schema.json")):
        name = file.name.removesuffix(".schema.json")
        assert f"<code>{name}</code>" in schemas, name
        assert (site / "schemas" / file.name).is_file(), f"{file.name} is not published"
