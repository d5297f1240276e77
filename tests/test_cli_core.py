"""The CLI core: exit codes, one-line errors, --json, --from-env, and a light start-up."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlci_lib import __version__
from mlci_lib.cli import build_parser, main
from mlci_lib.cli.framework import argv_from_action_inputs, find_command_parser
from mlci_lib.errors import UsageError
from mlci_lib.runner import CiRunner


def run_cli(argv: list[str], environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, runner=CiRunner(environ or {}, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "exit_code", "stderr_has"),
    [
        pytest.param(["bogus"], 2, "invalid choice: 'bogus'", id="unknown-command"),
        pytest.param(["data"], 2, "", id="group-without-command-shows-help"),
        pytest.param(["data", "nope"], 2, "invalid choice: 'nope'", id="unknown-subcommand"),
        pytest.param(["--no-such-flag"], 2, "unrecognized arguments", id="unknown-flag"),
    ],
)
@pytest.mark.slow
def test_usage_errors_are_one_line_with_exit_2(argv: list[str], exit_code: int, stderr_has: str) -> None:
    code, _out, err = run_cli(argv)
    assert code == exit_code
    if stderr_has:
        assert stderr_has in err
        assert len(err.strip().splitlines()) == 1
        assert "Traceback" not in err


def test_abbreviated_options_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # --resample would mean --resamples today; a CI file must not depend on that staying unique.
    monkeypatch.chdir(tmp_path)  # the usage error is written into the default verdict file
    code, _out, err = run_cli(["gate", "--candidate", "x.csv", "--resample", "10"])
    assert code == 2 and "unrecognized arguments: --resample 10" in err, err
    assert not err.startswith("mlci: error: mlci:"), err


def test_version() -> None:
    done = subprocess.run([sys.executable, "-m", "mlci_lib", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.strip() == f"mlci {__version__}"


def test_errors_on_github_are_annotations_and_summary(tmp_path) -> None:
    summary = tmp_path / "summary.md"
    code, out, _err = run_cli(["bogus"], {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    assert code == 2
    # On GitHub the whole log is one stream (stdout unless --json), so that no stop-commands
    # block on the other stream can swallow the annotation.
    assert out.startswith("::error title=mlci usage error::")
    assert "invalid choice" in summary.read_text()


def test_json_error_output_is_machine_readable() -> None:
    code, out, _err = run_cli(["--json", "bogus"])
    assert code == 2
    error = json.loads(out)
    assert error["schema"] == "mlci.error" and error["exit_code"] == 2


def test_from_env_maps_every_kind_of_option() -> None:
    import argparse

    parser = build_parser()
    sub = parser._subparsers._group_actions[0]  # type: ignore[union-attr]
    command = sub.choices["serve"]
    probe = argparse.ArgumentParser()
    probe.add_argument("data")
    probe.add_argument("--verdict-file")
    probe.add_argument("--allow-pickle", action="store_true")
    probe.add_argument("--slice", action="append")
    argv = argv_from_action_inputs(
        probe,
        {
            "MLCI_INPUT_DATA": "-weird; rm -rf /",
            "MLCI_INPUT_VERDICT_FILE": "$(touch pwned)",
            "MLCI_INPUT_ALLOW_PICKLE": "true",
            "MLCI_INPUT_SLICE": "sex\nregion\n",
        },
    )
    args = probe.parse_args(argv)
    assert args.data == "-weird; rm -rf /"
    assert args.verdict_file == "$(touch pwned)"
    assert args.allow_pickle is True
    assert args.slice == ["sex", "region"]
    # The same mapping on a real command's parser: a number, a flag, a repeated option and a
    # positional that looks like an option all reach it as the user wrote them.
    real = argv_from_action_inputs(
        command,
        {
            "MLCI_INPUT_MODEL": "--model-looking-path",
            "MLCI_INPUT_PORT": "8081",
            "MLCI_INPUT_ALLOW_PICKLE": "true",
            "MLCI_INPUT_TRUST_TYPE": "pkg.A\npkg.B",
        },
    )
    served = command.parse_args(real)
    assert (served.model, served.port, served.allow_pickle) == ("--model-looking-path", "8081", True)
    assert served.trust_type == ["pkg.A", "pkg.B"]


def test_from_env_rejects_a_bad_boolean() -> None:
    import argparse

    probe = argparse.ArgumentParser()
    probe.add_argument("--allow-pickle", action="store_true")
    with pytest.raises(UsageError, match="allow-pickle must be true or false"):
        argv_from_action_inputs(probe, {"MLCI_INPUT_ALLOW_PICKLE": "maybe"})


def test_find_command_parser_walks_groups() -> None:
    parser = build_parser()
    leaf, start = find_command_parser(parser, ["--json", "data"])
    assert leaf.prog == "mlci data"
    assert start == 2


HEAVY = ("great_expectations", "mlflow", "docker", "pandas", "sklearn", "numpy", "pyarrow")


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["gate", "--help"], ["data", "--help"]])
@pytest.mark.slow
def test_startup_imports_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from mlci_lib.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "HEAVY=", done.stdout
