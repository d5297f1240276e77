"""`mlci data check` and `mlci data profile`: real Great Expectations 1.x, real files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from mlci_lib.cli import main
from mlci_lib.data import check_data, load_suite, profile_data, write_profile
from mlci_lib.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures" / "data"
GOOD = FIXTURES / "customers.csv"
BAD = FIXTURES / "customers_bad.csv"
SUITE = FIXTURES / "customers.suite.yaml"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- passing and failing data ---------------------------------------------------------------


def test_good_data_passes_the_compact_suite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result_file = tmp_path / "out" / "result.json"
    code, out, _ = run(
        ["data", "check", str(GOOD), "--suite", str(SUITE), "--result-file", str(result_file)], capsys
    )
    assert code == 0, out
    assert "data check passed: 19 expectations on 60 rows" in out
    result = json.loads(result_file.read_text())
    assert result["schema"] == "mlci.data-check" and result["schema_version"] == 1
    assert result["passed"] is True and result["failed"] == 0 and result["rows"] == 60


def test_bad_data_fails_with_counts_samples_and_annotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    monkeypatch.setenv("MLCI_SUMMARY_FILE", str(summary))
    monkeypatch.setenv("MLCI_OUTPUT_FILE", str(outputs))
    code, out, _ = run(["--json", "data", "check", str(BAD), "--suite", str(SUITE)], capsys)
    assert code == 1
    result = json.loads(out)
    failures = {(e["type"], e["column"]): e for e in result["expectations"] if not e["success"]}
    assert set(failures) == {
        ("expect_column_values_to_be_unique", "customer_id"),
        ("expect_column_values_to_match_regex", "customer_id"),
        ("expect_column_values_to_be_between", "age"),
        ("expect_column_values_to_be_in_set", "plan"),
    }
    age = failures[("expect_column_values_to_be_between", "age")]
    assert age["unexpected_count"] == 2 and sorted(age["sample_unexpected"]) == [-4, 130]
    assert age["unexpected_share"] == pytest.approx(2 / 60)
    assert failures[("expect_column_values_to_be_in_set", "plan")]["sample_unexpected"] == ["enterprise"]
    markdown = summary.read_text()
    assert "### mlci data check: ❌ 4 of 19 expectations failed" in markdown
    assert "`'enterprise'`" in markdown
    assert "passed<<" in outputs.read_text() and "\nfalse\n" in outputs.read_text()


def test_annotations_on_github_are_error_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, _ = run(["data", "check", str(BAD), "--suite", str(SUITE)], capsys)
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("::error ")]
    assert len(errors) == 4
    assert any("expect_column_values_to_be_in_set on column 'plan'" in line for line in errors)


@pytest.mark.slow
def test_missing_column_is_a_failed_expectation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("columns:\n  age: {min: 0}\n  zip_code: {nullable: false, min: 0}\n")
    code, out, _ = run(["--json", "data", "check", str(GOOD), "--suite", str(suite)], capsys)
    assert code == 1
    result = json.loads(out)
    zip_results = [e for e in result["expectations"] if e["column"] == "zip_code"]
    assert zip_results and not any(e["success"] for e in zip_results)
    assert any(e["exception"] and "zip_code" in e["exception"] for e in zip_results)


def test_expectation_that_raises_counts_as_failed(tmp_path: Path) -> None:
    # A regex on a numeric column makes GX raise inside the metric: it must not count as passed.
    suite = {
        "expectations": [
            {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "age", "regex": "x"}}
        ]
    }
    frame = pd.DataFrame({"age": [1.5, 2.5, 3.5]})
    result = check_data(frame, suite)
    assert result.passed is False
    assert result.expectations[0].success is False


def test_header_only_file_fails_closed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "empty.csv"
    data.write_text("customer_id,age,income,plan,churned\n")
    code, out, _ = run(["data", "check", str(data), "--suite", str(SUITE)], capsys)
    assert code == 1
    assert "the data has no rows" in out


def test_parquet_folder_is_read_as_one_table(tmp_path: Path) -> None:
    frame = pd.read_csv(GOOD)
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[:30].to_parquet(folder / "part-0.parquet")
    frame.iloc[30:].to_parquet(folder / "part-1.parquet")
    result = check_data(folder, SUITE)
    assert result.passed and result.rows == 60


def test_jsonl_data_passes(tmp_path: Path) -> None:
    data = tmp_path / "customers.jsonl"
    pd.read_csv(GOOD).to_json(data, orient="records", lines=True)
    suite = tmp_path / "s.yaml"
    suite.write_text(
        "columns:\n  age: {type: int, min: 18, max: 100}\n  plan: {allowed: [free, pro, team]}\n"
    )
    assert check_data(data, suite).passed


# -- parity with Great Expectations' own validation ---------------------------------------


def test_suite_written_by_gx_gives_the_same_counts_as_gx(tmp_path: Path) -> None:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    # GX 1.x suites look for the active context when expectations are added: create it first,
    # so this test does not depend on another one having made one.
    context = gx.get_context(mode="ephemeral")
    suite = gx.ExpectationSuite(name="parity")
    for expectation in [
        gxe.ExpectTableRowCountToBeBetween(min_value=10, max_value=100),
        gxe.ExpectColumnToExist(column="customer_id"),
        gxe.ExpectColumnValuesToNotBeNull(column="income"),
        gxe.ExpectColumnValuesToNotBeNull(column="income", mostly=0.8),
        gxe.ExpectColumnValuesToBeBetween(column="age", min_value=18, max_value=100),
        gxe.ExpectColumnValuesToBeBetween(column="income", min_value=25000, max_value=110000),
        gxe.ExpectColumnValuesToBeInSet(column="plan", value_set=["free", "pro"]),
        gxe.ExpectColumnValuesToBeUnique(column="customer_id"),
        gxe.ExpectColumnValuesToMatchRegex(column="customer_id", regex="^C[0-9]{6}$"),
        gxe.ExpectColumnValuesToBeInTypeList(column="age", type_list=["int64"]),
        gxe.ExpectColumnMeanToBeBetween(column="age", min_value=20, max_value=40),
        gxe.ExpectColumnValuesToNotBeNull(column="no_such_column"),
    ]:
        suite.add_expectation(expectation)
    suite_file = tmp_path / "parity.json"
    suite_file.write_text(json.dumps(suite.to_json_dict(), indent=2))

    frame = pd.read_csv(BAD)
    batch = (
        context.data_sources.add_pandas("p")
        .add_dataframe_asset("a")
        .add_batch_definition_whole_dataframe("b")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    reference = batch.validate(suite, result_format="SUMMARY")
    expected = {}
    for item in reference.results:
        kwargs = {k: v for k, v in item.expectation_config.kwargs.items() if k != "batch_id"}
        key = item.expectation_config.type + json.dumps(kwargs, sort_keys=True)
        expected[key] = (bool(item.success), item.result.get("unexpected_count"))

    result = check_data(BAD, suite_file)
    assert result.evaluated == len(expected) == 12
    got = {}
    for outcome in result.expectations:
        key = outcome.type + json.dumps(outcome.kwargs, sort_keys=True)
        got[key] = (outcome.success, outcome.unexpected_count)
    assert got == expected
    assert sum(1 for ok, _ in got.values() if not ok) >= 5  # the comparison covers failures too


# -- suites ---------------------------------------------------------------------------------


def test_compact_suite_compiles_to_gx_expectations() -> None:
    suite = load_suite(SUITE)
    types = [(e.type, e.column) for e in suite.expectations]
    assert ("expect_table_row_count_to_be_between", None) in types
    assert types.count(("expect_column_to_exist", "age")) == 1  # required and described: once
    assert ("expect_column_values_to_match_regex", "customer_id") in types
    null_share = next(
        e
        for e in suite.expectations
        if e.type == "expect_column_values_to_not_be_null" and e.column == "income"
    )
    assert null_share.kwargs["mostly"] == pytest.approx(0.8)


def test_gx_0x_suite_loads() -> None:
    raw = {
        "expectation_suite_name": "old",
        "expectations": [{"expectation_type": "expect_column_to_exist", "kwargs": {"column": "age"}}],
    }
    suite = load_suite(raw)
    assert suite.name == "old" and suite.expectations[0].type == "expect_column_to_exist"


# -- bad input ------------------------------------------------------------------------------

GOOD_SUITE_TEXT = SUITE.read_text()


def _write(tmp_path: Path, name: str, content: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


BAD_DATA = {
    "zero-bytes": ("data.csv", b"", "is empty (0 bytes)"),
    "missing-file": (None, None, "does not exist"),
    "non-utf8-csv": ("data.csv", "customer_id,plan\nC100001,caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "parquet-named-csv": ("data.csv", "PARQUET", "holds Parquet data"),
    "csv-named-parquet": ("data.parquet", b"a,b\n1,2\n", "not a Parquet file"),
    "truncated-parquet": ("data.parquet", "TRUNCATED", "truncated Parquet"),
    "gzip-named-csv": ("data.csv", gzip.compress(b"a,b\n1,2\n"), "binary"),
    "unknown-extension": ("data.xlsx", b"a,b\n1,2\n", "unknown table format"),
    "ragged-csv": ("data.csv", b"a,b\n1,2\n3,4,5\n", "cannot be read as CSV"),
    "mixed-types-jsonl": ("data.jsonl", b'{"age": 1}\n{"age": "old"}\n', "mixes types"),
}


@pytest.mark.parametrize("case", list(BAD_DATA), ids=list(BAD_DATA))
def test_bad_data_is_a_one_line_input_error(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, content, message = BAD_DATA[case]
    if name is None:
        path = tmp_path / "nothing.csv"
    elif content == "PARQUET":
        path = tmp_path / name
        pd.DataFrame({"a": [1, 2]}).to_parquet(path)
    elif content == "TRUNCATED":
        full = tmp_path / "full.parquet"
        pd.DataFrame({"a": range(100)}).to_parquet(full)
        path = _write(tmp_path, name, full.read_bytes()[:-20])
    else:
        path = _write(tmp_path, name, content)
    code, out, err = run(["data", "check", str(path), "--suite", str(SUITE)], capsys)
    assert code == 2, out + err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


BAD_SUITES = {
    "not-json": ("suite.json", "{not json", "is not valid JSON"),
    "json-list": ("suite.json", "[1, 2]", "not an expectation suite"),
    "json-not-a-suite": ("suite.json", '{"name": "x"}', "not an expectation suite"),
    "unknown-type": (
        "suite.json",
        '{"expectations": [{"type": "expect_column_values_to_be_purple", "kwargs": {"column": "age"}}]}',
        "unknown type 'expect_column_values_to_be_purple'",
    ),
    "bad-kwargs": (
        "suite.json",
        '{"expectations": [{"type": "expect_column_values_to_be_between", "kwargs": {"colum": "age"}}]}',
        "invalid arguments",
    ),
    "empty-suite": ("suite.json", '{"expectations": []}', "has no expectations"),
    "zero-bytes": ("suite.json", "", "is empty"),
    "bad-yaml": ("suite.yaml", "columns: [unclosed", "not valid YAML"),
    "unknown-compact-key": ("suite.yaml", "columns:\n  age: {minimum: 3}\n", "unknown key 'minimum'"),
    "unknown-compact-type": ("suite.yaml", "columns:\n  age: {type: integer}\n", "type 'integer' is unknown"),
    "bad-regex": ("suite.yaml", "columns:\n  age: {regex: '('}\n", "not a valid regular expression"),
    "min-above-max": ("suite.yaml", "columns:\n  age: {min: 5, max: 1}\n", "above max"),
    "wrong-extension": ("suite.txt", "columns: {}", "use a .json suite"),
}


@pytest.mark.parametrize("case", list(BAD_SUITES), ids=list(BAD_SUITES))
def test_bad_suite_is_a_one_line_input_error(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, content, message = BAD_SUITES[case]
    suite = _write(tmp_path, name, content)
    code, out, err = run(["data", "check", str(GOOD), "--suite", str(suite)], capsys)
    assert code == 2, out + err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_injection_looking_values_are_plain_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["data", "check", "$(touch pwned); x.csv", "--suite", str(SUITE)], capsys)
    assert code == 2 and "does not exist" in err
    assert not Path("pwned").exists()


# -- profile --------------------------------------------------------------------------------


def test_profile_is_deterministic_and_passes_its_own_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "suite.yaml"
    assert run(["data", "profile", str(GOOD), "-o", str(first)], capsys)[0] == 0
    written = first.read_bytes()
    assert run(["data", "profile", str(GOOD), "-o", str(first)], capsys)[0] == 0
    assert first.read_bytes() == written
    text = first.read_text()
    assert "allowed:\n    - free\n    - pro\n    - team" in text
    assert check_data(GOOD, first).passed
    # the profile catches the bad rows it never saw
    bad = check_data(BAD, first)
    assert not bad.passed
    assert {f.column for f in bad.failures} >= {"age", "plan"}


def test_profile_as_gx_json_runs_in_gx(tmp_path: Path) -> None:
    target = tmp_path / "suite.json"
    write_profile(profile_data(GOOD, margin=0.0), target)
    raw = json.loads(target.read_text())
    assert raw["expectations"] and all(e["type"].startswith("expect_") for e in raw["expectations"])
    assert check_data(GOOD, target).passed  # margin 0: the bounds still hold the data


def test_profile_content() -> None:
    frame = pd.DataFrame(
        {
            "n": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "x": [0.5, 1.5, None, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5],
            "s": ["a", "b"] * 5,
        }
    )
    profile = profile_data(frame, max_categories=5, margin=0.1, row_margin=0.5)
    assert profile["table"]["rows"] == {"min": 5, "max": 15}
    assert profile["columns"]["n"] == {"type": "int", "nullable": False, "min": 0, "max": 11, "unique": True}
    # one null in ten rows: the share with its margin, three standard errors of a share on ten
    # rows, and one row's worth
    slack = 0.1 * 1.1 + 3 * (0.1 * 0.9 / 10) ** 0.5 + 1 / 10
    assert profile["columns"]["x"]["max_null_share"] == pytest.approx(slack, abs=1e-6)
    assert profile["columns"]["x"]["min"] == pytest.approx(0.0) and profile["columns"]["x"][
        "max"
    ] == pytest.approx(9.3)
    assert profile["columns"]["s"]["allowed"] == ["a", "b"]


def test_profile_bad_output_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["data", "profile", str(GOOD), "-o", str(tmp_path / "suite.txt")], capsys)
    assert code == 2 and "use .yaml" in err


def test_compact_suite_errors_name_the_place() -> None:
    with pytest.raises(ConfigError, match=r"columns\.age\.max_null_share"):
        load_suite({"columns": {"age": {"max_null_share": 2}}})
