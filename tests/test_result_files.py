"""No result of an earlier run outlives a run that stopped: verdicts, results, latency files.

Each command's result files are claimed before it reads its first input: a JSON result says
``passed: false`` (schema ``mlci.error``) until the command writes the real one, and carries the
error when the command stops on bad input, also when the arguments do not even parse; a table or
a report is removed. A stale ``passed: true`` from the previous run can then never be pushed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlci_lib.cli import main

STALE = {"schema": "mlci.gate-verdict", "schema_version": 1, "passed": True, "rules": []}


def _stale(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(STALE))
    return path


def _error_record(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text())
    assert data["schema"] == "mlci.error" and data["passed"] is False and data["status"] == "error", data
    assert isinstance(data["error"], str) and data["error"]
    return data


# argv, the JSON result files it names, the non-JSON ones (removed), the text the error holds
CASES = [
    pytest.param(
        ["gate", "--candidate", "missing.csv", "--rule", "accuracy min=0.5", "--verdict-file", "v.json"],
        ["v.json"], [], "missing.csv", id="gate-bad-input",
    ),
    pytest.param(
        ["gate", "--candidate", "c.csv", "--resamples", "abc", "--verdict-file=v.json"],
        ["v.json"], [], "--resamples", id="gate-option-does-not-parse",
    ),
    pytest.param(
        ["gate", "--candidate", "missing.csv", "--rule", "accuracy min=0.5"],
        ["mlci-gate-verdict.json"], [], "missing.csv", id="gate-default-verdict-file",
    ),
    pytest.param(
        ["data", "check", "missing.csv", "--suite", "missing.yaml", "--result-file", "r.json"],
        ["r.json"], [], "missing", id="data-check",
    ),
    pytest.param(
        ["drift", "--reference", "missing.csv", "--current", "m.csv", "--verdict-file", "d.json"],
        ["d.json"], [], "missing.csv", id="drift",
    ),
    pytest.param(
        ["image", "smoke", "img", "--model", "m", "--sample-data", "s.csv", "--requests", "abc",
         "--output", "s.json", "--latency-output", "l.json"],
        ["s.json", "l.json"], [], "--requests", id="image-smoke-and-latency",
    ),
    pytest.param(
        ["image", "build", "model", "--repository", "r.example/m", "--port", "http", "--output", "b.json"],
        ["b.json"], [], "port", id="image-build",
    ),
    pytest.param(
        ["image", "push", "img", "--smoke-file", "missing.json", "--output", "p.json"],
        ["p.json"], [], "missing.json", id="image-push",
    ),
    pytest.param(
        ["image", "release", "model", "--build", "maybe", "--output", "rel.json"],
        ["rel.json"], [], "--build", id="image-release",
    ),
    pytest.param(
        ["model", "baseline", "not-a-ref", "--data", "d.csv", "--output", "champion.csv"],
        [], ["champion.csv"], "not NAME@ALIAS", id="model-baseline",
    ),
    pytest.param(
        ["report", "missing.json", "--report-file", "report.md"],
        [], ["report.md"], "missing.json", id="report",
    ),
    pytest.param(
        ["run", "--config", "missing.yaml", "--verdict-file", "pipeline.json"],
        ["pipeline.json"], [], "missing.yaml", id="run",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "json_files", "other_files", "text"), CASES)
def test_a_command_that_stops_leaves_no_stale_result(
    argv: list[str], json_files: list[str], other_files: list[str], text: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    for name in json_files:
        _stale(tmp_path / name)
    for name in other_files:
        (tmp_path / name).write_text("id,label,prediction\n1,1,1\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
    for name in json_files:
        record = _error_record(tmp_path / name)
        assert text in str(record["error"]), record
        assert str(record["command"]).startswith(f"mlci {argv[0]}"), record
    for name in other_files:
        assert not (tmp_path / name).exists(), name


def test_a_result_the_command_did_not_write_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The gate passes without writing a latency file: a stale one named on another command would
    # stay; here the gate's own verdict is written and nothing else is claimed.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.csv").write_text("label,prediction\n" + "1,1\n0,0\n" * 20)
    _stale(tmp_path / "v.json")
    assert (
        main(["gate", "--candidate", "c.csv", "--rule", "accuracy min=0.5", "--verdict-file", "v.json"]) == 0
    )
    written = json.loads((tmp_path / "v.json").read_text())
    assert written["schema"] == "mlci.gate-verdict" and written["passed"] is True and written["rules"]


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(
            ["gate", "--candidate", "c.csv", "--rule", "accuracy min=0.5", "--verdict-file", "out"], id="gate"
        ),
        pytest.param(
            ["data", "check", "c.csv", "--suite", "s.yaml", "--result-file", "out"], id="data-check"
        ),
        pytest.param(
            ["drift", "--reference", "c.csv", "--current", "c.csv", "--verdict-file", "out"], id="drift"
        ),
        pytest.param(["run", "--verdict-file", "out"], id="run"),
        pytest.param(
            ["image", "smoke", "img", "--model", "m", "--sample-data", "c.csv", "--latency-output", "out"],
            id="latency",
        ),
    ],
)
def test_a_result_file_naming_a_directory_is_an_input_error(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "is a directory" in err and "internal error" not in err, err
    assert len(err.splitlines()) == 1


PIPELINE = """\
version: 1
model: {name: stale, path: model}
stages:
  gate:
    candidate: missing-predictions.csv
    rule: ["accuracy min=0.5"]
"""


def test_a_pipeline_stage_that_stops_leaves_no_stale_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mlci.yaml").write_text(PIPELINE)
    gate_file = _stale(tmp_path / ".mlci" / "gate-verdict.json")
    pipeline_file = tmp_path / ".mlci" / "pipeline-verdict.json"
    pipeline_file.write_text(
        json.dumps({"schema": "mlci.pipeline-verdict", "schema_version": 1, "passed": True, "stages": []})
    )
    assert main(["run", "--config", str(tmp_path / "mlci.yaml")]) == 2
    record = _error_record(gate_file)
    assert "missing-predictions.csv" in str(record["error"])
    pipeline = json.loads(pipeline_file.read_text())
    assert pipeline["passed"] is False and pipeline["failed_stage"] == "gate"
    # The next one-stage run does not trip over the error record the stage left.
    assert main(["run", "--config", str(tmp_path / "mlci.yaml"), "--stage", "gate"]) == 2
    assert "not a pipeline verdict" not in capsys.readouterr().err


def test_a_pipeline_file_that_does_not_load_marks_the_verdict_next_to_it(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text("version: 1\nstages: {gate: {candidate: [}\n")
    verdict = tmp_path / ".mlci" / "pipeline-verdict.json"
    verdict.parent.mkdir()
    verdict.write_text(json.dumps({"schema": "mlci.pipeline-verdict", "schema_version": 1, "passed": True}))
    assert main(["run", "--config", str(tmp_path / "mlci.yaml")]) == 2
    assert _error_record(verdict)["passed"] is False


@pytest.mark.slow
def test_a_report_leaves_no_plot_of_an_earlier_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlci_lib.report.plots import PLOT_FILES

    monkeypatch.chdir(tmp_path)
    rows = "".join(
        f"{i % 2},{i % 2 if i % 5 else 1 - i % 2},{0.2 + 0.6 * (i % 2) + 0.01 * (i % 7)}\n" for i in range(80)
    )
    (tmp_path / "c.csv").write_text("label,prediction,score\n" + rows)
    assert main(["gate", "--candidate", "c.csv", "--rule", "accuracy min=0.5", "--resamples", "0"]) == 0
    plots = tmp_path / "plots"
    plots.mkdir()
    for name in PLOT_FILES:  # an earlier run's plots, a regression model's among them
        (plots / name).write_bytes(b"stale")
    argv = ["report", "mlci-gate-verdict.json", "--plots-dir", "plots", "--report-file", "r.md"]
    assert main([*argv, "--predictions", "c.csv"]) == 0
    assert not (plots / "residuals.png").exists() and not (plots / "predicted_vs_actual.png").exists()
    assert (plots / "roc_curve.png").read_bytes().startswith(b"\x89PNG")
    # A report that stops leaves none of them either.
    assert main(["report", "missing.json", "--plots-dir", "plots", "--report-file", "r.md"]) == 2
    assert not list(plots.iterdir())


def test_a_push_on_the_verdict_of_a_gate_that_stopped_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CI step that pushes 'if: always()' after a gate that exited 2.
    monkeypatch.chdir(tmp_path)
    _stale(tmp_path / "v.json")
    assert (
        main(["gate", "--candidate", "missing.csv", "--rule", "accuracy min=0.5", "--verdict-file", "v.json"])
        == 2
    )
    capsys.readouterr()
    assert (
        main(
            [
                "model",
                "push",
                "model",
                "--name",
                "m",
                "--verdict",
                "v.json",
                "--tracking-uri",
                "http://127.0.0.1:9",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "holds no verdict: mlci gate did not finish" in err and "missing.csv" in err, err
