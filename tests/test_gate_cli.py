# ruff: noqa: E501  (the bad-input table keeps one case per line group, unformatted, for reading)
"""`mlci gate` end to end through mlci_lib.cli.main: verdicts, outputs, and bad input failing closed."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlci_lib.cli import build_parser, main
from mlci_lib.cli.framework import find_command_parser
from mlci_lib.runner import CiRunner


def _frames(n: int = 400, seed: int = 0, gap: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    z = rng.normal(size=n)
    cand = 1 / (1 + np.exp(-(2.5 * (2 * y - 1) * (1 - gap) + z)))
    base = 1 / (1 + np.exp(-(2.5 * (2 * y - 1) + 0.8 * z + 0.6 * rng.normal(size=n))))
    region = rng.choice(["eu", "us"], n)
    c = pd.DataFrame({"id": np.arange(n), "label": y, "prediction": (cand > 0.5).astype(int), "score": cand})
    c["region"] = region
    b = pd.DataFrame({"id": np.arange(n), "label": y, "prediction": (base > 0.5).astype(int), "score": base})
    return c, b


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    cand, base = _frames()
    worse, _ = _frames(gap=0.9)
    paths = {
        "cand": tmp_path / "cand.csv",
        "base": tmp_path / "base.parquet",
        "worse": tmp_path / "worse.jsonl",
        "rules": tmp_path / "gate.yaml",
        "cand_metrics": tmp_path / "cand.json",
        "base_metrics": tmp_path / "base.json",
        "latency": tmp_path / "latency.json",
    }
    cand.to_csv(paths["cand"], index=False)
    base.to_parquet(paths["base"], index=False)
    worse.to_json(paths["worse"], orient="records", lines=True)
    paths["rules"].write_text(
        "metrics:\n  accuracy: {min: 0.6, max-drop: 0.05}\n  roc_auc: {max-drop: 0.05}\n"
        "slices:\n  columns: [region]\n  metrics:\n    accuracy: {min: 0.5, max-gap: 0.3}\n"
    )
    paths["cand_metrics"].write_text(json.dumps({"accuracy": 0.91, "f1": 0.88}))
    paths["base_metrics"].write_text(json.dumps({"accuracy": 0.90}))
    paths["latency"].write_text(json.dumps({"schema": "mlci.latency", "schema_version": 1, "p95_ms": 12.5}))
    return paths


def run(argv: list[str], tmp_path: Path) -> tuple[int, str, str, Path, Path]:
    out, err = io.StringIO(), io.StringIO()
    outputs, summary = tmp_path / "outputs.txt", tmp_path / "summary.md"
    env = {"MLCI_OUTPUT_FILE": str(outputs), "MLCI_SUMMARY_FILE": str(summary)}
    code = main(argv, runner=CiRunner(env, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue(), outputs, summary


def test_passing_gate_writes_verdict_outputs_and_summary(files, tmp_path: Path) -> None:
    verdict_file = tmp_path / "out" / "verdict.json"
    code, out, err, outputs, summary = run(
        ["gate", "--candidate", str(files["cand"]), "--baseline", str(files["base"]),
         "--rules", str(files["rules"]), "--verdict-file", str(verdict_file), "--resamples", "300"],
        tmp_path,
    )  # fmt: skip
    assert code == 0, out + err
    verdict = json.loads(verdict_file.read_text())
    assert verdict["schema"] == "mlci.gate-verdict" and verdict["schema_version"] == 1
    assert verdict["passed"] is True and verdict["method"] == "bootstrap"
    first = verdict["rules"][0]
    for key in ("metric", "candidate", "baseline", "delta", "interval", "threshold", "outcome"):
        assert key in first
    kinds = {r["kind"] for r in verdict["rules"]}
    assert kinds == {"metric", "slice", "slice-gap"}
    text = outputs.read_text()
    assert "passed<<" in text and "\ntrue\n" in text and str(verdict_file) in text
    assert "| accuracy max-drop |" in summary.read_text()


def test_failing_gate_exits_1_with_an_error_per_failing_rule(files, tmp_path: Path) -> None:
    code, out, err, outputs, summary = run(
        ["gate", "--candidate", str(files["worse"]), "--baseline", str(files["base"]),
         "--rule", "accuracy max-drop=0.01", "--rule", "roc_auc max-drop=0.01", "--rule", "f1 min=0.1",
         "--verdict-file", str(tmp_path / "v.json"), "--resamples", "200"],
        tmp_path,
    )  # fmt: skip
    assert code == 1, out + err
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "accuracy max-drop" in errors[0] and "roc_auc max-drop" in errors[1]
    assert "\nfalse\n" in outputs.read_text()
    assert "❌ fail" in summary.read_text()
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert [r["outcome"] for r in verdict["rules"]] == ["fail", "fail", "pass"]


def test_metrics_files_give_point_estimates_and_say_so(files, tmp_path: Path) -> None:
    code, out, err, _, summary = run(
        ["--json", "gate", "--candidate", str(files["cand_metrics"]), "--baseline", str(files["base_metrics"]),
         "--rule", "accuracy max-drop=0.005", "--verdict-file", str(tmp_path / "v.json")],
        tmp_path,
    )  # fmt: skip
    assert code == 0, out + err
    verdict = json.loads(out)
    assert verdict["method"] == "point" and verdict["rules"][0]["interval"] is None
    assert any("point estimates" in note for note in verdict["notes"])
    assert "point estimates" in summary.read_text()


def test_latency_rules(files, tmp_path: Path) -> None:
    base_latency = tmp_path / "base-latency.json"
    base_latency.write_text(json.dumps({"schema": "mlci.latency", "p95_ms": 10.0}))
    code, out, err, *_ = run(
        ["gate", "--candidate-latency", str(files["latency"]), "--baseline-latency", str(base_latency),
         "--rule", "latency:p95_ms max=20 max-relative-increase=0.1", "--verdict-file", str(tmp_path / "v.json")],
        tmp_path,
    )  # fmt: skip
    assert code == 1, out + err
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert [(r["check"], r["outcome"]) for r in verdict["rules"]] == [
        ("max", "pass"),
        ("max-relative-increase", "fail"),
    ]


def test_small_slices_are_reported_not_gated(files, tmp_path: Path) -> None:
    code, out, err, *_ = run(
        ["gate", "--candidate", str(files["cand"]), "--slice-column", "region", "--slice-min-size", "1000",
         "--rule", "slice:accuracy min=0.99", "--verdict-file", str(tmp_path / "v.json")],
        tmp_path,
    )  # fmt: skip
    assert code == 0, out + err
    verdict = json.loads((tmp_path / "v.json").read_text())
    assert {r["outcome"] for r in verdict["rules"]} == {"skipped"}
    assert {s["value"] for s in verdict["slices"]} == {"eu", "us"}


def test_from_env_maps_action_inputs(files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCI_INPUT_CANDIDATE", str(files["cand"]))
    monkeypatch.setenv("MLCI_INPUT_BASELINE", str(files["base"]))
    monkeypatch.setenv("MLCI_INPUT_RULE", "accuracy max-drop=0.2\nroc_auc max-drop=0.2")
    monkeypatch.setenv("MLCI_INPUT_RESAMPLES", "200")
    monkeypatch.setenv("MLCI_INPUT_ON_INCONCLUSIVE", "warn")
    monkeypatch.setenv("MLCI_INPUT_VERDICT_FILE", str(tmp_path / "env.json"))
    code, out, err, *_ = run(["--from-env", "gate"], tmp_path)
    assert code == 0, out + err
    verdict = json.loads((tmp_path / "env.json").read_text())
    assert verdict["resamples"] == 200 and verdict["on_inconclusive"] == "warn"
    assert [r["metric"] for r in verdict["rules"]] == ["accuracy", "roc_auc"]


# -- bad input fails closed: exit 2, one line, no traceback --------------------------------------


def _write(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


def _csv(tmp: Path, name: str, frame: pd.DataFrame) -> str:
    path = tmp / name
    frame.to_csv(path, index=False)
    return str(path)


Case = Callable[[dict[str, Path], Path], list[str]]
GOOD_RULE = ["--rule", "accuracy max-drop=0.01"]

BAD_INPUT: list[tuple[str, Case, str]] = [
    ("no-candidate", lambda f, t: ["--rule", "accuracy min=0.5"], "needs --candidate"),
    ("missing-candidate-file", lambda f, t: ["--candidate", str(t / "nope.csv"), *GOOD_RULE], "does not exist"),
    ("empty-candidate-file", lambda f, t: ["--candidate", _write(t, "e.csv", ""), *GOOD_RULE], "empty"),
    ("header-only", lambda f, t: ["--candidate", _write(t, "h.csv", "label,prediction\n"), *GOOD_RULE], "no rows"),
    ("unknown-column", lambda f, t: ["--candidate", str(f["cand"]), "--label-column", "target", *GOOD_RULE],
     "no column 'target'"),
    ("unknown-metric", lambda f, t: ["--candidate", str(f["cand"]), "--rule", "acuracy min=0.5"],
     "not a metric mlci knows"),
    ("unknown-check", lambda f, t: ["--candidate", str(f["cand"]), "--rule", "accuracy minimum=0.5"],
     "unknown check"),
    ("metric-for-wrong-task", lambda f, t: ["--candidate", str(f["cand"]), "--rule", "rmse max=1"],
     "does not apply"),
    ("different-lengths-no-id", lambda f, t: [
        "--candidate", _csv(t, "c.csv", f["frame"].drop(columns="id")),
        "--baseline", _csv(t, "b.csv", f["frame"].drop(columns="id").head(50)), *GOOD_RULE], "has 400 rows"),
    ("nan-label", lambda f, t: ["--candidate", _csv(t, "n.csv", f["frame"].assign(
        label=lambda d: d.label.where(d.index != 3))), *GOOD_RULE], "missing value at row 4"),
    ("inf-score", lambda f, t: ["--candidate", _csv(t, "i.csv", f["frame"].assign(
        score=lambda d: d.score.where(d.index != 5, np.inf))), "--rule", "roc_auc min=0.5"],
     "missing or infinite value at row 6"),
    ("non-numeric-score", lambda f, t: ["--candidate", _csv(t, "s.csv", f["frame"].assign(
        score=lambda d: d.score.astype(object).where(d.index != 2, "high"))), "--rule", "roc_auc min=0.5"],
     "is not numeric"),
    ("score-needed-but-absent", lambda f, t: ["--candidate", _csv(t, "x.csv", f["frame"].drop(columns="score")),
     "--rule", "roc_auc min=0.5"], "needs scores"),
    ("rows-do-not-join", lambda f, t: ["--candidate", str(f["cand"]), "--baseline", _csv(t, "j.csv",
     f["frame"].assign(id=lambda d: d.id + 7)), *GOOD_RULE], "have no baseline row"),
    ("duplicate-ids", lambda f, t: ["--candidate", _csv(t, "d.csv", f["frame"].assign(id=1)),
     "--baseline", str(f["base"]), *GOOD_RULE], "appears twice"),
    ("labels-disagree", lambda f, t: ["--candidate", str(f["cand"]), "--baseline", _csv(t, "l.csv",
     f["frame"].assign(label=lambda d: 1 - d.label)), *GOOD_RULE], "disagree on the label"),
    ("baseline-lacks-metric", lambda f, t: ["--candidate", str(f["cand_metrics"]), "--baseline",
     str(f["base_metrics"]), "--rule", "f1 max-drop=0.01"], "has no metric 'f1'"),
    ("metric-value-not-number", lambda f, t: ["--candidate", _write(t, "m.json", '{"accuracy": "high"}'),
     "--rule", "accuracy min=0.5"], "not a number"),
    ("nan-in-metrics-json", lambda f, t: ["--candidate", _write(t, "nan.json", '{"accuracy": NaN}'),
     "--rule", "accuracy min=0.5"], "not valid JSON"),
    ("truncated-parquet", lambda f, t: ["--candidate", _write(t, "t.parquet", f["base"].read_bytes()[:300]),
     *GOOD_RULE], "PAR1"),
    ("no-rules", lambda f, t: ["--candidate", str(f["cand"])], "no rules"),
    ("baseline-rule-without-baseline", lambda f, t: ["--candidate", str(f["cand"]), *GOOD_RULE],
     "no baseline was given"),
    ("bad-rules-yaml-key", lambda f, t: ["--candidate", str(f["cand"]), "--rules",
     _write(t, "r.yaml", "metric:\n  accuracy: {min: 0.5}\n")], "unknown key 'metric'"),
    ("rules-not-yaml", lambda f, t: ["--candidate", str(f["cand"]), "--rules", _write(t, "r2.yaml", "a: [1,\n")],
     "not valid YAML"),
    ("bad-policy", lambda f, t: ["--candidate", str(f["cand"]), *GOOD_RULE, "--on-inconclusive", "maybe"],
     "invalid choice"),
    ("bad-confidence", lambda f, t: ["--candidate", str(f["cand"]), "--rule", "accuracy min=0.1",
     "--confidence", "1.5"], "between 0.5 and 1"),
    ("too-few-resamples", lambda f, t: ["--candidate", str(f["cand"]), "--rule", "accuracy min=0.1",
     "--resamples", "10"], "between 100 and"),
    ("injection-looking-column", lambda f, t: ["--candidate", str(f["cand"]), "--label-column",
     "$(touch pwned); `id`", *GOOD_RULE], "no column '$(touch pwned); `id`'"),
    ("latency-wrong-schema", lambda f, t: ["--candidate-latency", _write(t, "lat.json", '{"schema": "x"}'),
     "--rule", "latency:p95_ms max=5"], "not 'mlci.latency'"),
    ("latency-baseline-missing", lambda f, t: ["--candidate-latency", str(f["latency"]),
     "--rule", "latency:p95_ms max-increase=5"], "needs the baseline's latency"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "message"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
@pytest.mark.slow
def test_bad_input_fails_closed(files, tmp_path: Path, make: Case, message: str) -> None:
    files = dict(files)
    files["frame"] = pd.read_csv(files["cand"])  # type: ignore[assignment]
    argv = ["gate", *make(files, tmp_path), "--verdict-file", str(tmp_path / "v.json")]
    # A verdict of an earlier run that passed: it must not survive this one.
    (tmp_path / "v.json").write_text('{"schema": "mlci.gate-verdict", "passed": true}')
    if "--baseline" not in argv and any("max-drop" in a for a in argv) and "no baseline" not in message:
        argv += ["--baseline", str(files["base"])]
    code, out, err, _outputs, _ = run(argv, tmp_path)
    assert code == 2, out + err
    assert message in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mlci: error:"), err
    assert "Traceback" not in err and "internal error" not in err
    # Bad input writes no verdict, only the error with passed: false (no earlier verdict survives).
    written = json.loads((tmp_path / "v.json").read_text())
    assert (written["schema"], written["passed"], written["error"]) == ("mlci.error", False, lines[0][13:])
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_usage_does_not_show_candidate_as_optional() -> None:
    # --candidate is required unless the gate is on latency alone (--candidate-latency).
    parser, _ = find_command_parser(build_parser(), ["gate"])
    usage = parser.format_usage()
    assert "mlci gate --candidate FILE" in usage and "[--candidate FILE]" not in usage
    assert "mlci gate --candidate-latency FILE" in usage
