"""``${VAR}`` in a ``shell:`` stage reaches the shell as an environment variable, never as code."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlci_lib.cli import main
from mlci_lib.errors import ConfigError
from mlci_lib.pipeline.config import load_config, shell_script
from tests.test_pipeline import small_pipeline, write_project

PAYLOAD = "x; touch pwned; $(touch pwned2) `touch pwned3` | touch pwned4 && echo 'q\"uote"


def test_a_variable_with_shell_metacharacters_stays_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCI_TEST_PAYLOAD", PAYLOAD)
    shell = {"shell": 'mkdir -p model && printf %s "${MLCI_TEST_PAYLOAD}" > got.txt'}
    config = write_project(tmp_path, small_pipeline(train=shell))
    assert main(["run", "--config", str(config)]) == 0
    assert (tmp_path / "got.txt").read_text() == PAYLOAD
    assert not any((tmp_path / name).exists() for name in ("pwned", "pwned2", "pwned3", "pwned4"))
    # The stage shows the script as written, not the value (which may be a secret).
    assert "${MLCI_TEST_PAYLOAD}" in (tmp_path / "mlci.yaml").read_text()


def test_defaults_and_the_config_keep_the_script_as_written(tmp_path: Path) -> None:
    shell = {"shell": "mkdir -p model && echo ${MLCI_TEST_UNSET:-fallback} ${MLCI_TEST_SET} > got.txt"}
    config = write_project(tmp_path, small_pipeline(train=shell))
    cfg = load_config(config, environ={"MLCI_TEST_SET": "$(id)"})
    assert cfg.stages["train"]["shell"] == shell["shell"]  # not expanded at load time
    script, env = shell_script(shell["shell"], {"MLCI_TEST_SET": "$(id)"}, "stages.train.shell")
    assert script == "mkdir -p model && echo fallback ${MLCI_TEST_SET} > got.txt"
    assert env == {"MLCI_TEST_SET": "$(id)"}


def test_an_unset_variable_in_a_shell_string_is_refused_at_load(tmp_path: Path) -> None:
    config = write_project(tmp_path, small_pipeline(train={"shell": "echo ${MLCI_TEST_NOT_SET_ANYWHERE}"}))
    with pytest.raises(
        ConfigError, match=r"stages\.train\.shell: environment variable MLCI_TEST_NOT_SET_ANYWHERE"
    ):
        load_config(config, environ={})


def test_other_strings_still_expand_in_place(tmp_path: Path) -> None:
    config = write_project(tmp_path, small_pipeline(gate={"rule": ["accuracy min=${MIN_ACC:-0.5}"]}))
    assert load_config(config, environ={"MIN_ACC": "0.7"}).stages["gate"]["rule"] == ["accuracy min=0.7"]
