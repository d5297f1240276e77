"""README.md and docs/ stay true to the code: the action catalog, CLI reference, Python API, test command."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

import mlci_lib
from mlci_lib.cli import build_parser

REPO_ROOT = Path(__file__).resolve().parent.parent
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
#: README.md and the documentation site's pages, where the sections below live.
DOCS = "\n".join(
    [README, *(p.read_text(encoding="utf-8") for p in sorted((REPO_ROOT / "docs").rglob("*.md")))]
)

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def section(name: str) -> str:
    """The text between ``<!-- section:NAME -->`` and ``<!-- /section:NAME -->``."""
    match = re.search(rf"<!-- section:{name} -->\n(.*?)<!-- /section:{name} -->", DOCS, re.DOTALL)
    assert match, f"neither README.md nor docs/ has section:{name} markers"
    assert match.group(1).strip(), f"section:{name} is empty"
    return match.group(1)


def table_rows(text: str) -> list[str]:
    """Body rows of the Markdown tables in ``text`` (header and separator rows left out)."""
    rows = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|") or re.fullmatch(r"\|[\s:|-]+\|", line.strip()):
            continue
        next_line = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if re.fullmatch(r"\|[\s:|-]+\|", next_line):
            continue  # a header row
        rows.append(line)
    return rows


def first_cell(row: str) -> str:
    return row.strip().strip("|").split("|")[0].strip()


def cli_commands() -> list[tuple[str, bool]]:
    """Every command and subcommand the real parser defines, e.g. ('mlci data check', False).

    The flag is true for a group (``mlci data``), whose subcommands carry the options.
    """

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> list[tuple[str, bool]]:
        found = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    children = walk(sub, [*prefix, name])
                    found.append((" ".join([*prefix, name]), bool(children)))
                    found.extend(children)
        return found

    return walk(build_parser(), ["mlci"])


# -- the action catalog ------------------------------------------------------------------------


def test_catalog_lists_every_action_with_a_link_to_its_readme() -> None:
    rows = table_rows(section("catalog"))
    names = sorted(p.parent.name for p in (REPO_ROOT / "actions").glob("*/action.yml"))
    assert names, "no actions found in actions/"
    for name in names:
        matching = [row for row in rows if f"actions/{name}" in first_cell(row)]
        assert matching, f"the Actions catalog has no row for actions/{name}"
        links = [target for _, target in _LINK.findall(first_cell(matching[0]))]
        assert f"actions/{name}/README.md" in links, f"the catalog row of actions/{name} must link its README"
        assert (REPO_ROOT / "actions" / name / "README.md").is_file()


def test_catalog_lists_the_root_action() -> None:
    rows = table_rows(section("catalog"))
    root = [row for row in rows if "`mlci-dev/mlci@v1`" in first_cell(row)]
    assert root, "the Actions catalog has no row for the root action mlci-dev/mlci@v1"
    assert "(action.yml)" in first_cell(root[0])


def test_catalog_rows_name_the_command_each_action_runs() -> None:
    rows = table_rows(section("catalog"))
    for path in sorted((REPO_ROOT / "actions").glob("*/action.yml")):
        runs = re.findall(r"run: python3 -m mlci_lib --from-env (.+)", path.read_text(encoding="utf-8"))
        assert len(runs) == 1, f"{path}: expected one mlci step"
        row = next(row for row in rows if f"actions/{path.parent.name}" in first_cell(row))
        command = f"mlci {runs[0].strip()}"
        assert f"`{command}`" in row, f"the catalog row of {path.parent.name} must say {command}"


def test_no_placeholder_repository_left() -> None:
    assert "OWNER/mlci" not in DOCS


# -- the CLI reference -------------------------------------------------------------------------


def test_cli_commands_are_found() -> None:
    commands = dict(cli_commands())
    assert commands["mlci gate"] is False
    assert commands["mlci data"] is True
    assert commands["mlci data check"] is False  # subcommands are walked too


@pytest.mark.parametrize(("command", "is_group"), cli_commands(), ids=[name for name, _ in cli_commands()])
def test_cli_reference_lists_every_command(command: str, is_group: bool) -> None:
    cells = [first_cell(row) for row in table_rows(section("cli"))]
    if is_group:
        # A group has no row of its own: its subcommands have theirs (each checked here too).
        assert any(cell.startswith(f"`{command} ") for cell in cells), f"the CLI reference lacks {command!r}"
        return
    pattern = re.compile(rf"^`{re.escape(command)}(\s[^`]*)?`$")
    assert any(pattern.match(cell) for cell in cells), f"the CLI reference has no row for {command!r}"


def test_cli_reference_lists_the_global_options() -> None:
    text = section("cli")
    for option in ("--json", "--debug", "--from-env", "--version"):
        assert f"`{option}`" in text, f"the CLI reference does not explain {option}"
    root_options = {
        flag for action in build_parser()._actions for flag in action.option_strings if flag.startswith("--")
    }
    assert root_options - {"--help"} == {"--json", "--debug", "--from-env", "--version"}


# -- the Python API ----------------------------------------------------------------------------


def imported_from_mlci_lib() -> list[str]:
    names = []
    for block in _FENCE.findall(DOCS):
        for match in re.finditer(r"^\s*from mlci_lib import (\([^)]*\)|[^\n]+)", block, re.MULTILINE):
            listed = re.sub(r"#[^\n]*", "", match.group(1)).strip("()")
            names.extend(name.strip() for name in listed.split(",") if name.strip())
    return names


def test_readme_imports_are_found() -> None:
    names = imported_from_mlci_lib()
    assert "run_gate" in names
    assert "render_report" in names


@pytest.mark.parametrize("name", sorted(set(imported_from_mlci_lib())))
def test_readme_imports_are_exported(name: str) -> None:
    assert name in mlci_lib.__all__, f"README imports {name} from mlci_lib, which does not export it"
    # The name resolves to what its module defines, and is what the README uses it as.
    import importlib

    value = getattr(mlci_lib, name)
    assert value is getattr(importlib.import_module(mlci_lib._EXPORTS[name]), name)
    assert callable(value), f"README imports {name}, which is not a function or class"


def test_api_section_names_the_error_classes() -> None:
    text = section("api")
    errors = [name for name in mlci_lib.__all__ if name == "CheckFailed" or name.endswith("Error")]
    for name in errors:
        error = getattr(mlci_lib, name)
        assert issubclass(error, mlci_lib.MlciError)
        assert f"`{name}`" in text, f"the Python API section does not mention {name}"
        if name != "MlciError":
            row = next(row for row in table_rows(text) if first_cell(row).startswith(f"`{name}`"))
            assert row.strip().strip("|").split("|")[-1].strip() == str(error.exit_code), (
                f"the exit code of {name} is {error.exit_code}"
            )


# -- the test command --------------------------------------------------------------------------


def test_ci_runs_the_test_command_of_the_readme() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"^scripts/test\b", "\n".join(_FENCE.findall(quick_start)), re.MULTILINE)
    assert "CI runs exactly this command (`.ci/run`)" in " ".join(quick_start.split())
    ci_run = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [
        line.strip()
        for line in ci_run.splitlines()
        if line.strip() and not line.lstrip().startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert commands == ["exec scripts/test"], f".ci/run must run only scripts/test, it runs {commands}"
    assert (REPO_ROOT / "scripts" / "test").is_file()
    assert "`scripts/test` is the one test command" in README
