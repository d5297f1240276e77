"""The public API: every lazy export resolves, and type checkers see the real signatures."""

from __future__ import annotations

import ast
import subprocess
import textwrap
from pathlib import Path

import pytest

import mlci_lib
from tests.helpers.components import REPO_ROOT, require, venv_tool


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse((REPO_ROOT / "mlci_lib" / "__init__.py").read_text())
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.module
                for alias in statement.names:
                    names[alias.asname or alias.name] = statement.module
    return names


def test_the_type_checking_block_lists_exactly_the_lazy_exports() -> None:
    exports = dict(mlci_lib._EXPORTS)
    assert _type_checking_imports() == exports


@pytest.mark.parametrize("name", sorted(mlci_lib._EXPORTS))
@pytest.mark.slow
def test_every_export_resolves_to_what_its_module_defines(name: str) -> None:
    import importlib

    module = importlib.import_module(mlci_lib._EXPORTS[name])
    assert getattr(mlci_lib, name) is getattr(module, name)


@pytest.mark.slow  # mypy analyses the package once (about 20 s without its cache)
def test_mypy_strict_checks_a_users_script_against_the_real_signatures(tmp_path: Path) -> None:
    mypy = venv_tool("mypy")
    require(mypy is not None, "mypy", "install mlci[dev] (scripts/test does)")
    assert mypy is not None
    good = tmp_path / "good.py"
    good.write_text(
        textwrap.dedent(
            """
            from mlci_lib import GateVerdict, MlciError, from_dict, run_gate

            def gate() -> bool:
                try:
                    verdict: GateVerdict = run_gate("c.csv", "b.csv", rule=["accuracy min=0.8"])
                except MlciError as error:
                    print(error.one_line())
                    return False
                again = from_dict(GateVerdict, verdict.to_dict())
                return again.passed
            """
        )
    )
    bad = tmp_path / "bad.py"
    bad.write_text(
        textwrap.dedent(
            """
            from mlci_lib import run_gate

            verdict = run_gate("candidate.csv", rule=["accuracy min=0.8"], resamples="many")
            flag: str = verdict.passed
            """
        )
    )
    command = [mypy, "--strict", "--no-incremental", "--follow-imports=silent"]
    done = subprocess.run([*command, str(good)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run([*command, str(bad)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout
    # Both mistakes are found: a str for an int option, and the bool result used as a str.
    assert 'Argument "resamples" to "run_gate" has incompatible type "str"' in done.stdout, done.stdout
    assert 'expression has type "bool", variable has type "str"' in done.stdout, done.stdout
