"""A new project's first hour: mlci init, the starter workflows' test step, the first gate.

Real commands throughout: ``mlci init`` into a folder, the workflows' own unit-test command run by
bash on repositories with no tests, passing tests and failing tests, and ``mlci run`` under GitHub
Actions on a pipeline whose gate fails several rules, and on one with no champion in its registry.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlci_lib.cli import main
from mlci_lib.runner import CiRunner
from mlci_lib.scaffold import GITIGNORE_LINES, PROFILE_HINT
from tests.helpers.components import REPO_ROOT
from tests.helpers.workflow_commands import processed_commands

TEMPLATES = REPO_ROOT / "mlci_lib" / "templates"


def github_run(environ: dict[str, str], argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, runner=CiRunner(environ, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


# -- mlci init ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_init_writes_a_gitignore_and_a_hint_that_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "--dir", str(tmp_path), "--model-name", "churn"]) == 0
    out = capsys.readouterr().out
    ignored = (tmp_path / ".gitignore").read_text().splitlines()
    assert set(GITIGNORE_LINES) <= set(ignored) and ".mlci/" in ignored
    assert PROFILE_HINT in out and PROFILE_HINT in (tmp_path / "mlci.yaml").read_text()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("age,plan\n30,free\n41,pro\n25,free\n")
    hint = PROFILE_HINT.split()
    assert hint[0] == "mlci"
    done = subprocess.run(
        [sys.executable, "-m", "mlci_lib", *hint[1:]], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "data.suite.yaml").is_file()
    # The suite the hint wrote is the one mlci.yaml's data-check stage reads.
    config = yaml.safe_load((tmp_path / "mlci.yaml").read_text())
    assert config["stages"]["data-check"]["suite"] == "data.suite.yaml"


def test_init_extends_an_existing_gitignore_and_is_not_blocked_by_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".gitignore").write_text("__pycache__/\n.mlci/")
    assert main(["init", "--dir", str(tmp_path), "--model-name", "churn"]) == 0
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["__pycache__/", ".mlci/"] and lines.count(".mlci/") == 1
    assert set(GITIGNORE_LINES) <= set(lines)
    capsys.readouterr()
    # Run again with --force: nothing is added twice.
    before = (tmp_path / ".gitignore").read_text()
    assert main(["init", "--dir", str(tmp_path), "--model-name", "churn", "--force"]) == 0
    assert (tmp_path / ".gitignore").read_text() == before


# -- the starter workflows' unit-test step --------------------------------------------------------


def _unit_test_commands() -> dict[str, str]:
    commands = {}
    for name in ("pr", "release"):
        workflow = yaml.safe_load((TEMPLATES / "github" / f"{name}.yml").read_text())
        runs = [s["run"] for s in workflow["jobs"]["test"]["steps"] if "pytest -q" in str(s.get("run"))]
        assert len(runs) == 1, name
        commands[f"github-{name}"] = runs[0]
    gitlab = yaml.safe_load((TEMPLATES / "gitlab" / ".gitlab-ci.yml").read_text())
    (line,) = [s for s in gitlab["lint-and-test"]["script"] if isinstance(s, str) and "pytest -q" in s]
    commands["gitlab"] = line
    jenkins = (TEMPLATES / "jenkins" / "Jenkinsfile").read_text()
    (step,) = re.findall(r"sh '(\. \.venv/bin/activate && ruff check \. && .*pytest.*)'", jenkins)
    commands["jenkins"] = step.replace(". .venv/bin/activate && ruff check . && ", "")
    return commands


@pytest.mark.slow
@pytest.mark.parametrize("ci", ["github-pr", "github-release", "gitlab", "jenkins"])
def test_the_unit_test_step_passes_with_no_tests_and_fails_with_a_failing_one(
    tmp_path: Path, ci: str
) -> None:
    command = _unit_test_commands()[ci]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}

    def step(files: dict[str, str]) -> int:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        for name, body in files.items():
            (folder / name).write_text(body)
        return subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True).returncode

    assert step({"train.py": "print('no tests yet')\n"}) == 0  # pytest exits 5: no tests collected
    assert step({"test_ok.py": "def test_ok():\n    assert True\n"}) == 0
    assert step({"test_bad.py": "def test_bad():\n    assert False\n"}) != 0
    assert step({"test_broken.py": "import not_a_module_anywhere\n"}) != 0


# -- the pipeline's gate --------------------------------------------------------------------------

PREDICTIONS = "id,label,prediction,score\n" + "".join(
    f"r{i},{i % 2},{i % 2 if i % 5 else 1 - i % 2},{0.7 if i % 2 else 0.3}\n" for i in range(200)
)


def _project(folder: Path, stages: dict[str, object]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "preds.csv").write_text(PREDICTIONS)
    config = {"version": 1, "model": {"name": "starter-model"}, "stages": stages}
    path = folder / "mlci.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_the_pipeline_gate_annotates_every_failing_rule(tmp_path: Path) -> None:
    rules = ["accuracy min=0.99", "f1 min=0.99", "precision min=0.99", "recall min=0.5"]
    config = _project(tmp_path, {"gate": {"candidate": "preds.csv", "rule": rules}})
    summary = tmp_path / "summary.md"
    code, out, err = github_run({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
                                ["run", "--config", str(config)])  # fmt: skip
    assert code == 1, out + err
    errors = [c for c in processed_commands(out) if c.name == "error"]
    titles = sorted(c.properties["title"] for c in errors)
    assert titles == sorted(f"mlci run: gate: {r.split('=')[0]} failed" for r in rules[:3]), out
    assert all("-> fail" in c.data for c in errors)
    # No baseline stage: the gate ran on absolute rules only, and says so.
    warnings = [c for c in processed_commands(out) if c.name == "warning"]
    assert any("no baseline stage" in c.data for c in warnings), out
    assert summary.read_text().startswith("> [!WARNING]")


@pytest.mark.slow
def test_no_champion_is_a_visible_warning_in_summary_annotation_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "eval.csv").write_text("id,label,x\n" + "".join(f"r{i},{i % 2},{i}\n" for i in range(20)))
    stages = {
        "baseline": {"data": "eval.csv", "label-column": "label"},
        "gate": {"candidate": "preds.csv", "rule": ["accuracy min=0.5", "accuracy max-drop=0.01"]},
    }
    config = _project(tmp_path, stages)
    summary = tmp_path / "summary.md"
    environ = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    monkeypatch.chdir(tmp_path)
    code, out, err = github_run(environ, ["run", "--config", str(config)])
    assert code == 0, out + err
    warnings = [c for c in processed_commands(out) if c.name == "warning"]
    assert any("No champion" in c.properties.get("title", "") for c in warnings), out
    (warning,) = [c for c in warnings if "No champion" in c.properties.get("title", "")]
    assert "starter-model@champion" in warning.data and "MLFLOW_TRACKING_URI" in warning.data
    text = summary.read_text()
    assert text.startswith("> [!WARNING]") and "No champion" in text and "MLFLOW" in text
    verdict = tmp_path / ".mlci" / "pipeline-verdict.json"
    assert json.loads(verdict.read_text())["passed"] is True
    report = tmp_path / "report.md"
    code, out, err = github_run(
        environ, ["report", str(verdict), "--report-file", str(report), "--comment", "false"]
    )
    assert code == 0, out + err
    body = report.read_text()
    assert "[!WARNING]" in body and "No champion" in body
    assert body.index("No champion") < body.index("### Stages")


# -- an unreachable base image --------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_an_unreachable_base_image_names_the_option_that_chooses_it(
    docker_engine: str, tmp_path: Path
) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from mlci_lib.models import save_model

    data = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = save_model(LogisticRegression().fit(data, [0, 1, 0, 1]), tmp_path / "model", sample_input=data)
    # Nothing listens on port 9 of this host: the pull fails at once, as for a registry that is down.
    code, out, err = github_run(
        {"GITHUB_ACTIONS": "true"},
        ["image", "build", str(model), "--repository", "localhost:5999/mlci-test/unreachable",
         "--tag", "t1", "--base-image", "127.0.0.1:9/no/such-image:1", "--output", str(tmp_path / "b.json")],
    )  # fmt: skip
    assert code == 2, out + err
    (error,) = [c for c in processed_commands(out) if c.name == "error"]
    assert "127.0.0.1:9/no/such-image:1" in error.data and "--base-image" in error.data, error.data


def test_the_pipeline_data_check_annotates_every_failed_expectation(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("age,plan\n30,free\n-4,gold\n130,pro\n41,silver\n")
    (tmp_path / "suite.yaml").write_text(
        "columns:\n  age: {min: 0, max: 100}\n  plan: {allowed: [free, pro]}\n"
    )
    config = _project(tmp_path, {"data-check": {"data": "train.csv", "suite": "suite.yaml"}})
    code, out, err = github_run({"GITHUB_ACTIONS": "true"}, ["run", "--config", str(config)])
    assert code == 1, out + err
    errors = [c for c in processed_commands(out) if c.name == "error"]
    assert len(errors) == 2, out
    assert any("column 'age'" in c.data for c in errors) and any("column 'plan'" in c.data for c in errors)
