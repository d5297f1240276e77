"""mlci demo: zero configuration, the release passes, the worse candidate is stopped, a report is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlci_lib.cli import main
from mlci_lib.demo import docker_status, example_source


def test_example_ships_inside_the_package() -> None:
    source = example_source()
    for name in ("train.py", "evaluate.py", "mlci.yaml", "gate.yaml", "data.suite.yaml", "data/train.csv"):
        assert (source / name).is_file(), name


def test_no_engine_gives_one_clear_line() -> None:
    note = docker_status({"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert note is not None and "image stages skipped" in note and "/nonexistent/docker.sock" in note
    assert "\n" not in note


@pytest.mark.slow
def test_demo_without_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dir", str(tmp_path), "--no-image"]) == 0
    out = capsys.readouterr().out
    for stage in ("data-check", "train", "evaluate", "baseline", "gate", "model-push", "promote"):
        assert f"▶ {stage}" in out, stage
    assert "image stages skipped (--no-image)" in out
    assert "worse candidate: stopped by the gate" in out
    report = Path(next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("report: ")))
    assert report.is_file() and report.read_text().startswith("## ✅ mlci demo: passed")
    assert (tmp_path / "loan-approval" / ".mlci" / "mlflow.db").is_file(), (
        "the store lives in the demo folder"
    )


def test_demo_refuses_an_existing_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "loan-approval").mkdir()
    (tmp_path / "loan-approval" / "x").write_text("mine")
    assert main(["demo", "--dir", str(tmp_path), "--no-image"]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.docker
def test_demo_with_the_image_stages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], python_base_image: str, image_registry: str
) -> None:
    argv = ["demo", "--dir", str(tmp_path), "--quick", "--registry", image_registry]
    argv += ["--base-image", python_base_image, "--python-version", "3.11"]
    assert main(argv) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    for stage in ("image-build", "image-smoke", "image-push"):
        assert f"✔ {stage}: passed" in out, stage
    assert "image stages skipped" not in out and "image-push skipped" not in out
