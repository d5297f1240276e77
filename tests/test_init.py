"""mlci init: writes the starter files, refuses to overwrite without --force, rejects bad flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlci_lib.cli import main
from mlci_lib.pipeline import load_config


def test_writes_config_gate_and_workflows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["init", "--dir", str(tmp_path), "--model-name", "churn", "--ci", "github,gitlab,jenkins"]
    argv += ["--image-repository", "ghcr.io/acme/churn", "--tracking-uri", "https://mlflow.example.com"]
    code = main(argv)
    assert code == 0
    out = capsys.readouterr().out
    workflows = [f".github/workflows/mlci-{n}.yml" for n in ("pr", "release", "retrain", "monitor")]
    for name in ("mlci.yaml", "gate.yaml", *workflows, ".gitlab-ci.yml", "Jenkinsfile"):
        assert (tmp_path / name).is_file() and name in out
    config = load_config(tmp_path / "mlci.yaml", environ={})
    assert config.model_name == "churn" and config.tracking_uri == "https://mlflow.example.com"
    assert config.stages["image-build"]["repository"] == "ghcr.io/acme/churn"
    assert (
        config.stages["image-build"]["repository"]
        != load_config(tmp_path / "mlci.yaml", environ={"MLCI_IMAGE_REPOSITORY": "localhost:5000/x"}).stages[
            "image-build"
        ]["repository"]
    )


def test_never_overwrites_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "gate.yaml").write_text("mine\n")
    assert main(["init", "--dir", str(tmp_path), "--model-name", "churn"]) == 2
    err = capsys.readouterr().err
    assert "gate.yaml already exists" in err and "--force" in err
    assert (tmp_path / "gate.yaml").read_text() == "mine\n"
    assert not (tmp_path / "mlci.yaml").exists(), "a refused init writes nothing"
    assert main(["init", "--dir", str(tmp_path), "--model-name", "churn", "--force"]) == 0
    assert "(overwritten)" in capsys.readouterr().out
    assert (tmp_path / "gate.yaml").read_text() != "mine\n"


BAD_FLAGS = {
    "no-model-name": ([], "--model-name"),
    "shell-in-model-name": (["--model-name", "x; rm -rf /"], "not a valid model name"),
    "newline-in-repository": (["--model-name", "m", "--image-repository", "a\nb"], "image repository"),
    "dollar-in-repository": (["--model-name", "m", "--image-repository", "$(id)"], "image repository"),
    "uri-without-scheme": (["--model-name", "m", "--tracking-uri", "mlflow.example.com"], "not a URI"),
    "quote-in-uri": (["--model-name", "m", "--tracking-uri", "http://a'b"], "not a URI"),
    "unknown-ci": (["--model-name", "m", "--ci", "circleci"], "unknown CI system"),
}


@pytest.mark.parametrize("name", list(BAD_FLAGS), ids=list(BAD_FLAGS))
def test_bad_flags_exit_2_and_write_nothing(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, expected = BAD_FLAGS[name]
    assert main(["init", "--dir", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_target_that_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_text("x")
    assert main(["init", "--dir", str(file), "--model-name", "m"]) == 2
