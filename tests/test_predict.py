"""`mlci predict`: batch scoring on pandas in chunks and on Spark, against the model in-process.

Real models of the conformance matrix (a scikit-learn pipeline over text with NaN, XGBoost and
LightGBM on pandas categories, a ridge regressor, a scikit-learn pipeline exported to ONNX), real
Parquet files, and a real local Spark (the session fixture, reused by the in-process CLI runs).
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlci_lib.cli import main
from mlci_lib.models import load_model, save_model
from mlci_lib.predict.columns import output_columns
from mlci_lib.predict.output import SIDECAR, read_metadata
from mlci_lib.runner import CiRunner
from tests.helpers.components import REPO_ROOT
from tests.test_conformance import KINDS, TARGET, table

#: One model per framework and shape of output: binary over text with NaN, binary on categories,
#: multiclass, regression, and an ONNX file.
PREDICT_KINDS = [
    "logistic-regression",
    "xgboost-classifier",
    "lightgbm-classifier",
    "ridge",
    "sklearn-pipeline-as-onnx",
]
ROWS = 1500
ROW_GROUP = 400


def run(argv: list[str], tmp_path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {
        "MLCI_OUTPUT_FILE": str(tmp_path / "outputs.txt"),
        "MLCI_SUMMARY_FILE": str(tmp_path / "summary.md"),
    }
    code = main(argv, runner=CiRunner(env, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each kind trained once: its model path, and its evaluation rows (with ids) as Parquet."""
    folder = tmp_path_factory.mktemp("predict")
    train, evaluation = table(600, 0), table(ROWS, 1)
    built: dict[str, Any] = {}
    for kind in (k for k in KINDS if k.id in PREDICT_KINDS):
        estimator = kind.build()
        features = kind.features(train)
        estimator.fit(features, train[TARGET[kind.task]])
        where = folder / kind.id
        where.mkdir()
        if kind.export is not None:
            path = kind.export(estimator, features, train, where)
        else:
            path = save_model(estimator, where / "model", sample_input=features.head(20), name=kind.id)
        rows = kind.features(evaluation).assign(id=evaluation["id"].to_numpy())
        data = where / "rows.parquet"
        rows.to_parquet(data, row_group_size=ROW_GROUP)
        built[kind.id] = {"model": Path(path), "data": data, "rows": rows, "native": estimator}
    return built


def _expected(model: Path, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None, Any]:
    loaded = load_model(model)
    predictions, probabilities = loaded.predict(rows.drop(columns=["id"]))
    return np.asarray(predictions), probabilities, loaded


def _assert_scores(output: pd.DataFrame, model: Path, rows: pd.DataFrame) -> None:
    predictions, probabilities, loaded = _expected(model, rows)
    assert output["id"].tolist() == rows["id"].tolist()
    if predictions.dtype.kind == "f":
        np.testing.assert_allclose(output["prediction"].to_numpy(), predictions.astype(float), rtol=1e-12)
    else:
        assert [str(v) for v in output["prediction"]] == [str(v) for v in predictions]
    if probabilities is None:
        assert list(output.columns) == ["id", "prediction"]
        return
    names = [name for name, _ in output_columns("id", loaded.classes).probabilities]
    assert list(output.columns) == ["id", "prediction", *names]
    np.testing.assert_allclose(output[names].to_numpy(), probabilities, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", PREDICT_KINDS)
@pytest.mark.slow
def test_chunked_predictions_equal_the_model_in_process(
    kind: str, models: dict[str, Any], tmp_path: Path
) -> None:
    case = models[kind]
    output, result = tmp_path / "scores.parquet", tmp_path / "result.json"
    argv = ["predict", str(case["model"]), "--data", str(case["data"]), "--output", str(output)]
    code, out, err = run([*argv, "--chunk-rows", "150", "--result-file", str(result)], tmp_path)
    assert code == 0, out + err
    scored = pd.read_parquet(output)
    _assert_scores(scored, case["model"], case["rows"])

    # The file says which model and which mlci wrote it; the result what the run did.
    loaded = load_model(case["model"])
    meta = read_metadata(output)
    assert meta["model"]["digest"] == loaded.digest and meta["mlci_version"]
    assert meta["model"]["runtime"] == ("onnx" if kind.endswith("onnx") else "native")
    record = json.loads(result.read_text())
    assert record["schema"] == "mlci.predict-result" and record["passed"] is True
    assert record["rows"] == ROWS and record["model"]["digest"] == loaded.digest
    assert record["seconds"] > 0 and record["largest_chunk_rows"] <= 150
    # One row group per chunk, and no chunk beyond --chunk-rows: the input was read in batches.
    parquet = pq.ParquetFile(output)
    assert parquet.metadata.num_row_groups == record["chunks"] >= math.ceil(ROWS / 150)
    sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)]
    assert max(sizes) <= 150 and sum(sizes) == ROWS


def test_csv_and_json_lines_are_read_in_chunks_too(models: dict[str, Any], tmp_path: Path) -> None:
    case = models["logistic-regression"]
    rows = case["rows"]
    csv, jsonl = tmp_path / "rows.csv", tmp_path / "rows.jsonl"
    rows.to_csv(csv, index=False)
    rows.to_json(jsonl, orient="records", lines=True)
    for source in (csv, jsonl):
        output = tmp_path / f"{source.suffix[1:]}.parquet"
        code, out, err = run(
            [
                "predict",
                str(case["model"]),
                "--data",
                str(source),
                "--output",
                str(output),
                "--chunk-rows",
                "400",
            ],
            tmp_path,
        )
        assert code == 0, out + err
        assert pq.ParquetFile(output).metadata.num_row_groups == math.ceil(ROWS / 400)
        from mlci_lib.tables import read_table

        _assert_scores(pd.read_parquet(output), case["model"], read_table(source))


def test_a_parquet_folder_is_read_file_by_file(models: dict[str, Any], tmp_path: Path) -> None:
    case = models["xgboost-classifier"]
    rows = case["rows"]
    folder = tmp_path / "rows"
    folder.mkdir()
    rows.iloc[:1000].to_parquet(folder / "part-0.parquet")
    rows.iloc[1000:].to_parquet(folder / "part-1.parquet")
    output = tmp_path / "scores.parquet"
    argv = ["predict", str(case["model"]), "--data", str(folder), "--output", str(output)]
    code, out, err = run([*argv, "--chunk-rows", "600"], tmp_path)
    assert code == 0, out + err
    sizes = [pq.ParquetFile(output).metadata.row_group(i).num_rows for i in range(3)]
    assert sizes == [600, 400, 500]  # chunks end where a file ends
    _assert_scores(pd.read_parquet(output), case["model"], rows)
    rows.iloc[:10].assign(amount=rows["amount"].iloc[:10].astype(str)).to_parquet(folder / "part-2.parquet")
    code, _, err = run(argv, tmp_path)
    assert (
        code == 2 and "column 'amount' is double in part-0.parquet and large_string in part-2.parquet" in err
    ), err
    assert not output.exists()


def test_onnx_runtime_scores_like_the_native_model(models: dict[str, Any], tmp_path: Path) -> None:
    case = models["sklearn-pipeline-as-onnx"]
    native = save_model(
        case["native"], tmp_path / "native", sample_input=case["rows"].drop(columns=["id"]).head(20)
    )
    output = tmp_path / "scores.parquet"
    code, out, err = run(
        ["predict", str(native), "--data", str(case["data"]), "--output", str(output), "--runtime", "onnx"],
        tmp_path,
    )
    assert code == 0, out + err
    scored = pd.read_parquet(output)
    predictions, probabilities, _ = _expected(native, case["rows"])
    assert (scored["prediction"].to_numpy() == predictions).all()
    np.testing.assert_allclose(scored[["probability_0", "probability_1"]], probabilities, atol=1e-4)
    assert read_metadata(output)["model"]["runtime"] == "onnx"


@pytest.mark.slow
def test_memory_stays_bounded_by_the_chunk_not_the_table(tmp_path: Path) -> None:
    """Arrow's peak allocation while scoring 300,000 rows in chunks stays a fraction of the table."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    n = 300_000
    frame = pd.DataFrame({"id": np.arange(n), **{f"x{i}": rng.normal(size=n) for i in range(10)}})
    data = tmp_path / "big.parquet"
    frame.to_parquet(data, row_group_size=20_000)
    features = frame.drop(columns=["id"]).head(500)
    model = save_model(Ridge().fit(features, rng.normal(size=500)), tmp_path / "model", sample_input=features)
    table_bytes = pq.read_table(data).nbytes
    script = textwrap.dedent(
        f"""
        import pyarrow as pa
        from mlci_lib.cli import main
        code = main(["predict", {str(model)!r}, "--data", {str(data)!r},
                     "--output", {str(tmp_path / "o.parquet")!r}, "--chunk-rows", "5000"])
        print(code, pa.default_memory_pool().max_memory())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    code, peak = done.stdout.strip().splitlines()[-1].split()
    assert code == "0", done.stdout + done.stderr
    assert int(peak) < table_bytes / 2, (int(peak), table_bytes)
    assert pq.ParquetFile(tmp_path / "o.parquet").metadata.num_row_groups == n // 5000


def test_the_action_inputs_reach_the_command_and_its_outputs_come_back(
    models: dict[str, Any], tmp_path: Path
) -> None:
    case = models["ridge"]
    outputs = tmp_path / "outputs.txt"
    env = {
        "MLCI_INPUT_MODEL": str(case["model"]),
        "MLCI_INPUT_DATA": str(case["data"]),
        "MLCI_INPUT_OUTPUT": str(tmp_path / "scores.parquet"),
        "MLCI_INPUT_CHUNK_ROWS": "500",
        "MLCI_INPUT_ALLOW_PICKLE": "false",
        "MLCI_INPUT_SPARK_MASTER": "",
        "MLCI_OUTPUT_FILE": str(outputs),
    }
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        code = main(["--from-env", "predict"], runner=CiRunner(env, stdout=out, stderr=err))
    assert code == 0, out.getvalue() + err.getvalue()
    text = outputs.read_text()
    assert f"\n{ROWS}\n" in text and load_model(case["model"]).digest in text
    written = pq.ParquetFile(tmp_path / "scores.parquet").metadata
    sizes = [written.row_group(i).num_rows for i in range(written.num_row_groups)]
    assert max(sizes) <= 500 and sum(sizes) == ROWS


def test_class_names_become_safe_distinct_column_names() -> None:
    columns = output_columns("id", ["a b", "a/b", "Yes", "yes", 3, None])
    assert [name for name, _ in columns.probabilities] == [
        "probability_a_b_0",
        "probability_a_b_1",
        "probability_Yes_2",
        "probability_yes_3",
        "probability_3",
        "probability_None",
    ]
    from mlci_lib.errors import InputError

    with pytest.raises(InputError, match="collides"):
        output_columns("prediction", [0, 1])
    with pytest.raises(InputError, match="collides"):
        output_columns("Probability_1", [0, 1])


# -- bad input: exit 2, one line, no output --------------------------------------------------------


def _bad_cases(case: dict[str, Any], tmp: Path) -> dict[str, tuple[list[str], str]]:
    model, data = str(case["model"]), str(case["data"])
    unknown = tmp / "model.bin"
    unknown.write_bytes(b"not a model at all\n" * 10)
    truncated = tmp / "truncated.skops"
    whole = (Path(model) / "model.skops").read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    no_id = tmp / "no-id.parquet"
    case["rows"].drop(columns=["id"]).to_parquet(no_id)
    no_feature = tmp / "no-feature.parquet"
    case["rows"].drop(columns=["amount"]).to_parquet(no_feature)
    wrong_type = tmp / "wrong-type.parquet"
    case["rows"].assign(amount=["lots"] * ROWS).to_parquet(wrong_type)
    folder = tmp / "a-folder.parquet"
    folder.mkdir()
    a_file = tmp / "a-file"
    a_file.write_text("x")
    out = str(tmp / "out.parquet")
    return {
        "unknown-model-kind": (
            ["predict", str(unknown), "--data", data, "--output", out],
            "not a model file",
        ),
        "truncated-model": (["predict", str(truncated), "--data", data, "--output", out], "truncated"),
        "missing-id-column": (["predict", model, "--data", str(no_id), "--output", out], "--id-column"),
        "missing-feature": (["predict", model, "--data", str(no_feature), "--output", out], "'amount'"),
        "wrong-type": (
            ["predict", model, "--data", str(wrong_type), "--output", out],
            "'amount' must be numeric",
        ),
        "output-is-a-folder": (["predict", model, "--data", data, "--output", str(folder)], "is a folder"),
        "output-in-missing-folder": (
            ["predict", model, "--data", data, "--output", str(tmp / "nowhere" / "o.parquet")],
            "does not exist",
        ),
        "output-under-a-file": (
            ["predict", model, "--data", data, "--output", str(a_file / "o.parquet")],
            "not a folder",
        ),
        "output-not-parquet": (
            ["predict", model, "--data", data, "--output", str(tmp / "o.csv")],
            ".parquet",
        ),
        "output-is-the-input": (["predict", model, "--data", data, "--output", data], "is the input"),
        "chunk-rows-zero": (
            ["predict", model, "--data", data, "--output", out, "--chunk-rows", "0"],
            "--chunk-rows",
        ),
        "chunk-rows-too-many": (
            ["predict", model, "--data", data, "--output", out, "--chunk-rows", "100000000"],
            "--chunk-rows",
        ),
        "unknown-engine": (
            ["predict", model, "--data", data, "--output", out, "--engine", "dask"],
            "--engine",
        ),
        "spark-option-without-spark": (
            ["predict", model, "--data", data, "--output", out, "--spark-master", "local[2]"],
            "needs --engine spark",
        ),
        "missing-data": (
            ["predict", model, "--data", str(tmp / "none.parquet"), "--output", out],
            "does not exist",
        ),
    }


BAD = [
    "unknown-model-kind",
    "truncated-model",
    "missing-id-column",
    "missing-feature",
    "wrong-type",
    "output-is-a-folder",
    "output-in-missing-folder",
    "output-under-a-file",
    "output-not-parquet",
    "output-is-the-input",
    "chunk-rows-zero",
    "chunk-rows-too-many",
    "unknown-engine",
    "spark-option-without-spark",
    "missing-data",
]


@pytest.mark.parametrize("name", BAD)
@pytest.mark.slow
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    name: str, models: dict[str, Any], tmp_path: Path
) -> None:
    argv, expected = _bad_cases(models["logistic-regression"], tmp_path)[name]
    before = {p for p in tmp_path.rglob("*")}
    code, out, err = run(argv, tmp_path)
    assert code == 2, out + err
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line and "internal error" not in line, line
    assert expected in line, line
    written = {p for p in tmp_path.rglob("*")} - before
    assert not [p for p in written if p.suffix in (".parquet", ".tmp") or p.name.startswith(".")], written


@pytest.mark.slow
def test_a_failed_run_leaves_no_earlier_output_behind(models: dict[str, Any], tmp_path: Path) -> None:
    case = models["logistic-regression"]
    output, result = tmp_path / "scores.parquet", tmp_path / "result.json"
    argv = ["predict", str(case["model"]), "--output", str(output), "--result-file", str(result)]
    assert run([*argv, "--data", str(case["data"])], tmp_path)[0] == 0
    assert output.is_file() and json.loads(result.read_text())["passed"] is True
    bad = tmp_path / "bad.parquet"
    case["rows"].assign(amount=["lots"] * ROWS).to_parquet(bad)
    code, _, err = run([*argv, "--data", str(bad)], tmp_path)
    assert code == 2, err
    assert not output.exists(), "an output of an earlier run stands for a run that failed"
    record = json.loads(result.read_text())
    assert record["passed"] is False and "must be numeric" in record["error"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_bad_value_past_the_first_chunk_stops_the_run_without_output(
    models: dict[str, Any], tmp_path: Path
) -> None:
    case = models["logistic-regression"]
    rows = _with_text_amount(case["rows"], 1200)
    data = tmp_path / "late.parquet"
    rows.to_parquet(data, row_group_size=ROW_GROUP)
    output = tmp_path / "scores.parquet"
    code, _, err = run(
        ["predict", str(case["model"]), "--data", str(data), "--output", str(output), "--chunk-rows", "300"],
        tmp_path,
    )
    assert code == 2 and "rows 1201-" in err and "must be numeric" in err, err
    assert not output.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _with_text_amount(rows: pd.DataFrame, bad_row: int) -> pd.DataFrame:
    """``amount`` written as text (which the signature still reads as numbers), one row not a number."""
    text = rows["amount"].map(lambda v: None if pd.isna(v) else repr(float(v))).astype(object)
    text.iloc[bad_row] = "lots"
    return rows.assign(amount=text)


# -- Spark -------------------------------------------------------------------------------------------


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize(
    "kind", ["logistic-regression", "xgboost-classifier", "lightgbm-classifier", "ridge"]
)
def test_spark_scores_what_the_pandas_engine_scores(
    kind: str, models: dict[str, Any], spark: object, tmp_path: Path
) -> None:
    case = models[kind]
    pandas_out, spark_out = tmp_path / "pandas.parquet", tmp_path / "spark"
    common = ["predict", str(case["model"]), "--data", str(case["data"]), "--chunk-rows", "250"]
    assert run([*common, "--output", str(pandas_out)], tmp_path)[0] == 0
    code, out, err = run(
        [*common, "--output", str(spark_out), "--engine", "spark", "--result-file", str(tmp_path / "r.json")],
        tmp_path,
    )
    assert code == 0, out + err
    on_spark = pd.read_parquet(spark_out).set_index("id").loc[case["rows"]["id"]].reset_index()
    on_pandas = pd.read_parquet(pandas_out)
    pd.testing.assert_frame_equal(on_spark, on_pandas, check_exact=False, rtol=1e-12)
    _assert_scores(on_spark, case["model"], case["rows"])
    meta = json.loads((spark_out / SIDECAR).read_text())
    assert meta["model"]["digest"] == load_model(case["model"]).digest and meta["rows"] == ROWS
    assert meta["engine"] == "spark" and json.loads((tmp_path / "r.json").read_text())["rows"] == ROWS


@pytest.mark.spark
@pytest.mark.slow
def test_spark_workers_reuse_the_model_but_not_the_last_run_s_columns(
    models: dict[str, Any], spark: object, tmp_path: Path
) -> None:
    case = models["lightgbm-classifier"]
    common = ["predict", str(case["model"]), "--data", str(case["data"]), "--engine", "spark"]
    for name, extra in (
        ("first", []),
        ("second", ["--prediction-column", "label", "--probability-prefix", "p_"]),
    ):
        code, out, err = run([*common, "--output", str(tmp_path / name), *extra], tmp_path)
        assert code == 0, out + err
    first = pd.read_parquet(tmp_path / "first").sort_values("id", ignore_index=True)
    second = pd.read_parquet(tmp_path / "second").sort_values("id", ignore_index=True)
    assert list(second.columns) == ["id", "label", "p_high", "p_low", "p_mid"]
    assert second["label"].tolist() == first["prediction"].tolist()


@pytest.mark.spark
@pytest.mark.slow
def test_spark_scores_an_onnx_conversion_and_an_onnx_file(
    models: dict[str, Any], spark: object, tmp_path: Path
) -> None:
    case = models["sklearn-pipeline-as-onnx"]
    native = save_model(
        case["native"], tmp_path / "native", sample_input=case["rows"].drop(columns=["id"]).head(20)
    )
    for name, model, extra in (("file", case["model"], []), ("converted", native, ["--runtime", "onnx"])):
        output = tmp_path / name
        code, out, err = run(
            [
                "predict",
                str(model),
                "--data",
                str(case["data"]),
                "--output",
                str(output),
                "--engine",
                "spark",
                *extra,
            ],
            tmp_path,
        )
        assert code == 0, out + err
        scored = pd.read_parquet(output).set_index("id").loc[case["rows"]["id"]].reset_index()
        predictions, probabilities, _ = _expected(Path(model), case["rows"])
        assert (scored["prediction"].to_numpy() == predictions).all()
        np.testing.assert_allclose(scored[["probability_0", "probability_1"]], probabilities, atol=1e-4)
        assert json.loads((output / SIDECAR).read_text())["model"]["runtime"] == "onnx"


@pytest.mark.spark
@pytest.mark.slow
def test_spark_bad_input_is_one_line_and_writes_nothing(
    models: dict[str, Any], spark: object, tmp_path: Path
) -> None:
    case = models["logistic-regression"]
    model, data = str(case["model"]), str(case["data"])
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    no_id = tmp_path / "no-id.parquet"
    case["rows"].drop(columns=["id"]).to_parquet(no_id)
    late = tmp_path / "late.parquet"
    rows = _with_text_amount(case["rows"], 1400)  # past the rows the driver checks first
    rows.to_parquet(late)
    out = str(tmp_path / "out")
    cases = [
        (["--data", data, "--output", str(a_file)], "is not a folder"),
        (["--data", data, "--output", str(foreign)], "mlci did not write"),
        (["--data", str(no_id), "--output", out], "--id-column"),
        (["--data", str(tmp_path / "none"), "--output", out], "does not exist"),
        (["--data", str(late), "--output", out], "must be numeric"),
        (["--data", data, "--output", out, "--spark-conf", "executor.memory=1g"], "--spark-conf"),
    ]
    for argv, expected in cases:
        code, _, err = run(["predict", model, "--engine", "spark", *argv], tmp_path)
        line = err.strip().splitlines()[-1] if err.strip() else ""
        assert code == 2 and expected in line and "internal error" not in line, err[-2000:]
        assert not Path(out).exists(), argv
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], argv
    assert a_file.read_text() == "x" and (foreign / "notes.txt").read_text() == "mine"


# -- the pipeline stage --------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_predict_stage_scores_the_pipeline_model(models: dict[str, Any], tmp_path: Path) -> None:
    from mlci_lib.pipeline import run_pipeline

    case = models["lightgbm-classifier"]
    import shutil

    shutil.copytree(case["model"], tmp_path / "model")
    shutil.copy(case["data"], tmp_path / "rows.parquet")
    (tmp_path / "mlci.yaml").write_text(
        "version: 1\nmodel:\n  path: model\n  name: scorer\n"
        "stages:\n  batch-predict:\n    data: rows.parquet\n    chunk-rows: 500\n"
    )
    verdict = run_pipeline(tmp_path / "mlci.yaml", environ={})
    assert verdict.passed, [s.message for s in verdict.stages]
    record = next(s for s in verdict.stages if s.name == "batch-predict")
    output = tmp_path / ".mlci" / "predictions.parquet"
    assert f"{ROWS:,} rows scored" in record.message
    _assert_scores(pd.read_parquet(output), case["model"], case["rows"])
    assert read_metadata(output)["model"]["name"] == "scorer"
    assert json.loads((tmp_path / ".mlci" / "batch-predict.json").read_text())["rows"] == ROWS


def test_batch_predict_stage_settings_are_checked_by_the_schema(tmp_path: Path) -> None:
    from mlci_lib.errors import ConfigError
    from mlci_lib.pipeline.config import load_config

    (tmp_path / "mlci.yaml").write_text(
        "version: 1\nstages:\n  batch-predict:\n    data: d.parquet\n    chunk-rows: 0\n"
    )
    with pytest.raises(ConfigError, match="chunk-rows"):
        load_config(tmp_path / "mlci.yaml", environ={})
    (tmp_path / "mlci.yaml").write_text(
        "version: 1\nstages:\n  batch-predict:\n    data: d.parquet\n    engine: dask\n"
    )
    with pytest.raises(ConfigError, match="engine"):
        load_config(tmp_path / "mlci.yaml", environ={})
