"""mlci run: config validation, stage order, stop at the first failure, the verdict on disk."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from mlci_lib.cli import main
from mlci_lib.pipeline import load_config, run_pipeline
from tests.helpers.components import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples"
PY = sys.executable


def write_project(folder: Path, config: dict | str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    path = folder / "mlci.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
    return path


PREDICTIONS = "id,label,prediction,score\n" + "".join(
    f"r{i},{i % 2},{i % 2 if i % 10 else 1 - i % 2},{0.8 if i % 2 else 0.2}\n" for i in range(200)
)
WRITE_PREDICTIONS = f"open('preds.csv', 'w').write({PREDICTIONS!r})"


def small_pipeline(**overrides: object) -> dict:
    stages: dict = {
        "train": {"command": ["python", "-c", "import os; os.makedirs('model', exist_ok=True)"]},
        "evaluate": {"command": ["python", "-c", WRITE_PREDICTIONS], "predictions": "preds.csv"},
        "gate": {"rule": ["accuracy min=0.5"]},
    }
    stages.update(overrides)
    return {"version": 1, "stages": stages}


def read_verdict(folder: Path) -> dict:
    return json.loads((folder / ".mlci" / "pipeline-verdict.json").read_text())


def test_stages_run_in_order_and_the_verdict_links_them(tmp_path: Path) -> None:
    config = write_project(tmp_path, small_pipeline(), {"data.csv": "a\n1\n"})
    text = config.read_text().replace("version: 1", "version: 1\ndata: data.csv")
    config.write_text(text)
    code = main(["run", "--config", str(config)])
    assert code == 0
    verdict = read_verdict(tmp_path)
    assert verdict["schema"] == "mlci.pipeline-verdict" and verdict["passed"] is True
    assert [s["name"] for s in verdict["stages"]] == [
        "data-check", "train", "evaluate", "baseline", "gate", "model-push",
        "image-build", "image-smoke", "image-push", "deploy", "promote", "batch-predict",
    ]  # fmt: skip
    status = {s["name"]: s["status"] for s in verdict["stages"]}
    assert status["train"] == status["evaluate"] == status["gate"] == "passed"
    assert status["model-push"] == "skipped"
    gate = next(s for s in verdict["stages"] if s["name"] == "gate")
    assert gate["verdict"]["schema"] == "mlci.gate-verdict" and gate["verdict"]["passed"] is True
    assert verdict["data_fingerprint"].startswith("sha256:")


def test_stops_at_the_first_failure_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failing = {"command": ["python", "-c", "import sys; print('loss exploded'); sys.exit(3)"]}
    config = write_project(tmp_path, small_pipeline(train=failing))
    assert main(["run", "--config", str(config)]) == 1
    verdict = read_verdict(tmp_path)
    assert verdict["passed"] is False and verdict["failed_stage"] == "train"
    train = verdict["stages"][-1]
    assert train["name"] == "train" and "exited with code 3: loss exploded" in train["message"]
    assert not (tmp_path / "preds.csv").exists(), "evaluate ran after a failed train"
    assert "FAILED at train" in capsys.readouterr().out


def test_verdict_is_written_after_each_stage_and_says_running(tmp_path: Path) -> None:
    # The evaluate command copies the verdict as it is on disk while evaluate runs.
    peek = "import shutil; shutil.copy('.mlci/pipeline-verdict.json', 'during.json'); " + WRITE_PREDICTIONS
    config = write_project(
        tmp_path, small_pipeline(evaluate={"command": ["python", "-c", peek], "predictions": "preds.csv"})
    )
    assert main(["run", "--config", str(config)]) == 0
    during = json.loads((tmp_path / "during.json").read_text())
    assert during["status"] == "running" and during["passed"] is False
    assert [s["name"] for s in during["stages"] if s["status"] == "passed"] == ["train"]


def test_gate_failure_fails_the_run(tmp_path: Path) -> None:
    config = write_project(tmp_path, small_pipeline(gate={"rule": ["accuracy min=0.99"]}))
    assert main(["run", "--config", str(config)]) == 1
    verdict = read_verdict(tmp_path)
    assert verdict["failed_stage"] == "gate"
    assert "accuracy" in verdict["stages"][-1]["message"]


def test_one_stage_at_a_time_keeps_the_others(tmp_path: Path) -> None:
    config = write_project(tmp_path, small_pipeline())
    assert main(["run", "--config", str(config), "--until", "evaluate"]) == 0
    ran = {s["name"] for s in read_verdict(tmp_path)["stages"] if s["status"] != "skipped"}
    assert ran == {"train", "evaluate"}
    assert main(["run", "--config", str(config), "--stage", "gate"]) == 0
    verdict = read_verdict(tmp_path)
    assert {s["name"]: s["status"] for s in verdict["stages"] if s["status"] != "skipped"} == {
        "train": "passed", "evaluate": "passed", "gate": "passed",
    }  # fmt: skip
    assert verdict["passed"] is True


def test_argv_commands_never_reach_a_shell(tmp_path: Path) -> None:
    payload = "$(touch pwned); `touch pwned2`"
    script = "import sys, os; os.makedirs('model', exist_ok=True); open('arg.txt', 'w').write(sys.argv[1])"
    config = write_project(tmp_path, small_pipeline(train={"command": ["python", "-c", script, payload]}))
    assert main(["run", "--config", str(config)]) == 0
    assert (tmp_path / "arg.txt").read_text() == payload
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_shell_string_runs_in_a_shell_when_written(tmp_path: Path) -> None:
    shell = {"shell": "mkdir -p model && echo ok > trained.txt"}
    config = write_project(tmp_path, small_pipeline(train=shell))
    assert main(["run", "--config", str(config)]) == 0
    assert (tmp_path / "trained.txt").read_text().strip() == "ok"


@pytest.mark.slow
def test_a_command_that_hangs_is_stopped(tmp_path: Path) -> None:
    hang = {"command": ["python", "-c", "import time; time.sleep(60)"], "timeout-minutes": 0.02}
    config = write_project(tmp_path, small_pipeline(train=hang))
    assert main(["run", "--config", str(config)]) == 1
    assert "did not finish in" in read_verdict(tmp_path)["stages"][-1]["message"]


def test_a_stale_model_from_an_earlier_run_does_not_pass(tmp_path: Path) -> None:
    import os

    config = write_project(tmp_path, small_pipeline(train={"command": ["python", "-c", "pass"]}))
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.skops").write_text("old")
    os.utime(tmp_path / "model" / "model.skops", (1_000_000_000, 1_000_000_000))
    assert main(["run", "--config", str(config)]) == 1
    assert "it is from an earlier run" in read_verdict(tmp_path)["stages"][-1]["message"]


def test_missing_declared_output_fails_the_stage(tmp_path: Path) -> None:
    train = {"command": ["python", "-c", "pass"], "outputs": ["model/model.skops"]}
    config = write_project(tmp_path, small_pipeline(train=train))
    assert main(["run", "--config", str(config)]) == 1
    assert "did not write model/model.skops" in read_verdict(tmp_path)["stages"][-1]["message"]


def test_environment_variables_expand_without_a_shell(tmp_path: Path) -> None:
    config = write_project(tmp_path, small_pipeline(gate={"rule": ["accuracy min=${MIN_ACC:-0.5}"]}))
    cfg = load_config(config, environ={"MIN_ACC": "0.6"})
    assert cfg.stages["gate"]["rule"] == ["accuracy min=0.6"]
    assert load_config(config, environ={}).stages["gate"]["rule"] == ["accuracy min=0.5"]


def test_malformed_verdict_on_disk_is_an_input_error(tmp_path: Path) -> None:
    config = write_project(tmp_path, small_pipeline())
    (tmp_path / ".mlci").mkdir()
    (tmp_path / ".mlci" / "pipeline-verdict.json").write_text('{"schema": "mlci.gate-verdict"}')
    assert main(["run", "--config", str(config), "--stage", "gate"]) == 2


BAD_CONFIGS = {
    "missing-file": (None, "does not exist"),
    "empty-file": ("", "is empty"),
    "not-a-mapping": ("- a\n- b\n", "must hold a mapping"),
    "bad-yaml": ("version: 1\nstages: {train: [\n", "not valid YAML"),
    "wrong-version": ("version: 2\nstages: {gate: {}}\n", "version"),
    "unknown-top-key": ("version: 1\nstagez: {}\nstages: {gate: {}}\n", "stagez"),
    "unknown-stage": ("version: 1\nstages: {deploy: {}}\n", "deploy"),
    "command-not-list": ("version: 1\nstages: {train: {command: python train.py}}\n", "stages.train"),
    "no-command": ("version: 1\nstages: {train: {env: {A: b}}}\n", "stages.train"),
    "evaluate-no-predictions": ("version: 1\nstages: {evaluate: {command: [x]}}\n", "predictions"),
    "push-without-model-name": ("version: 1\nstages: {model-push: {}}\n", "model.name"),
    "unset-variable": ("version: 1\nstages: {gate: {rules: '${NOPE_NOT_SET}'}}\n", "NOPE_NOT_SET"),
    "injection-looking-model-name": (
        "version: 1\nmodel: {name: 'x; rm -rf /'}\nstages: {gate: {}}\n",
        "model.name",
    ),
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS), ids=list(BAD_CONFIGS))
def test_bad_pipeline_files_exit_2_with_one_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = BAD_CONFIGS[name]
    config = tmp_path / "mlci.yaml"
    if text is not None:
        config.write_text(text)
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert expected in err, err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--stage", "rollout"], "invalid choice"),  # deploy is a stage now
        (["--stage", "promote"], "not in"),
        (["--stage", "gate", "--until", "gate"], "not both"),
    ],
    ids=["unknown-stage", "stage-not-in-file", "stage-and-until"],
)
def test_bad_stage_options_exit_2(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_project(tmp_path, small_pipeline())
    assert main(["run", "--config", str(config), *argv]) == 2
    assert expected in capsys.readouterr().err


def test_from_env_maps_action_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_project(tmp_path, small_pipeline())
    output = tmp_path / "out.txt"
    monkeypatch.setenv("MLCI_INPUT_CONFIG", str(config))
    monkeypatch.setenv("MLCI_INPUT_UNTIL", "evaluate")
    monkeypatch.setenv("MLCI_OUTPUT_FILE", str(output))
    assert main(["--from-env", "run"]) == 0
    assert [s["name"] for s in read_verdict(tmp_path)["stages"]] == ["data-check", "train", "evaluate"]
    assert (
        "passed<<" in output.read_text()
        and str(tmp_path / ".mlci" / "pipeline-verdict.json") in output.read_text()
    )


@pytest.mark.slow
def test_example_project_two_releases_with_the_embedded_registry(tmp_path: Path) -> None:
    """First release: no champion, absolute rules, pushed and promoted. A worse model then fails."""
    project = tmp_path / "example"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("model", ".mlci", "predictions.csv"))
    config = project / "mlci.yaml"
    skip = ["image-build", "image-smoke", "image-push"]
    first = run_pipeline(config, skip=skip, environ=dict(os.environ))
    assert first.passed, first.text()
    assert first.stage("baseline").status == "skipped"
    assert first.model and first.model["version"] == "1"
    assert first.stage("promote").status == "passed"

    worse = run_pipeline(config, skip=skip, environ={**os.environ, "EXAMPLE_WORSE_MODEL": "1"})
    assert not worse.passed and worse.failed_stage == "gate", worse.text()
    assert worse.stage("baseline").status == "passed"
    assert "accuracy" in worse.stage("gate").message or "roc_auc" in worse.stage("gate").message
    assert worse.stage("model-push") is None
    from mlflow.tracking import MlflowClient

    from mlci_lib.registry.tracking import default_tracking_uri

    client = MlflowClient(tracking_uri=default_tracking_uri(project))
    versions = client.search_model_versions("name='loan-approval'")
    assert [str(v.version) for v in versions] == ["1"]
    assert str(client.get_model_version_by_alias("loan-approval", "champion").version) == "1"


def test_json_output_keeps_stdout_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noisy = {
        "command": [
            "python",
            "-c",
            "import os; print('epoch 1 loss 0.3'); os.makedirs('model', exist_ok=True)",
        ]
    }
    config = write_project(tmp_path, small_pipeline(train=noisy))
    assert main(["--json", "run", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    verdict = json.loads(captured.out)
    assert verdict["schema"] == "mlci.pipeline-verdict" and verdict["passed"] is True
    assert "epoch 1 loss 0.3" in captured.err and "▶ train" in captured.err
