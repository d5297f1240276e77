"""mlci model push | promote | rollback | baseline | tag against MLflow's embedded SQLite store.

Real MLflow, real skops files, real pickles; the server-backed cases (concurrency, faults) are in
test_registry_server.py.
"""

from __future__ import annotations

import json
import operator
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mlci_lib.cli import main
from mlci_lib.errors import CheckFailed, UnsafeModelError
from mlci_lib.fingerprint import data_fingerprint
from mlci_lib.gitcontext import GitContext
from mlci_lib.models import save_model
from mlci_lib.registry import (
    baseline_predictions,
    promote_model,
    push_model,
    rollback_model,
    tag_model_version,
)
from mlci_lib.runner import CiRunner

pytestmark = pytest.mark.mlflow


def make_model(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.random((80, 3)), columns=["a", "b", "c"])
    label = (frame["a"] + 0.3 * rng.random(80) > 0.6).astype(int)
    save_model(LogisticRegression(C=1.0 + seed).fit(frame, label), folder, sample_input=frame.head())
    return folder


def eval_data(path: Path) -> Path:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.random((40, 3)), columns=["a", "b", "c"])
    frame.insert(0, "id", [f"r{i}" for i in range(40)])
    frame["approved"] = (frame["a"] > 0.6).astype(int)
    frame["region"] = np.where(frame["b"] > 0.5, "north", "south")
    frame.to_csv(path, index=False)
    return path


def write_verdict(
    path: Path,
    model: Path,
    passed: bool = True,
    data: list[Path] | None = None,
    seed: int = 7,
    trusted_types: tuple[str, ...] = (),
    features: int = 3,
) -> Path:
    """A real gate verdict of ``model``: its predictions on evaluation data, gated by mlci gate."""
    from mlci_lib.gate import run_gate
    from mlci_lib.models import load_model

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.random((60, features)), columns=["a", "b", "c"][:features])
    predicted, proba = load_model(model, trusted_types=trusted_types).predict(frame)
    predictions = path.with_name(f"{path.stem}-predictions.csv")
    pd.DataFrame(
        {"label": (frame["a"] > 0.6).astype(int), "prediction": predicted, "score": proba[:, 1]}
    ).to_csv(predictions, index=False)
    # min=0 always passes, max=0 fails for any model that gets one row right.
    rule = "accuracy min=0" if passed else "accuracy max=0"
    fingerprint = data_fingerprint(data) if data else None
    verdict = run_gate(
        predictions, rule=[rule, "roc_auc min=0"], resamples=0, model=model, data_fingerprint=fingerprint
    )
    assert verdict.passed is passed
    path.write_text(json.dumps(verdict.to_dict()))
    return path


def git(commit: str) -> GitContext:
    return GitContext(
        commit=commit, ref="refs/heads/main", branch="main", default_branch="main",
        repository="acme/loans", server_url="https://github.com",
        run_url="https://github.com/acme/loans/actions/runs/42",
    )  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module (creating MLflow's tables costs seconds)."""
    folder = tmp_path_factory.mktemp("store")
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("work")
    return {
        "eval": eval_data(folder / "eval.csv"),
        "model": make_model(folder / "model"),
        "model2": make_model(folder / "model2", seed=1),
        "pass": write_verdict(folder / "pass.json", folder / "model"),
        "pass2": write_verdict(folder / "pass2.json", folder / "model2"),
        "pass_data": write_verdict(folder / "pass-data.json", folder / "model", data=[folder / "eval.csv"]),
        "fail": write_verdict(folder / "fail.json", folder / "model", passed=False),
    }


def client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


# -- the embedded default ---------------------------------------------------------------------------


def test_push_to_the_embedded_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_model(tmp_path / "model")
    write_verdict(tmp_path / "verdict.json", tmp_path / "model")
    outputs = tmp_path / "outputs.txt"
    monkeypatch.setenv("MLCI_OUTPUT_FILE", str(outputs))
    code = main(["model", "push", "model", "--name", "default-store", "--verdict", "verdict.json"])
    assert code == 0
    database = tmp_path / ".mlci" / "mlflow.db"
    assert database.is_file()
    assert (tmp_path / ".mlci" / "artifacts").is_dir()
    assert not (tmp_path / "mlruns").exists()
    text = outputs.read_text()
    assert "models:/default-store/1" in text and "created<<" in text
    versions = client(f"sqlite:///{database}").search_model_versions("name = 'default-store'")
    assert [str(v.version) for v in versions] == ["1"]


def test_a_push_leaves_no_registry_behind_for_the_next_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow's URI setters export MLFLOW_TRACKING_URI/MLFLOW_REGISTRY_URI. Left set after a push,
    # a later client (or a workflow this process starts) went to that push's registry instead of
    # the one it named, and found none of its models.
    from mlflow.tracking._model_registry import utils as registry_utils

    monkeypatch.chdir(tmp_path)
    make_model(tmp_path / "model")
    write_verdict(tmp_path / "verdict.json", tmp_path / "model")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9/caller")
    argv = ["model", "push", "model", "--name", "left", "--verdict", "verdict.json"]
    assert main([*argv, "--tracking-uri", f"sqlite:///{tmp_path / 'first.db'}"]) == 0
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:9/caller"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert registry_utils._resolve_registry_uri(None, other) == other


def test_push_to_a_relative_sqlite_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # sqlite:///mlflow.db, as in MLflow's own examples: the database and artifacts beside it, here.
    monkeypatch.chdir(tmp_path)
    make_model(tmp_path / "model")
    argv = ["model", "push", "model", "--name", "relative", "--no-require-verdict"]
    assert main([*argv, "--tracking-uri", "sqlite:///mlflow.db"]) == 0
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "artifacts").is_dir()
    versions = client(f"sqlite:///{tmp_path / 'mlflow.db'}").search_model_versions("name = 'relative'")
    assert [str(v.version) for v in versions] == ["1"]


# -- push -----------------------------------------------------------------------------------------


def test_push_records_provenance_and_is_idempotent(store: str, work: dict[str, Path]) -> None:
    data = data_fingerprint([work["eval"]])
    first = push_model(
        work["model"], "loans", verdict=work["pass_data"], tracking_uri=store, git=git("a" * 40),
        data_fingerprint=data, pip_requirements=["scikit-learn", "skops"],
    )  # fmt: skip
    assert first.created and first.version == "1"
    again = push_model(
        work["model"], "loans", verdict=work["pass_data"], tracking_uri=store, git=git("a" * 40)
    )
    assert (again.version, again.created, again.run_id) == ("1", False, first.run_id)

    mv = client(store).get_model_version("loans", "1")
    assert mv.tags["mlci.git.commit"] == "a" * 40
    assert mv.tags["mlci.git.ref"] == "refs/heads/main"
    assert mv.tags["mlci.run_url"] == "https://github.com/acme/loans/actions/runs/42"
    assert mv.tags["mlci.data.fingerprint"] == data
    assert mv.tags["mlci.model.digest"] == first.digest and first.digest.startswith("sha256:")
    assert mv.tags["mlci.verdict.passed"] == "true"
    assert mv.tags["mlci.verdict.summary"] == "mlci.gate-verdict: passed; accuracy min=pass, roc_auc min=pass"
    assert mv.tags["mlci.push_key"] == first.push_key
    run = client(store).get_run(first.run_id)
    recorded = json.loads(work["pass_data"].read_text())
    assert run.data.metrics == recorded["candidate"]["metrics"] and set(run.data.metrics) == {
        "accuracy",
        "roc_auc",
    }
    assert run.info.status == "FINISHED"
    verdict_file = client(store).download_artifacts(first.run_id, "mlci/verdict.json")
    assert json.loads(Path(verdict_file).read_text())["passed"] is True

    # The same content from another commit is another version.
    other = push_model(work["model"], "loans", verdict=work["pass"], tracking_uri=store, git=git("b" * 40))
    assert (other.version, other.created) == ("2", True)


def test_logged_model_is_skops_with_explicit_requirements(store: str, work: dict[str, Path]) -> None:
    import mlflow.artifacts
    import yaml

    result = push_model(
        work["model2"], "loans-files", verdict=work["pass2"], tracking_uri=store, git=git("c" * 40),
        pip_requirements=["scikit-learn==1.5.2", "skops>=0.10"],
    )  # fmt: skip
    # The registry is named here: a models:/ URI alone resolves against the process's registry.
    source = client(store).get_model_version_download_uri("loans-files", result.version)
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=store))
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "skops"
    assert json.loads(mlmodel["signature"]["inputs"])[0] == {"type": "double", "name": "a", "required": True}
    requirements = (folder / "requirements.txt").read_text().split()
    assert "scikit-learn==1.5.2" in requirements and "skops>=0.10" in requirements
    assert not list(folder.glob("*.pkl"))


def test_failed_or_missing_verdict_refuses_before_contacting_the_registry(work: dict[str, Path]) -> None:
    unreachable = "http://127.0.0.1:9"  # nothing listens there: a contact would be a ServiceError
    with pytest.raises(CheckFailed, match=r"did not pass \(mlci.gate-verdict: failed; accuracy max=fail"):
        push_model(work["model"], "loans", verdict=work["fail"], tracking_uri=unreachable)
    with pytest.raises(CheckFailed, match="no verdict was given"):
        push_model(work["model"], "loans", tracking_uri=unreachable)


def test_push_without_requiring_a_verdict_cannot_be_promoted(store: str, work: dict[str, Path]) -> None:
    result = push_model(
        work["model"], "unverified", require_verdict=False, tracking_uri=store, git=git("e" * 40)
    )
    assert result.created and result.verdict_passed is False
    with pytest.raises(CheckFailed, match="its verdict did not pass"):
        promote_model("unverified", result.version, tracking_uri=store)


# -- promote, rollback, tag, baseline --------------------------------------------------------------


def test_promote_records_previous_holder_and_rollback_walks_back(store: str, work: dict[str, Path]) -> None:
    v1 = push_model(work["model"], "promo", verdict=work["pass"], tracking_uri=store, git=git("1" * 40))
    v2 = push_model(work["model2"], "promo", verdict=work["pass2"], tracking_uri=store, git=git("2" * 40))
    first = promote_model("promo", v1.version, tracking_uri=store)
    assert (first.action, first.previous_version) == ("promoted", None)
    second = promote_model("promo", v2.version, tracking_uri=store)
    assert (second.version, second.previous_version, second.history) == ("2", "1", ("1",))
    assert promote_model("promo", v2.version, tracking_uri=store).action == "unchanged"

    back = rollback_model("promo", tracking_uri=store)
    assert (back.version, back.previous_version, back.action) == ("1", "2", "rolled-back")
    assert str(client(store).get_model_version_by_alias("promo", "champion").version) == "1"
    with pytest.raises(CheckFailed, match="no earlier holder is recorded"):
        rollback_model("promo", tracking_uri=store)


def test_tag_records_the_image_digest(store: str, work: dict[str, Path]) -> None:
    result = push_model(work["model"], "tagged", verdict=work["pass"], tracking_uri=store, git=git("3" * 40))
    digest = "sha256:" + "f" * 64
    code = main(["model", "tag", "tagged", "--version", result.version, "--image-digest", digest,
                 "--tracking-uri", store])  # fmt: skip
    assert code == 0
    assert client(store).get_model_version("tagged", result.version).tags["mlci.image.digest"] == digest
    with pytest.raises(Exception, match="has no version 99"):
        tag_model_version("tagged", 99, {"x": "y"}, tracking_uri=store)


def test_baseline_writes_champion_predictions_in_the_shared_format(
    store: str, work: dict[str, Path], tmp_path: Path
) -> None:
    pushed = push_model(work["model"], "base", verdict=work["pass"], tracking_uri=store, git=git("4" * 40))
    promote_model("base", pushed.version, tracking_uri=store)
    out = tmp_path / "champion.parquet"
    result = baseline_predictions(
        "base@champion", work["eval"], out, label_column="approved", keep_columns=["region"],
        tracking_uri=store,
    )  # fmt: skip
    assert result.found and result.version == pushed.version and result.rows == 40
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["id", "label", "prediction", "score", "region"]
    # The champion's predictions are the saved model's own, row for row.
    from mlci_lib.models import load_model

    local = load_model(work["model"])
    data = pd.read_csv(work["eval"])
    predicted, proba = local.predict(data)
    assert (frame["prediction"].to_numpy() == predicted).all()
    assert np.allclose(frame["score"].to_numpy(), proba[:, 1], atol=1e-12)
    assert (frame["label"] == data["approved"]).all() and (frame["id"] == data["id"]).all()

    missing = baseline_predictions(
        "base@challenger", work["eval"], tmp_path / "none.csv", label_column="approved",
        tracking_uri=store, missing_ok=True,
    )  # fmt: skip
    assert not missing.found and not (tmp_path / "none.csv").exists()


# -- safety: pickle and skops types -----------------------------------------------------------------


class _Marker:
    """Unpickling this creates a file: the proof that loading a pickle runs code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def test_crafted_pickle_is_refused_and_runs_nothing(
    tmp_path: Path, store: str, work: dict[str, Path]
) -> None:
    control_marker = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(_Marker(control_marker)))
    assert control_marker.exists(), "the crafted payload must be live, or this test proves nothing"

    marker = tmp_path / "marker"
    payload = pickle.dumps(_Marker(marker), protocol=4)
    (tmp_path / "model.pkl").write_bytes(payload)
    (tmp_path / "model.joblib").write_bytes(payload)
    mlflow_folder = tmp_path / "mlflow-model"
    mlflow_folder.mkdir()
    (mlflow_folder / "model.pkl").write_bytes(payload)
    (mlflow_folder / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: cloudpickle\n"
    )
    for candidate in ("model.pkl", "model.joblib", "mlflow-model"):
        code = main(["model", "push", str(tmp_path / candidate), "--name", "evil", "--verdict",
                     str(work["pass"]), "--tracking-uri", store])  # fmt: skip
        assert code == 2, candidate
        with pytest.raises(UnsafeModelError, match=r"pickle|cloudpickle"):
            push_model(tmp_path / candidate, "evil", verdict=work["pass"], tracking_uri=store)
    assert not marker.exists()


def test_skops_type_outside_the_allowed_list_is_refused(
    tmp_path: Path, store: str, work: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import skops.io as sio

    model_file = tmp_path / "model.skops"
    rng = np.random.default_rng(3)
    features = rng.random((40, 2))
    estimator = make_pipeline(FunctionTransformer(func=operator.pos), LogisticRegression())
    sio.dump(estimator.fit(features, (features[:, 0] > 0.5).astype(int)), model_file)
    code = main(["model", "push", str(model_file), "--name", "odd", "--verdict", str(work["pass"]),
                 "--tracking-uri", store])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "needs types outside the allowed list: _operator.pos" in err and "--trust-type" in err
    # Trusting the one type explicitly lets it through (so the refusal above is about that type).
    verdict = write_verdict(tmp_path / "odd.json", model_file, trusted_types=("_operator.pos",), features=2)
    result = push_model(
        model_file,
        "odd",
        verdict=verdict,
        tracking_uri=store,
        trusted_types=["_operator.pos"],
        git=git("5" * 40),
    )
    assert result.created


# -- the CLI: outputs, masking, bad input -----------------------------------------------------------


def test_cli_push_and_promote_write_outputs_and_mask_credentials(
    tmp_path: Path, store: str, work: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    secret = "tok-9f8e7d6c5b4a"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", secret)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    outputs = tmp_path / "out.txt"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_SHA", "6" * 40)
    stdout = io.StringIO()
    runner = CiRunner(stdout=stdout, stderr=io.StringIO())
    code = main(["model", "push", str(work["model"]), "--name", "cli", "--verdict", str(work["pass"]),
                 "--tracking-uri", store, "--promote-to", "champion", "--tag", "team=risk"],
                runner=runner)  # fmt: skip
    assert code == 0
    log = stdout.getvalue()
    assert f"::add-mask::{secret}" in log
    assert log.count(secret) == 1  # only inside the mask command itself
    text = outputs.read_text()
    for name in ("model-uri", "version", "run-id", "digest", "created", "alias", "pushed"):
        assert f"{name}<<" in text
    mv = client(store).get_model_version_by_alias("cli", "champion")
    assert mv.tags["team"] == "risk" and mv.tags["mlci.git.commit"] == "6" * 40


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        pytest.param(["push", "{model}", "--name", "x"], 1, "no verdict was given", id="no-verdict"),
        pytest.param(
            ["push", "{model}", "--name", "x", "--verdict", "{fail}"], 1, "did not pass", id="failed-verdict"
        ),
        pytest.param(
            ["push", "{model}", "--name", "x", "--verdict", "{missing}"],
            2,
            "does not exist",
            id="verdict-missing-file",
        ),
        pytest.param(
            ["push", "{model}", "--name", "x", "--verdict", "{notjson}"],
            2,
            "not valid JSON",
            id="verdict-not-json",
        ),
        pytest.param(
            ["push", "{model}", "--name", "x", "--verdict", "{noschema}"],
            2,
            "not a gate or pipeline verdict",
            id="verdict-without-schema",
        ),
        pytest.param(
            ["push", "{model}", "--name", "x", "--verdict", "{passedstring}"],
            2,
            "passed must be true/false",
            id="passed-is-a-string",
        ),
        pytest.param(
            ["push", "{missing}", "--name", "x", "--verdict", "{pass}"],
            2,
            "does not exist",
            id="model-missing",
        ),
        pytest.param(["push", "{empty}", "--name", "x", "--verdict", "{pass}"], 2, "empty", id="model-empty"),
        pytest.param(
            ["push", "{truncated}", "--name", "x", "--verdict", "{pass}"],
            2,
            "truncated",
            id="model-truncated",
        ),
        pytest.param(
            ["push", "{model}", "--name", "x; rm -rf /", "--verdict", "{pass}"],
            2,
            "not a valid registered model name",
            id="name-shell-injection",
        ),
        pytest.param(
            ["push", "{model}", "--name", "x", "--verdict", "{pass}", "--pip-requirement", "sk learn"],
            2,
            "not a valid requirement",
            id="bad-requirement",
        ),
        pytest.param(
            ["push", "{model}", "--name", "x", "--verdict", "{pass}", "--tracking-uri", "ftp://h"],
            2,
            "unsupported scheme",
            id="bad-tracking-uri",
        ),
        pytest.param(
            ["push", "{model}", "--name", "x", "--verdict", "{pass}", "--tag", "novalue"],
            2,
            "KEY=VALUE",
            id="bad-tag",
        ),
        pytest.param(
            ["push", "{model}", "--name", "x", "--verdict", "{pass}", "--promote-to", "latest"],
            2,
            "not a valid alias",
            id="bad-alias",
        ),
        pytest.param(
            ["push", "{model}", "--name", "x", "--verdict", "{pass}", "--trust-type", "os.system()"],
            2,
            "not a dotted Python name",
            id="bad-trust-type",
        ),
        pytest.param(
            ["promote", "x", "--version", "abc"], 2, "whole number of at least 1", id="promote-bad-version"
        ),
        pytest.param(
            ["promote", "nobody", "--version", "1", "--tracking-uri", "{store}"],
            2,
            "no registered model",
            id="promote-unknown-model",
        ),
        pytest.param(["baseline", "nobody", "--data", "{eval}"], 2, "not NAME@ALIAS", id="baseline-bad-ref"),
        pytest.param(
            ["baseline", "nobody@champion", "--data", "{eval}", "--output", "out.txt"],
            2,
            "unknown table format",
            id="baseline-bad-output",
        ),
        pytest.param(
            ["baseline", "nobody@champion", "--data", "{missing}"],
            2,
            "does not exist",
            id="baseline-missing-data",
        ),
        pytest.param(
            ["baseline", "nobody@champion", "--data", "{eval}", "--tracking-uri", "{store}"],
            2,
            "does not exist",
            id="baseline-unknown-alias",
        ),
    ],
)
def test_cli_bad_input(
    argv: list[str], code: int, message: str, tmp_path: Path, store: str, work: dict[str, Path],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.skops").write_bytes(b"")
    (tmp_path / "truncated.skops").write_bytes((work["model"] / "model.skops").read_bytes()[:300])
    (tmp_path / "notjson.json").write_text("{passed: true")
    (tmp_path / "noschema.json").write_text('{"passed": true}')
    (tmp_path / "passedstring.json").write_text(
        '{"schema": "mlci.gate-verdict", "schema_version": 1, "passed": "true"}'
    )
    values = {
        "model": str(work["model"]), "pass": str(work["pass"]), "fail": str(work["fail"]),
        "missing": str(tmp_path / "missing.json"), "notjson": str(tmp_path / "notjson.json"),
        "noschema": str(tmp_path / "noschema.json"), "passedstring": str(tmp_path / "passedstring.json"),
        "empty": str(tmp_path / "empty.skops"), "truncated": str(tmp_path / "truncated.skops"),
        "store": store, "eval": str(work["eval"]),
    }  # fmt: skip
    args = ["model", *(a.format(**values) if a.startswith("{") else a for a in argv)]
    # Without a tracking URI these fail before any store is opened; point at one that cannot answer.
    if "--tracking-uri" not in args:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert main(args) == code
    captured = capsys.readouterr()
    output = captured.err + captured.out
    assert message in output
    assert "Traceback" not in output
