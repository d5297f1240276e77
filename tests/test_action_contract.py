"""Every action follows the contract written in README.md ("Action contract")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlci_lib.cli import build_parser
from mlci_lib.cli.framework import ACTION_INPUT_PREFIX, find_command_parser
from tests.helpers.components import REPO_ROOT

ACTION_FILES = sorted(REPO_ROOT.glob("actions/*/action.yml"))
ALL_ACTION_FILES = [REPO_ROOT / "action.yml", *ACTION_FILES]
KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
OUTPUT_VALUE = re.compile(r"^\$\{\{ steps\.[a-z0-9-]+\.outputs\.[a-z0-9-]+ \}\}$")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(REPO_ROOT)) for p in paths]


@pytest.mark.parametrize("path", ALL_ACTION_FILES, ids=ids(ALL_ACTION_FILES))
def test_action_shape(path: Path) -> None:
    action = load(path)
    assert action["runs"]["using"] == "composite"
    for name, spec in (action.get("inputs") or {}).items():
        assert KEBAB.match(name), f"input {name} is not kebab-case"
        assert spec.get("description"), f"input {name} has no description"
        assert isinstance(spec.get("default"), str), f"input {name} needs a quoted string default"
    for name, spec in (action.get("outputs") or {}).items():
        assert KEBAB.match(name), f"output {name} is not kebab-case"
        assert spec.get("description"), f"output {name} has no description"
        assert OUTPUT_VALUE.match(str(spec.get("value"))), f"output {name}: {spec.get('value')}"
    for step in action["runs"]["steps"]:
        assert "${{" not in str(step.get("run", "")), f"{path}: expression inside run:"
        if "run" in step:
            assert step.get("shell") == "bash"
            assert len(str(step["run"]).strip().splitlines()) <= 3, "keep run: scripts to a line or two"


@pytest.mark.parametrize("path", ACTION_FILES, ids=ids(ACTION_FILES))
@pytest.mark.slow
def test_inputs_reach_the_command_as_its_options(path: Path) -> None:
    """Each input is passed as MLCI_INPUT_<NAME> to `mlci --from-env <command>`, which has that option."""
    action = load(path)
    steps = action["runs"]["steps"]
    install = steps[0]
    assert "mlci_lib/install.py" in install["run"] and "command -v python3" in install["run"]
    commands = [s for s in steps if "--from-env" in str(s.get("run", ""))]
    assert commands, f"{path}: no step runs `python3 -m mlci_lib --from-env <command>`"
    parser = build_parser()
    consumed: set[str] = set()
    for step in commands:
        words = str(step["run"]).split("--from-env", 1)[1].split()
        leaf, start = find_command_parser(parser, words)
        assert start > 0, f"{path}: unknown command in {step['run']!r}"
        dests = {a.dest for a in leaf._actions}
        for variable, value in (step.get("env") or {}).items():
            if not variable.startswith(ACTION_INPUT_PREFIX):
                continue
            dest = variable[len(ACTION_INPUT_PREFIX) :].lower()
            assert dest in dests, f"{path}: {variable} is not an option of {leaf.prog}"
            match = re.fullmatch(r"\$\{\{ inputs\.([a-z0-9-]+) \}\}", str(value))
            assert match, f"{path}: {variable} must be exactly ${{{{ inputs.<name> }}}}"
            assert match.group(1).replace("-", "_") == dest, f"{path}: {variable} takes another input"
            consumed.add(match.group(1))
    other_uses = {m for s in steps for m in re.findall(r"inputs\.([a-z0-9-]+)", str(s.get("env", "")))}
    unused = set(action.get("inputs") or {}) - consumed - other_uses
    assert not unused, f"{path}: inputs never passed to the program: {sorted(unused)}"


def readme_names(readme: str, heading: str) -> list[str]:
    match = re.search(rf"^## {heading}\s*$(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    assert match, f"README has no '## {heading}' section"
    return re.findall(r"^\|\s*`([a-z0-9-]+)`\s*\|", match.group(1), re.MULTILINE)


@pytest.mark.parametrize("path", ACTION_FILES, ids=ids(ACTION_FILES))
@pytest.mark.slow
def test_readme_lists_exactly_the_inputs_and_outputs(path: Path) -> None:
    readme_path = path.parent / "README.md"
    assert readme_path.is_file(), f"{path.parent} has no README.md"
    readme = readme_path.read_text()
    action = load(path)
    assert sorted(readme_names(readme, "Inputs")) == sorted(action.get("inputs") or {})
    assert sorted(readme_names(readme, "Outputs")) == sorted(action.get("outputs") or {})
    assert "## Permissions" in readme
    assert re.search(r"uses: mlci-dev/mlci/actions/" + re.escape(path.parent.name) + "@", readme), (
        "README needs a copy-paste example that uses the action"
    )


def test_there_are_actions_to_check() -> None:
    assert (REPO_ROOT / "action.yml").is_file()
