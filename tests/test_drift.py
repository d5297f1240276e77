"""`mlci drift`: statistics checked against SciPy, the gate, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlci_lib.cli import main
from mlci_lib.drift import DriftConfig, detect_drift, stats as drift_stats
from mlci_lib.drift.gate import FeatureRule


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def frame(
    n: int, seed: int, *, shift: float = 0.0, plan_p: tuple[float, float, float] = (0.5, 0.3, 0.2)
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift * 10, 10, n).round(),
            "income": rng.lognormal(10, 0.5, n),
            "visits": rng.poisson(3, n),
            "plan": rng.choice(["free", "pro", "team"], n, p=plan_p),
            "active": rng.random(n) < 0.7,
            "prediction": rng.random(n),
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    ref = frame(4000, 1)
    out["reference"] = tmp_path / "reference.parquet"
    ref.to_parquet(out["reference"])
    same = frame(4000, 2)
    out["same"] = tmp_path / "same.csv"
    same.to_csv(out["same"], index=False)
    drifted = frame(4000, 3, shift=1.0, plan_p=(0.2, 0.3, 0.5))
    drifted["income"] = drifted["income"] * 1.8
    out["drifted"] = tmp_path / "drifted.parquet"
    drifted.to_parquet(out["drifted"])
    return out


# -- statistics -----------------------------------------------------------------------------


def test_ks_matches_scipy_exactly_on_small_samples() -> None:
    rng = np.random.default_rng(0)
    a, b = np.sort(rng.normal(size=3000)), np.sort(rng.normal(0.1, 1, size=2500))
    statistic, pvalue = drift_stats.ks_two_sample(a, b)
    expected = stats.ks_2samp(a, b)
    assert statistic == pytest.approx(expected.statistic)
    assert pvalue == pytest.approx(expected.pvalue)


def test_ks_on_large_samples_is_within_its_error_bound() -> None:
    rng = np.random.default_rng(1)
    a = np.sort(rng.normal(size=300_000))
    b = np.sort(np.concatenate([rng.normal(0.02, 1, 250_000), np.full(1000, 0.5)]))  # ties too
    statistic, pvalue = drift_stats.ks_two_sample(a, b)
    expected = stats.ks_2samp(a, b, method="asymp")
    assert abs(statistic - expected.statistic) <= 2 / drift_stats.KS_GRID
    assert statistic <= expected.statistic + 1e-12  # the grid can only miss the supremum
    assert pvalue == pytest.approx(expected.pvalue, rel=0.5, abs=1e-12)


def test_psi_js_and_chi2_on_known_counts() -> None:
    binned = drift_stats.Binned(("a", "b", "c"), np.array([50, 30, 20]), np.array([20, 30, 50]))
    ref, cur = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    assert drift_stats.psi(binned) == pytest.approx(float(np.sum((cur - ref) * np.log(cur / ref))))
    assert drift_stats.js_distance(binned) == pytest.approx(jensenshannon(ref, cur, base=2))
    statistic, pvalue = drift_stats.chi_square(binned)
    expected = stats.chi2_contingency(np.array([[50, 30, 20], [20, 30, 50]]), correction=False)
    assert statistic == pytest.approx(expected.statistic) and pvalue == pytest.approx(expected.pvalue)


def test_unseen_levels_are_their_own_bucket() -> None:
    ref = pd.Series(["a", "b"] * 50).value_counts()
    cur = pd.Series(["a", "b", "zz"] * 30).value_counts()
    binned = drift_stats.bin_categorical(ref, cur, 0, 0, max_levels=10)
    assert binned.unseen_levels == ("zz",) and binned.unseen_count == 30
    assert drift_stats.psi(binned) > 0.2


def test_identical_samples_have_zero_drift() -> None:
    data = np.sort(np.random.default_rng(3).normal(size=1000))
    binned = drift_stats.bin_numeric(data, data, 0, 0, 10)
    assert drift_stats.psi(binned) == pytest.approx(0.0)
    assert drift_stats.js_distance(binned) == pytest.approx(0.0)
    assert drift_stats.ks_two_sample(data, data) == (0.0, 1.0)


# -- the gate -------------------------------------------------------------------------------


def test_same_distribution_passes(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["drift", "--reference", str(files["reference"]), "--current", str(files["same"])], capsys
    )
    assert code == 0, out
    assert "0 of 5 features drifted" in out


def test_drifted_data_fails_with_a_sorted_verdict(
    files: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("MLCI_SUMMARY_FILE", str(summary))
    verdict_file = tmp_path / "drift.json"
    code, out, _ = run(
        [
            "drift",
            "--reference",
            str(files["reference"]),
            "--current",
            str(files["drifted"]),
            "--max-drift-share",
            "0.25",
            "--verdict-file",
            str(verdict_file),
        ],
        capsys,
    )
    assert code == 1, out
    verdict = json.loads(verdict_file.read_text())
    assert verdict["schema"] == "mlci.drift-verdict" and verdict["passed"] is False
    assert set(verdict["drifted_features"]) == {"age", "income", "plan"}
    names = [f["name"] for f in verdict["features"]]
    assert names[:3] == sorted(
        names[:3], key=lambda n: -next(f["severity"] for f in verdict["features"] if f["name"] == n)
    )
    assert all(f["drifted"] for f in verdict["features"][:3]) and not any(
        f["drifted"] for f in verdict["features"][3:]
    )
    assert verdict["prediction"]["name"] == "prediction" and verdict["prediction"]["drifted"] is False
    assert "3 of 5 features drifted" in summary.read_text()


def test_share_gate_and_critical_feature(files: dict[str, Path]) -> None:
    assert detect_drift(files["reference"], files["drifted"], config=DriftConfig(max_drift_share=0.6)).passed
    critical = DriftConfig(max_drift_share=0.6, features={"plan": FeatureRule(critical=True)})
    verdict = detect_drift(files["reference"], files["drifted"], config=critical)
    assert not verdict.passed and any("critical feature 'plan'" in r for r in verdict.reasons)


def test_prediction_drift_fails_the_gate(tmp_path: Path) -> None:
    ref, cur = frame(3000, 1), frame(3000, 2)
    cur["prediction"] = cur["prediction"] ** 3
    verdict = detect_drift(ref, cur)
    assert not verdict.passed
    assert verdict.prediction is not None and verdict.prediction.drifted
    assert "prediction column 'prediction' drifted" in verdict.reasons[0]
    assert "prediction" not in [f.name for f in verdict.features]


def test_per_feature_method_and_threshold(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [
            "--json",
            "drift",
            "--reference",
            str(files["reference"]),
            "--current",
            str(files["same"]),
            "--feature",
            "age=ks:0.01",
            "--feature",
            "plan=chi2",
            "--js-threshold",
            "0.3",
        ],
        capsys,
    )
    assert code == 0
    verdict = json.loads(out)
    by_name = {f["name"]: f for f in verdict["features"]}
    assert by_name["age"]["method"] == "ks" and by_name["age"]["threshold"] == 0.01
    assert by_name["age"]["value"] == pytest.approx(by_name["age"]["ks_p_value"])
    assert by_name["plan"]["method"] == "chi2" and by_name["plan"]["threshold"] == 0.05


def test_config_file(files: dict[str, Path], tmp_path: Path) -> None:
    from mlci_lib.drift.gate import load_drift_config

    config_file = tmp_path / "drift.yaml"
    config_file.write_text(
        "numeric_method: js\nthresholds: {js: 0.5}\nignore: [visits]\n"
        "features:\n  plan: {method: js, threshold: 0.5}\n"
    )
    verdict = detect_drift(files["reference"], files["drifted"], config=load_drift_config(config_file))
    assert verdict.passed
    assert {f.method for f in verdict.features} == {"js", "psi"}  # active (bool) keeps the default
    assert "visits" not in [f.name for f in verdict.features]


def test_unseen_category_drives_drift(tmp_path: Path) -> None:
    ref = pd.DataFrame({"country": ["DE", "FR"] * 500})
    cur = pd.DataFrame({"country": ["DE", "FR", "XX", "YY"] * 250})
    verdict = detect_drift(ref, cur)
    feature = verdict.features[0]
    assert feature.drifted and feature.unseen_levels == ("XX", "YY") and feature.unseen_share == 0.5


@pytest.mark.slow
def test_drift_does_not_import_great_expectations(files: dict[str, Path]) -> None:
    code = (
        "import sys; from mlci_lib.cli import main; "
        f"rc = main(['drift', '--reference', {str(files['reference'])!r}, "
        f"'--current', {str(files['same'])!r}]); "
        "assert 'great_expectations' not in sys.modules, 'drift imported GX'; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# -- bad input ------------------------------------------------------------------------------


def _bad_cases(tmp_path: Path, reference: Path) -> dict[str, tuple[list[str], str]]:
    ref = pd.read_parquet(reference)
    other_columns = tmp_path / "other.parquet"
    ref.rename(columns={"age": "age_years"}).to_parquet(other_columns)
    other_types = tmp_path / "types.csv"
    ref.assign(age=["x"] * len(ref)).to_csv(other_types, index=False)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"age": 1, "plan": "a"}\n{"age": "two", "plan": "b"}\n')
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(ref.columns) + "\n")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("plan\ncaf\xe9\n".encode("latin-1"))
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(reference.read_bytes()[:-30])
    wrong_ext = tmp_path / "data.jsonl"
    wrong_ext.write_bytes(reference.read_bytes())
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("features:\n  age: {method: magic}\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    twice = tmp_path / "twice.parquet"
    pq.write_table(pa.table([pa.array([1.0, 2.0]), pa.array([3.0, 4.0])], names=["age", "age"]), twice)
    no_rows = tmp_path / "no-rows.parquet"
    pq.write_table(pq.read_table(reference).slice(0, 0), no_rows)
    base = ["drift", "--reference", str(reference)]
    return {
        "different-columns": ([*base, "--current", str(other_columns)], "have different columns"),
        "different-types": ([*base, "--current", str(other_types)], "is numeric (float64) in reference"),
        "mixed-types": (["drift", "--reference", str(mixed), "--current", str(mixed)], "mixes types"),
        "zero-bytes": ([*base, "--current", str(empty)], "is empty (0 bytes)"),
        "header-only": ([*base, "--current", str(header_only)], "has no rows"),
        "non-utf8": ([*base, "--current", str(latin)], "not UTF-8"),
        "truncated-parquet": ([*base, "--current", str(truncated)], "truncated Parquet"),
        "wrong-extension": ([*base, "--current", str(wrong_ext)], "holds Parquet data"),
        "missing-file": ([*base, "--current", str(tmp_path / "nope.csv")], "does not exist"),
        "parquet-two-columns-one-name": ([*base, "--current", str(twice)], "has two columns named 'age'"),
        "parquet-no-rows": ([*base, "--current", str(no_rows)], "has no rows"),
        "unknown-method-in-config": (
            [*base, "--current", str(reference), "--config", str(bad_config)],
            "unknown method 'magic'",
        ),
        "method-for-wrong-kind": (
            [*base, "--current", str(reference), "--feature", "plan=ks"],
            "does not apply to categorical",
        ),
        "bad-feature-option": (
            [*base, "--current", str(reference), "--feature", "age"],
            "is not NAME=METHOD",
        ),
        "share-out-of-range": (
            [*base, "--current", str(reference), "--max-drift-share", "1.5"],
            "argument --max-drift-share: must be a number from 0 to 1",
        ),
        "nan-threshold": ([*base, "--current", str(reference), "--psi-threshold", "nan"], "must be a number"),
        "p-value-above-one": ([*base, "--current", str(reference), "--ks-threshold", "2"], "in (0, 1)"),
        "non-numeric-option": (
            [*base, "--current", str(reference), "--bins", "ten"],
            "must be a whole number from 2 to 1000",
        ),
        "unknown-column": ([*base, "--current", str(reference), "--columns", "age,nope"], "no column 'nope'"),
        "missing-prediction": (
            [*base, "--current", str(reference), "--prediction-column", "score"],
            "prediction column 'score'",
        ),
        "config-names-missing-feature": (
            [*base, "--current", str(reference), "--feature", "nope=psi"],
            "does not have",
        ),
    }


CASE_IDS = [
    "different-columns",
    "different-types",
    "mixed-types",
    "zero-bytes",
    "header-only",
    "non-utf8",
    "truncated-parquet",
    "wrong-extension",
    "missing-file",
    "parquet-two-columns-one-name",
    "parquet-no-rows",
    "unknown-method-in-config",
    "method-for-wrong-kind",
    "bad-feature-option",
    "share-out-of-range",
    "nan-threshold",
    "p-value-above-one",
    "non-numeric-option",
    "unknown-column",
    "missing-prediction",
    "config-names-missing-feature",
]


@pytest.mark.parametrize("case", CASE_IDS, ids=CASE_IDS)
@pytest.mark.slow
def test_bad_input_is_a_one_line_error(
    case: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = _bad_cases(tmp_path, files["reference"])
    assert set(cases) == set(CASE_IDS)
    argv, message = cases[case]
    code, out, err = run(argv, capsys)
    assert code == 2, out + err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
