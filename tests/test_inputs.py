"""Inputs that must be refused or accepted, whatever the command: numeric option ranges, one spelling
of config keys (with "did you mean"), and CSV files that start with a UTF-8 byte-order mark."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlci_lib.cli import build_parser, main
from mlci_lib.errors import ConfigError
from mlci_lib.runner import CiRunner

BOM = b"\xef\xbb\xbf"


def run(argv: list[str], tmp_path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {
        "MLCI_OUTPUT_FILE": str(tmp_path / "outputs.txt"),
        "MLCI_SUMMARY_FILE": str(tmp_path / "summary.md"),
    }
    code = main(argv, runner=CiRunner(env, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


# -- numeric options -------------------------------------------------------------------------------

#: (command, option, a value out of its range). Every numeric option of every command is here:
#: test_every_numeric_option_is_in_the_table keeps the table complete.
OUT_OF_RANGE = [
    ("gate", "--slice-min-size", "-1"),
    ("gate", "--slice-min-size", "0"),
    ("gate", "--resamples", "-5"),
    ("gate", "--seed", "-1"),
    ("gate", "--confidence", "nan"),
    ("gate", "--confidence", "-0.5"),
    ("data check", "--sample-size", "-1"),
    ("data check", "--sample-size", "101"),
    ("data profile", "--margin", "-0.1"),
    ("data profile", "--margin", "inf"),
    ("data profile", "--max-categories", "0"),
    ("data profile", "--row-margin", "-1"),
    ("drift", "--psi-threshold", "0"),
    ("drift", "--js-threshold", "1.5"),
    ("drift", "--ks-threshold", "1"),
    ("drift", "--chi2-threshold", "0"),
    ("drift", "--max-drift-share", "-0.1"),
    ("drift", "--bins", "1"),
    ("drift", "--spark-quantile-accuracy", "99"),
    ("drift", "--spark-quantile-accuracy", "10000001"),
    ("report", "--pr-number", "0"),
    ("model promote", "--version", "0"),
    ("model tag", "--version", "-3"),
    ("image build", "--port", "70000"),
    ("image smoke", "--requests", "0"),
    ("image smoke", "--rows-per-request", "-1"),
    ("image smoke", "--max-rows", "0"),
    ("image smoke", "--health-timeout", "nan"),
    ("serve", "--threads", "0"),
    ("serve", "--port", "70000"),
    ("serve", "--request-timeout", "nan"),
    ("serve", "--max-body-bytes", "-1"),
    ("serve", "--max-connections", "0"),
    ("serve", "--max-concurrent-work", "-2"),
    ("serve", "--max-columns", "0.5"),
    ("deploy verify", "--requests", "0"),
    ("deploy apply", "--timeout", "0"),
    ("deploy apply", "--requests", "100001"),
    ("serve", "--log-sample-rate", "1.5"),
    ("serve", "--log-max-rows", "0"),
    ("serve", "--log-max-bytes", "-1"),
    ("serve", "--log-max-seconds", "0"),
    ("serve", "--log-queue-rows", "0"),
    ("monitor render", "--min-rows", "0"),
    ("monitor render", "--mean-shift", "0"),
    ("monitor render", "--variance-ratio", "1"),
    ("monitor render", "--share-shift", "1"),
    ("monitor render", "--error-rate", "0"),
    ("monitor render", "--reject-rate", "nan"),
    ("predict", "--chunk-rows", "0"),
    ("predict", "--chunk-rows", "10000001"),
    ("monitor receive", "--port", "70000"),
]

#: The arguments each command needs besides the option under test (files need not exist: the
#: range check comes first).
_REST = {
    "gate": ["--candidate", "c.csv", "--rule", "accuracy min=0.5"],
    "data check": ["d.csv", "--suite", "s.yaml"],
    "data profile": ["d.csv", "-o", "s.yaml"],
    "drift": ["--reference", "r.csv", "--current", "c.csv"],
    "report": ["--verdict", "v.json"],
    "model promote": ["m"],
    "model tag": ["m"],
    "image build": ["model", "--repository", "localhost:5000/m"],
    "image smoke": ["img", "--model", "model", "--sample-data", "d.csv"],
    "serve": ["model"],
    "deploy verify": ["http://127.0.0.1:9", "--smoke", "s.json"],
    "deploy apply": ["--image", "i", "--kubeconfig", "k", "--no-verify"],
    "monitor render": ["--model", "m", "--reference", "r.csv", "-o", "out"],
    "predict": ["model", "--data", "d.parquet", "--output", "o.parquet"],
    "monitor receive": [],
}


@pytest.mark.parametrize(
    "command, option, value", OUT_OF_RANGE, ids=[f"{c}{o}={v}".replace(" ", "-") for c, o, v in OUT_OF_RANGE]
)
@pytest.mark.slow
def test_out_of_range_option_is_a_one_line_error_naming_option_and_range(
    tmp_path: Path, command: str, option: str, value: str
) -> None:
    argv = [*command.split(), *_REST[command], f"{option}={value}"]
    if command in ("model promote", "model tag") and option != "--version":
        argv += ["--version", "1"]
    code, out, err = run(argv, tmp_path)
    assert code == 2, out + err
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert option in line and "must be" in line and repr(value) in line


def _numeric_options() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif action.option_strings and (
                action.metavar in ("N", "P", "PORT", "SECONDS")
                or action.type in (int, float)
                or getattr(action.type, "__qualname__", "").startswith("number.")
            ):
                found.add((" ".join(path), max(action.option_strings, key=len)))

    walk(build_parser(), [])
    return found


def test_every_numeric_option_is_in_the_table() -> None:
    tested = {(c, o) for c, o, _ in OUT_OF_RANGE}
    shared = {"image release": "image smoke"}  # release takes smoke's and build's options
    missing = {
        (c, o)
        for c, o in _numeric_options()
        if (c, o) not in tested and (shared.get(c), o) not in tested and ("image build", o) not in tested
    }
    assert not missing, f"numeric options without a range test: {sorted(missing)}"


def test_argparse_level_numbers_have_no_plain_int_or_float_type() -> None:
    def walk(parser: argparse.ArgumentParser) -> list[str]:
        bad = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    bad += walk(sub)
            elif action.type in (int, float):
                bad.append(max(action.option_strings, key=len))
        return bad

    assert walk(build_parser()) == []  # a bare int/float type checks no range


def test_library_gate_refuses_out_of_range_slice_size_and_seed(tmp_path: Path) -> None:
    from mlci_lib.gate import run_gate

    frame = pd.DataFrame({"label": [0, 1] * 20, "prediction": [0, 1] * 20, "g": ["a"] * 40})
    for kwargs, option in (({"slice_min_size": -1}, "--slice-min-size"), ({"seed": -1}, "--seed")):
        with pytest.raises(ConfigError, match=option):
            run_gate(frame, rule=["accuracy min=0.5", "slice:accuracy min=0.5"], slice_column=["g"], **kwargs)


# -- one spelling of config keys ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, wrong, right",
    [
        ("metrics:\n  accuracy: {max_drop: 0.01}\n", "max_drop", "max-drop"),
        ("metrics:\n  accuracy: {min: 0.5, requird: false}\n", "requird", "required"),
        ("metrics:\n  accuracy: {min: 0.5}\non_inconclusive: pass\n", "on_inconclusive", "on-inconclusive"),
        ("metrics:\n  accuracy: {min: 0.5}\nslices: {columns: [g], min_size: 5}\n", "min_size", "min-size"),
        ("metrics:\n  accuracy: {min: 0.5}\nbootstrap: {resample: 500}\n", "resample", "resamples"),
    ],
    ids=["check", "common-key", "top-level", "slices", "bootstrap"],
)
def test_gate_file_refuses_a_misspelled_key_with_did_you_mean(
    tmp_path: Path, text: str, wrong: str, right: str
) -> None:
    from mlci_lib.gate.rules import load_gate_rules

    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"'{wrong}'.*did you mean {right}"):
        load_gate_rules(path)


def test_inline_rule_refuses_underscore_spelling(tmp_path: Path) -> None:
    frame = pd.DataFrame({"label": [0, 1] * 20, "prediction": [0, 1] * 20})
    frame.to_csv(tmp_path / "c.csv", index=False)
    code, out, err = run(["gate", "--candidate", str(tmp_path / "c.csv"), "--rule", "accuracy max_drop=0.01",
                          "--baseline", str(tmp_path / "c.csv")], tmp_path)  # fmt: skip
    assert code == 2 and "did you mean max-drop" in err, out + err


def test_drift_config_and_suite_suggest_the_spelling(tmp_path: Path) -> None:
    from mlci_lib.data.suite import load_suite
    from mlci_lib.drift.gate import load_drift_config

    drift = tmp_path / "drift.yaml"
    drift.write_text("max-drift-share: 0.3\n")
    with pytest.raises(ConfigError, match="did you mean max_drift_share"):
        load_drift_config(drift)
    drift.write_text("features:\n  age: {methd: ks}\n")
    with pytest.raises(ConfigError, match="did you mean method"):
        load_drift_config(drift)
    suite = tmp_path / "s.yaml"
    suite.write_text("columns:\n  age: {type: integer, max-null-share: 0.1}\n")
    with pytest.raises(ConfigError, match="did you mean max_null_share"):
        load_suite(suite)


def test_pipeline_file_suggests_the_spelling(tmp_path: Path) -> None:
    from mlci_lib.pipeline.config import load_config

    path = tmp_path / "mlci.yaml"
    path.write_text(
        "version: 1\nmodel: {name: m, path: model}\n"
        "stages:\n  baseline: {data: eval.csv, label_column: label}\n"
    )
    with pytest.raises(ConfigError, match="did you mean label-column"):
        load_config(path, environ={})


def test_duplicate_key_in_a_gate_file_stops_mlci_gate(tmp_path: Path) -> None:
    frame = pd.DataFrame({"label": [0, 1] * 20, "prediction": [0, 1] * 20})
    frame.to_csv(tmp_path / "c.csv", index=False)
    rules = tmp_path / "gate.yaml"
    rules.write_text("metrics:\n  accuracy: {min: 0.99}\n  accuracy: {min: 0.1}\n")
    code, out, err = run(["gate", "--candidate", str(tmp_path / "c.csv"), "--rules", str(rules)], tmp_path)
    assert code == 2 and "'accuracy' appears twice" in err and "lines 2 and 3" in err, out + err


# -- CSV with a byte-order mark ---------------------------------------------------------------------


def _bom_csv(path: Path, frame: pd.DataFrame) -> Path:
    path.write_bytes(BOM + frame.to_csv(index=False).encode())
    return path


def test_gate_reads_a_bom_csv_and_joins_on_its_first_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    cand = pd.DataFrame({"id": np.arange(200), "label": y, "prediction": y})
    base = cand.sample(frac=1.0, random_state=1)  # other row order: the join must use the id
    base = base.assign(prediction=np.where(rng.random(200) < 0.2, 1 - base["label"], base["label"]))
    c = _bom_csv(tmp_path / "cand.csv", cand)
    b = _bom_csv(tmp_path / "base.csv", base)
    verdict_file = tmp_path / "verdict.json"
    code, out, err = run(["gate", "--candidate", str(c), "--baseline", str(b), "--id-column", "id",
                          "--rule", "accuracy max-drop=0.0", "--resamples", "200",
                          "--verdict-file", str(verdict_file)], tmp_path)  # fmt: skip
    assert code == 0, out + err
    verdict = json.loads(verdict_file.read_text())
    assert verdict["rules"][0]["baseline"] == pytest.approx((base["prediction"] == base["label"]).mean())


def test_every_table_reader_accepts_a_bom(tmp_path: Path) -> None:
    from mlci_lib.files import read_json
    from mlci_lib.tables import read_arrow, read_table

    frame = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "g": ["a", "b", "a"]})
    csv = _bom_csv(tmp_path / "t.csv", frame)
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_bytes(BOM + frame.to_json(orient="records", lines=True).encode())
    metrics = tmp_path / "m.json"
    metrics.write_bytes(BOM + b'{"accuracy": 0.9}')
    for path in (csv, jsonl):
        assert list(read_table(path, columns=["id", "x"]).columns) == ["id", "x"]
        pd.testing.assert_frame_equal(read_table(path), frame, check_dtype=False)
    assert read_arrow(csv, columns=["id"]).column_names == ["id"]
    assert read_json(metrics, what="metrics") == {"accuracy": 0.9}


@pytest.mark.slow  # Great Expectations takes seconds to import
def test_data_check_and_drift_accept_a_bom_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": np.arange(50), "x": np.linspace(0, 1, 50)})
    csv = _bom_csv(tmp_path / "d.csv", frame)
    suite = tmp_path / "s.yaml"
    suite.write_text("table: {required_columns: [id, x]}\ncolumns:\n  id: {unique: true}\n")
    code, out, err = run(["data", "check", str(csv), "--suite", str(suite)], tmp_path)
    assert code == 0, out + err
    code, out, err = run(["drift", "--reference", str(csv), "--current", str(csv)], tmp_path)
    assert code == 0, out + err


@pytest.mark.parametrize(
    "rules, suggestion",
    [
        ({"metrics": {"acuracy": {"min": 0.5}}}, "did you mean accuracy"),
        ({"metrics": {"f1macro": {"min": 0.5}}}, "did you mean f1_macro"),
        ({"latency": {"p95": {"max": 250}}}, "did you mean p95_ms"),
    ],
    ids=["metric", "metric-average", "latency-figure"],
)
def test_misspelled_metric_or_latency_figure_suggests_the_name(rules: dict, suggestion: str) -> None:
    from mlci_lib.gate.rules import parse_rules

    with pytest.raises(ConfigError, match=suggestion):
        parse_rules(rules)


def test_compute_metrics_suggests_a_metric_name() -> None:
    from mlci_lib.errors import InputError
    from mlci_lib.gate import compute_metrics

    with pytest.raises(InputError, match="did you mean balanced_accuracy"):
        compute_metrics([0, 1], [0, 1], metrics=["balanced_acuracy"])
