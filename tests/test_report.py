"""mlci report: Markdown from real verdicts (mlci gate, mlci data check, mlci drift), plots, bad input.

The verdicts are produced by the real commands on generated data, so the renderer is checked
against the field names the gate, the data check and drift actually write.
"""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mlci_lib.cli import main
from mlci_lib.errors import InputError, UsageError
from mlci_lib.gate import run_gate
from mlci_lib.report import render_report
from mlci_lib.report.fit import COMMENT_BUDGET, TRUNCATED_NOTE, fit_markdown
from mlci_lib.report.verdicts import validate_verdict
from mlci_lib.runner import CiRunner

MARKER = "<!-- mlci-report:default -->"


def run_cli(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str, CiRunner]:
    out, err = io.StringIO(), io.StringIO()
    runner = CiRunner(environ=env or {}, stdout=out, stderr=err)
    code = main(argv, runner=runner)
    return code, out.getvalue(), err.getvalue(), runner


# -- real verdicts -------------------------------------------------------------------------------


def _predictions(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(7)
    n = 600
    y = rng.integers(0, 2, n)
    region = rng.choice(["north", "south", "east"], n)

    def frame(noise: float) -> pd.DataFrame:
        score = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, noise, n), 0, 1)
        return pd.DataFrame(
            {
                "id": np.arange(n),
                "label": y,
                "prediction": (score > 0.5).astype(int),
                "score": score,
                "region": region,
            }
        )

    paths = {"candidate": folder / "candidate.csv", "baseline": folder / "baseline.csv"}
    frame(0.3).to_csv(paths["candidate"], index=False)
    frame(0.35).to_csv(paths["baseline"], index=False)
    latency = folder / "latency.json"
    latency.write_text(
        json.dumps(
            {
                "schema": "mlci.latency",
                "schema_version": 1,
                "requests": 100,
                "rows_per_request": 1,
                "p50_ms": 4.0,
                "p95_ms": 9.5,
                "p99_ms": 12.0,
                "mean_ms": 5.0,
                "max_ms": 20.0,
            }
        )
    )
    paths["latency"] = latency
    return paths


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Verdicts written by mlci gate, mlci data check and mlci drift on generated data."""
    folder = tmp_path_factory.mktemp("verdicts")
    paths = _predictions(folder)
    gate = folder / "gate.json"
    code, _, err, _ = run_cli(
        [
            "gate",
            "--candidate",
            str(paths["candidate"]),
            "--baseline",
            str(paths["baseline"]),
            "--rule",
            "accuracy max-drop=0.01",
            "--rule",
            "roc_auc min=0.6",
            "--rule",
            "slice:recall min=0.5",
            "--slice-column",
            "region",
            "--rule",
            "latency:p95_ms max=5",
            "--candidate-latency",
            str(paths["latency"]),
            "--resamples",
            "200",
            "--verdict-file",
            str(gate),
        ]
    )
    assert code == 1, err  # the latency rule fails
    rng = np.random.default_rng(3)
    n = 400
    reference = pd.DataFrame({"age": rng.normal(40, 8, n), "plan": rng.choice(["free", "pro"], n)})
    current = pd.DataFrame({"age": rng.normal(52, 8, n), "plan": rng.choice(["free", "pro", "gold"], n)})
    reference.to_csv(folder / "reference.csv", index=False)
    current.to_csv(folder / "current.csv", index=False)
    (folder / "suite.yaml").write_text("columns:\n  age: {min: 0, max: 60}\n  plan: {allowed: [free, pro]}\n")
    data = folder / "data.json"
    code, _, err, _ = run_cli(
        [
            "data",
            "check",
            str(folder / "current.csv"),
            "--suite",
            str(folder / "suite.yaml"),
            "--result-file",
            str(data),
        ]
    )
    assert code == 1, err
    drift = folder / "drift.json"
    code, _, err, _ = run_cli(
        [
            "drift",
            "--reference",
            str(folder / "reference.csv"),
            "--current",
            str(folder / "current.csv"),
            "--verdict-file",
            str(drift),
        ]
    )
    assert code == 1, err
    return {**paths, "gate": gate, "data": data, "drift": drift}


def pipeline_verdict(real: dict[str, Path], **changes: Any) -> dict[str, Any]:
    """A pipeline verdict as formats.md defines it, embedding the real stage verdicts."""
    gate = json.loads(real["gate"].read_text())
    data = json.loads(real["data"].read_text())
    data_passed = copy.deepcopy(data) | {"passed": True}
    verdict = {
        "schema": "mlci.pipeline-verdict",
        "schema_version": 1,
        "passed": False,
        "status": "failed",
        "failed_stage": "gate",
        "git": {
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "ref": "refs/pull/7/merge",
            "branch": "feature/better-model",
            "repository": "octo/app",
            "run_url": "https://github.com/octo/app/actions/runs/99",
        },
        "data_fingerprint": "sha256:" + "ab" * 32,
        "stages": [
            {"name": "data-check", "status": "passed", "message": "ok", "duration_s": 1.5,
             "verdict_file": None, "verdict": data_passed},
            {"name": "train", "status": "passed", "message": "trained", "duration_s": 12.0,
             "verdict_file": None, "verdict": None},
            {"name": "gate", "status": "failed", "message": "latency p95_ms max failed", "duration_s": 0.7,
             "verdict_file": None, "verdict": gate},
            {"name": "model-push", "status": "skipped", "message": "the gate failed", "duration_s": 0.0,
             "verdict_file": None, "verdict": None},
        ],
        "model": {"name": "churn", "version": "3", "uri": "models:/churn/3", "run_id": "r1",
                  "digest": "sha256:" + "cd" * 32},
        "image": {"reference": "registry.example/churn:abc", "digest": "sha256:" + "ef" * 32,
                  "tags": ["abc"], "id": "sha256:" + "12" * 32},
        "config": "mlci.yaml",
        "deployment": None,
    }  # fmt: skip
    verdict.update(changes)
    return verdict


def test_individual_verdicts_render_every_section(real: dict[str, Path]) -> None:
    report = render_report(real["gate"], real["data"], real["drift"])
    text = report.markdown
    assert report.passed is False
    assert report.failed == ("gate", "data-check", "drift")
    assert text.startswith("## ❌ mlci: failed at **gate**, **data-check**, **drift**")

    gate = json.loads(real["gate"].read_text())
    accuracy = next(r for r in gate["rules"] if r["rule"] == "accuracy max-drop")
    low, high = accuracy["interval"]
    row = next(line for line in text.splitlines() if line.startswith("| accuracy max-drop |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == f"{accuracy['candidate']:.4f}" and cells[2] == f"{accuracy['baseline']:.4f}"
    assert cells[3] == f"{accuracy['delta']:+.4f}"
    assert cells[4] == f"[{low:+.4f}, {high:+.4f}]"
    assert cells[5] == "change ≥ -0.0100" and cells[8] == "✅ pass"
    # The report's gate table is the job summary's: detectable effect and rows needed included.
    assert cells[6] == f"±{accuracy['mde']:.4f}" and "| detectable | rows needed |" in text
    assert "| latency p95\\_ms max | 9.5000 ms |" in text and "❌ fail" in text
    assert "`region=north`" in text  # slices table
    assert "xychart-beta" in text and '"accuracy cand", "accuracy base"' in text

    data = report.section("data-check")
    assert data is not None and "expectations failed" in data
    assert "`'gold'`" in data and "expect\\_column\\_values\\_to\\_be\\_in\\_set" in data

    drift = report.section("drift")
    assert drift is not None
    order = [m.group(1) for m in re.finditer(r"^\| `([a-z]+)`", drift, re.MULTILINE)]
    severities = {f["name"]: f["severity"] for f in json.loads(real["drift"].read_text())["features"]}
    drifted = [name for name in order if name in severities]
    assert drifted == sorted(severities, key=lambda name: -severities[name]), drift
    assert "Drift severity (threshold = 1)" in drift


def test_pipeline_verdict_links_stages_and_embedded_verdicts(real: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(pipeline_verdict(real)))
    report = render_report(path)
    head = report.markdown.splitlines()
    assert head[0] == "## ❌ mlci: failed at **gate**"
    links = head[2]
    assert (
        links.index("commit ") < links.index(" → data ") < links.index(" → model ") < links.index(" → image ")
    )
    assert (
        "[`0123456789ab`](https://github.com/octo/app/commit/0123456789abcdef0123456789abcdef01234567)"
        in links
    )
    assert "model `churn v3`" in links and "image `sha256:efefefefefef…`" in links
    assert links.endswith("[run](https://github.com/octo/app/actions/runs/99)")
    stages = report.section("stages")
    assert stages is not None and "flowchart LR" in stages
    assert "class s2 failed" in stages and "class s3 skipped" in stages and "class s0,s1 passed" in stages
    assert [s.name for s in report.sections] == ["head", "stages", "data-check", "gate", "provenance"]
    assert "sha256:" + "cd" * 32 in (report.section("provenance") or "")


def test_stage_verdict_read_from_its_file_when_not_embedded(real: dict[str, Path], tmp_path: Path) -> None:
    verdict = pipeline_verdict(real)
    verdict["stages"][2]["verdict"] = None
    verdict["stages"][2]["verdict_file"] = "gate.json"
    (tmp_path / "gate.json").write_text(real["gate"].read_text())
    report = render_report(verdict, base_dir=tmp_path)
    assert report.section("gate") is not None


@pytest.mark.parametrize(
    "where", ["absolute", "dot-dot", "symlink-out", "symlinked-dir", "inside-via-dot-dot"]
)
@pytest.mark.slow
def test_stage_verdict_file_outside_the_workspace_is_not_read(
    real: dict[str, Path], tmp_path: Path, where: str
) -> None:
    workspace, outside = tmp_path / "workspace", tmp_path / "elsewhere"
    (workspace / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "gate.json").write_text(real["gate"].read_text())
    (workspace / "gate.json").write_text(real["gate"].read_text())
    if where == "symlink-out":
        (workspace / "link.json").symlink_to(outside / "gate.json")
    if where == "symlinked-dir":
        (workspace / "shared").symlink_to(outside, target_is_directory=True)
    file = {
        "absolute": str(outside / "gate.json"),
        "dot-dot": "../elsewhere/gate.json",
        "symlink-out": "link.json",
        "symlinked-dir": "shared/gate.json",
        "inside-via-dot-dot": "sub/../gate.json",
    }[where]
    verdict = pipeline_verdict(real)
    verdict["stages"][2]["verdict"] = None
    verdict["stages"][2]["verdict_file"] = file
    report = render_report(verdict, base_dir=workspace)
    if where == "inside-via-dot-dot":
        assert report.section("gate") is not None
    else:
        assert report.section("gate") is None, where
    # An absolute path inside the workspace (as mlci run writes it) is read.
    verdict["stages"][2]["verdict_file"] = str(workspace / "gate.json")
    assert render_report(verdict, base_dir=workspace).section("gate") is not None


def test_missing_sections_are_tolerated() -> None:
    verdict = {
        "schema": "mlci.pipeline-verdict", "schema_version": 1, "passed": True, "status": "passed",
        "failed_stage": None, "git": {}, "data_fingerprint": None, "model": None, "image": None,
        "deployment": None, "config": None,
        "stages": [{"name": "train", "status": "passed", "message": "", "duration_s": 1.0,
                    "verdict_file": "gone.json", "verdict": None}],
    }  # fmt: skip
    report = render_report(verdict)
    assert report.passed
    assert report.markdown.splitlines()[2] == "commit – → data – → model – → image –"
    assert [s.name for s in report.sections] == ["head", "stages"]


def test_hostile_text_is_escaped(real: dict[str, Path]) -> None:
    gate = json.loads(real["gate"].read_text())
    gate["rules"][0]["rule"] = "acc | <img src=x onerror=alert(1)> @admin"
    gate["rules"][0]["message"] = f"{MARKER} </details> ```"
    gate["rules"][0]["outcome"] = "fail"
    text = render_report(gate).markdown
    assert "<img" not in text and "@admin" not in text and MARKER not in text
    assert "acc \\| &lt;img" in text
    assert text.count("<details") == text.count("</details>")


# -- bad input -------------------------------------------------------------------------------------


def _gate_with(change: Any) -> Any:
    def build(real: dict[str, Path]) -> Any:
        data = json.loads(real["gate"].read_text())
        change(data)
        return data

    return build


BAD_VERDICTS = [
    pytest.param(lambda real: "", "is empty", id="empty-file"),
    pytest.param(lambda real: "{not json", "is not valid JSON", id="not-json"),
    pytest.param(lambda real: real["gate"].read_text()[:200], "is not valid JSON", id="truncated"),
    pytest.param(lambda real: [1, 2], "must be a JSON object", id="a-list"),
    pytest.param(
        lambda real: {"schema": "mlci.latency", "schema_version": 1}, "is not a verdict", id="other-schema"
    ),
    pytest.param(lambda real: {"passed": True}, "schema None is not a verdict", id="no-schema"),
    pytest.param(_gate_with(lambda d: d.update(schema_version=9)), "schema_version 9", id="future-version"),
    pytest.param(_gate_with(lambda d: d.update(passed="yes")), "passed must be true/false", id="passed-text"),
    pytest.param(_gate_with(lambda d: d.pop("rules")), "rules is missing", id="no-rules"),
    pytest.param(_gate_with(lambda d: d.update(rules={})), "rules must be a list", id="rules-mapping"),
    pytest.param(
        _gate_with(lambda d: d["rules"][1].update(outcome="maybe")),
        "rules[1].outcome must be one of",
        id="outcome",
    ),
    pytest.param(
        _gate_with(lambda d: d["rules"][0].update(candidate="0.9")),
        "rules[0].candidate must be a number",
        id="text-num",
    ),
    pytest.param(
        _gate_with(lambda d: d["rules"][0].update(interval=[1])),
        "rules[0].interval must be [low, high]",
        id="interval",
    ),
    pytest.param(
        lambda real: '{"schema": "mlci.gate-verdict", "passed": NaN}', "is not valid JSON", id="nan"
    ),
    pytest.param(
        lambda real: json.loads(real["drift"].read_text()) | {"features": [{"name": "x"}]},
        "features[0].kind is missing",
        id="drift-feature",
    ),
    pytest.param(
        lambda real: json.loads(real["data"].read_text()) | {"expectations": [{"type": "x", "success": 1}]},
        "expectations[0].success must be true/false",
        id="data-success",
    ),
    pytest.param(
        lambda real: (
            pipeline_verdict(real)
            | {
                "stages": [
                    {
                        "name": "gate",
                        "status": "done",
                        "message": "",
                        "duration_s": 1.0,
                        "verdict_file": None,
                        "verdict": None,
                    }
                ]
            }
        ),
        "stages[0].status must be one of",
        id="stage-status",
    ),
    pytest.param(
        lambda real: (
            pipeline_verdict(real)
            | {
                "stages": [
                    {
                        "name": "gate",
                        "status": "failed",
                        "message": "",
                        "duration_s": 1.0,
                        "verdict_file": None,
                        "verdict": {"schema": "mlci.gate-verdict", "schema_version": 1, "passed": False},
                    }
                ]
            }
        ),
        "stages[0].verdict.status is missing",
        id="embedded-malformed",
    ),
]


@pytest.mark.parametrize(("content", "message"), BAD_VERDICTS)
@pytest.mark.slow
def test_malformed_verdict_exits_2_naming_the_file(
    real: dict[str, Path], tmp_path: Path, content: Any, message: str
) -> None:
    value = content(real)
    path = tmp_path / "verdict.json"
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    report_file = tmp_path / "report.md"
    code, out, err, _ = run_cli(["report", str(path), "--report-file", str(report_file)])
    assert code == 2, out + err
    assert f"verdict file {path}" in err and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not report_file.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["report"], "the following arguments are required: VERDICT", id="no-verdict"),
        pytest.param(
            ["report", "missing.json"], "verdict file missing.json does not exist", id="missing-file"
        ),
        pytest.param(["report", "{gate}", "--key", "a b; rm -rf /"], "report key", id="bad-key"),
        pytest.param(
            ["report", "{gate}", "--pr-number", "0"], "--pr-number: must be a whole number", id="pr-zero"
        ),
        pytest.param(["report", "{gate}", "--comment", "maybe"], "invalid choice", id="comment-choice"),
        pytest.param(
            ["report", "{gate}", "--predictions", "nope.csv"],
            "predictions file nope.csv does not exist",
            id="preds",
        ),
        pytest.param(
            ["report", "{gate}", "--comment", "true", "--pr-number", "3", "--repository", "not a repo"],
            "is not owner/name",
            id="bad-repository",
        ),
    ],
)
def test_bad_usage_exits_2(
    real: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_TOKEN", "gh-test-token-0001")
    argv = [a.replace("{gate}", str(real["gate"])) for a in argv]
    code, out, err, _ = run_cli(argv)
    assert code == 2, out + err
    assert message in err, err


def test_two_pipeline_verdicts_are_refused(real: dict[str, Path]) -> None:
    with pytest.raises(UsageError, match="one pipeline verdict"):
        render_report(pipeline_verdict(real), pipeline_verdict(real))


def test_validate_rejects_a_pipeline_without_stages() -> None:
    with pytest.raises(InputError, match="stages is missing"):
        validate_verdict(
            {
                "schema": "mlci.pipeline-verdict", "schema_version": 1, "passed": True, "status": "passed",
                "failed_stage": None, "git": {}, "data_fingerprint": None, "model": None, "image": None,
                "config": None, "deployment": None,
            },
            source="x",
        )  # fmt: skip


# -- CLI -------------------------------------------------------------------------------------------


def test_cli_writes_report_summary_and_outputs(real: dict[str, Path], tmp_path: Path) -> None:
    outputs, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    env = {"MLCI_OUTPUT_FILE": str(outputs), "MLCI_SUMMARY_FILE": str(summary)}
    report_file = tmp_path / "r" / "report.md"
    code, out, err, _ = run_cli(
        ["report", str(real["gate"]), str(real["drift"]), "--report-file", str(report_file)], env
    )
    assert code == 0, err  # the report was written; the verdict failing is for the gate step to say
    text = report_file.read_text()
    assert text.startswith("## ❌ mlci: failed at **gate**, **drift**")
    assert summary.read_text().strip() == text.strip()
    written = outputs.read_text()
    assert re.search(r"passed<<\S+\nfalse\n", written)
    assert re.search(rf"report-file<<\S+\n{re.escape(str(report_file))}\n", written)
    assert re.search(r"comment-action<<\S+\nskipped\n", written)
    assert "not a pull request, so no comment" in out
    assert "warning" not in out  # not a pull request: nothing to warn about


def test_cli_from_env_takes_verdicts_one_per_line(
    real: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLCI_INPUT_VERDICT", f"{real['gate']}\n{real['data']}\n")
    monkeypatch.setenv("MLCI_INPUT_REPORT_FILE", str(tmp_path / "r.md"))
    monkeypatch.setenv("MLCI_INPUT_COMMENT", "false")
    code, _, err, _ = run_cli(["--from-env", "report"])
    assert code == 0, err
    assert "### Data check" in (tmp_path / "r.md").read_text()


def test_report_command_does_not_import_heavy_libraries() -> None:
    probe = (
        "import sys; from mlci_lib.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('matplotlib', 'pandas', 'numpy', 'great_expectations', 'mlflow', 'docker') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


# -- plots -----------------------------------------------------------------------------------------


def _png_ok(path: Path) -> tuple[int, int]:
    assert path.stat().st_size > 5_000, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


@pytest.mark.slow
def test_binary_plots_via_cli(real: dict[str, Path], tmp_path: Path) -> None:
    outputs = tmp_path / "out.txt"
    plots = tmp_path / "plots"
    code, _, err, _ = run_cli(
        [
            "report",
            str(real["gate"]),
            "--predictions",
            str(real["candidate"]),
            "--plots-dir",
            str(plots),
            "--report-file",
            str(tmp_path / "r.md"),
        ],
        {"MLCI_OUTPUT_FILE": str(outputs)},
    )
    assert code == 0, err
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["calibration.png", "confusion_matrix.png", "precision_recall_curve.png", "roc_curve.png"]
    for path in plots.iterdir():
        width, height = _png_ok(path)
        assert width >= 400 and height >= 350
    assert re.search(rf"plots-dir<<\S+\n{re.escape(str(plots))}\n", outputs.read_text())
    assert "- `roc_curve.png`" in (tmp_path / "r.md").read_text()


@pytest.mark.slow
def test_multiclass_and_regression_plots(real: dict[str, Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 300
    y = rng.choice(["cat", "dog", "eel"], n)
    proba = rng.dirichlet([1, 1, 1], n)
    frame = pd.DataFrame({"label": y, "prediction": np.array(["cat", "dog", "eel"])[proba.argmax(1)]})
    for i, name in enumerate(["cat", "dog", "eel"]):
        frame[f"proba_{name}"] = proba[:, i]
    frame.to_parquet(tmp_path / "multi.parquet")
    # The plots come from the predictions a gate verdict was computed on: gate them first.
    multi_gate = run_gate(tmp_path / "multi.parquet", rule=["accuracy min=0.1"], resamples=0).to_dict()
    report = render_report(multi_gate, predictions=tmp_path / "multi.parquet", plots_dir=tmp_path / "multi")
    assert len(report.plots) == 4
    for name in report.plots:
        _png_ok(Path(name))

    target = rng.normal(100, 20, n)
    pd.DataFrame({"label": target, "prediction": target + rng.normal(0, 5, n)}).to_csv(
        tmp_path / "reg.csv", index=False
    )
    reg_gate = run_gate(tmp_path / "reg.csv", rule=["rmse max=100"], resamples=0, task="regression")
    report = render_report(
        reg_gate.to_dict(),
        predictions=tmp_path / "reg.csv",
        plots_dir=tmp_path / "reg",
        columns={"task": "regression"},
    )
    assert sorted(Path(p).name for p in report.plots) == ["predicted_vs_actual.png", "residuals.png"]
    for name in report.plots:
        _png_ok(Path(name))


def test_bad_predictions_file_exits_2(real: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("label,prediction\n1,\n0,1\n")
    code, _, err, _ = run_cli(
        ["report", str(real["gate"]), "--predictions", str(bad), "--report-file", str(tmp_path / "r.md")]
    )
    assert code == 2 and "bad.csv" in err and "prediction" in err, err


@pytest.mark.slow
def test_plots_only_from_the_predictions_the_gate_verdict_was_computed_on(
    real: dict[str, Path], tmp_path: Path
) -> None:
    # Another model's predictions (same columns, other scores) must not be drawn beside this verdict.
    other = tmp_path / "other.csv"
    frame = pd.read_csv(real["candidate"])
    frame["score"] = 1 - frame["score"]
    frame.to_csv(other, index=False)
    argv = ["report", str(real["gate"]), "--report-file", str(tmp_path / "r.md")]
    code, _, err, _ = run_cli([*argv, "--predictions", str(other), "--plots-dir", str(tmp_path / "p1")])
    assert code == 2 and "is not the file the gate verdict was computed on" in err, err
    assert not (tmp_path / "p1").exists() and not (tmp_path / "r.md").exists()
    # A verdict that records no predictions (here: a data check alone) cannot vouch for any.
    code, _, err, _ = run_cli(
        [
            "report",
            str(real["data"]),
            "--predictions",
            str(real["candidate"]),
            "--report-file",
            str(tmp_path / "r.md"),
        ]
    )
    assert code == 2 and "no gate verdict in the report records" in err, err
    # The gate's own candidate file draws.
    code, _, err, _ = run_cli(
        [*argv, "--predictions", str(real["candidate"]), "--plots-dir", str(tmp_path / "p2")]
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "p2").iterdir())


# -- size limit ------------------------------------------------------------------------------------


def _balanced(text: str) -> bool:
    fences = sum(1 for line in text.splitlines() if line.startswith("```"))
    return fences % 2 == 0 and text.count("<details") == text.count("</details>")


def test_fit_keeps_head_and_closes_blocks() -> None:
    head = "## ❌ mlci: failed at **gate**\n\ncommit `abc` → data – → model – → image –"
    chart = "```mermaid\nxychart-beta\n  bar [1, 2]\n```"
    table = "\n".join(f"| feature_{i} | {'x' * 80} |" for i in range(3000))
    drift = f"### Drift\n\n<details><summary>all</summary>\n\n{table}\n\n</details>\n"
    big = f"{head}\n\n### Gate\n\n{chart}\n\n{drift}"
    assert len(big) > 200_000
    fitted = fit_markdown(big, COMMENT_BUDGET)
    assert len(fitted) <= COMMENT_BUDGET
    assert fitted.startswith(head)
    assert "```mermaid" not in fitted and TRUNCATED_NOTE in fitted
    assert _balanced(fitted)
    assert fit_markdown("short", COMMENT_BUDGET) == "short"


@pytest.mark.slow
def test_big_report_is_cut_in_the_summary_budget(real: dict[str, Path]) -> None:
    drift = json.loads(real["drift"].read_text())
    template = drift["features"][0]
    drift["features"] = [template | {"name": f"feature_{i:05d}_" + "y" * 200} for i in range(2000)]
    report = render_report(drift)
    assert "… and 1950 more features" in report.markdown
    fitted = report.fitted(8_000)
    assert len(fitted) <= 8_000 and fitted.startswith("## ❌ mlci: failed at **drift**") and _balanced(fitted)


def test_result_objects_render_like_their_files(real: dict[str, Path]) -> None:
    from mlci_lib.drift import detect_drift
    from mlci_lib.gate import run_gate

    gate = run_gate(
        str(real["candidate"]), str(real["baseline"]), rule=["accuracy max-drop=0.01"], resamples=100
    )
    folder = real["gate"].parent
    drift = detect_drift(folder / "reference.csv", folder / "current.csv")
    report = render_report(gate, drift)
    assert report.failed == ("drift",) and [s.name for s in report.sections] == ["head", "gate", "drift"]
    assert report.section("drift") == render_report(json.loads(drift.to_json())).section("drift")
