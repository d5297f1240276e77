"""Every YAML file mlci reads goes through its one loader: an alias bomb is refused within a second
by each reader (pipeline file, gate rules, suite, drift config, MLflow's MLmodel), naming the file."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlci_lib.errors import ConfigError, ModelLoadError


def billion_laughs() -> str:
    """Nine levels of nine aliases: 9^9 (387 million) strings once expanded."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(lines) + "\n"


def _pipeline(path: Path) -> Any:
    from mlci_lib.pipeline.config import load_config

    return load_config(path)


def _gate(path: Path) -> Any:
    from mlci_lib.gate.rules import load_gate_rules

    return load_gate_rules(path)


def _suite(path: Path) -> Any:
    from mlci_lib.data.suite import load_suite

    return load_suite(path)


def _drift(path: Path) -> Any:
    from mlci_lib.drift.gate import load_drift_config

    return load_drift_config(path)


def _mlflow_model(path: Path) -> Any:
    from mlci_lib.models import load_model

    folder = path.parent / "mlflow-model"
    folder.mkdir()
    (folder / "MLmodel").write_text(path.read_text())
    return load_model(folder)


@pytest.mark.parametrize(
    "reader",
    [_pipeline, _gate, _suite, _drift, _mlflow_model],
    ids=["mlci.yaml", "gate-rules", "suite", "drift-config", "mlflow-MLmodel"],
)
def test_every_reader_refuses_an_alias_bomb_within_a_second(
    tmp_path: Path, reader: Callable[[Path], Any]
) -> None:
    path = tmp_path / "mlci.yaml"
    path.write_text(billion_laughs())
    started = time.monotonic()
    with pytest.raises((ConfigError, ModelLoadError)) as caught:
        reader(path)
    assert time.monotonic() - started < 1.0
    assert "alias" in str(caught.value)
    assert ("MLmodel" if reader is _mlflow_model else "mlci.yaml") in str(caught.value)
