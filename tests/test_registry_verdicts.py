"""Verdicts that could be forged or reused: what push and promote accept, against a real MLflow store.

A version becomes promotable only through mlci: a gate or pipeline verdict that agrees with itself
and was computed on the model being pushed (its digest) and on the data the push names. Tags in
the ``mlci.`` namespace are mlci's own; a caller's ``--tag`` may not set them, and promotion checks
the verdict logged with the version again instead of trusting a tag.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlci_lib.cli import main
from mlci_lib.errors import CheckFailed, InputError
from mlci_lib.fingerprint import data_fingerprint
from mlci_lib.pipeline.verdict import PipelineVerdict, StageRecord
from mlci_lib.registry import promote_model, push_model, rollback_model
from tests.test_registry import eval_data, git, make_model, write_verdict

pytestmark = pytest.mark.mlflow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("work")
    model, other = make_model(folder / "model"), make_model(folder / "other", seed=2)
    data = eval_data(folder / "eval.csv")
    return {
        "model": model,
        "other": other,
        "eval": data,
        "pass": write_verdict(folder / "pass.json", model),
        "pass_data": write_verdict(folder / "pass-data.json", model, data=[data]),
        "fail": write_verdict(folder / "fail.json", model, passed=False),
        "other_pass": write_verdict(folder / "other-pass.json", other),
    }


def client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _pipeline(gate: dict[str, Any], gate_status: str, passed: bool) -> dict[str, Any]:
    stages = (
        StageRecord("train", "passed", "model written", 1.0),
        StageRecord("gate", gate_status, "gated", 1.0, verdict_file="gate.json", verdict=gate),
    )
    return PipelineVerdict(
        passed=passed,
        status="passed" if passed else "failed",
        failed_stage=None if gate_status == "passed" else "gate",
        git={"commit": "a" * 40},
        data_fingerprint=None,
        stages=stages,
    ).to_dict()


# -- what push accepts as a verdict ----------------------------------------------------------------


def _forged_all_rules_failed(work: dict[str, Path]) -> dict[str, Any]:
    data = _json(work["pass"])
    for rule in data["rules"]:
        rule["outcome"] = "fail"
    return data


def _forged_inconclusive_under_fail(work: dict[str, Path]) -> dict[str, Any]:
    data = _json(work["pass"])
    data["rules"][0]["outcome"] = "inconclusive"
    data["on_inconclusive"] = "fail"
    return data


def _forged_undefined(work: dict[str, Path]) -> dict[str, Any]:
    data = _json(work["pass"])
    data["rules"][0]["outcome"] = "undefined"
    return data


def _forged_no_rules(work: dict[str, Path]) -> dict[str, Any]:
    return {**_json(work["pass"]), "rules": []}


def _data_check_result(work: dict[str, Path]) -> dict[str, Any]:
    return {"schema": "mlci.data-check", "schema_version": 1, "passed": True, "expectations": []}


def _push_result(work: dict[str, Path]) -> dict[str, Any]:
    return {"schema": "mlci.model-push", "schema_version": 1, "passed": True, "verdict_passed": True}


def _pipeline_gate_failed_but_passed(work: dict[str, Path]) -> dict[str, Any]:
    return _pipeline(_json(work["fail"]), "failed", passed=True)


def _pipeline_gate_stage_marked_passed_over_a_failed_verdict(work: dict[str, Path]) -> dict[str, Any]:
    return _pipeline(_json(work["fail"]), "passed", passed=True)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(_forged_all_rules_failed, "says passed: true, but its required rule", id="rules-failed"),
        pytest.param(
            _forged_inconclusive_under_fail, "inconclusive under on_inconclusive: fail", id="inconclusive"
        ),
        pytest.param(_forged_undefined, "is undefined", id="undefined-metric"),
        pytest.param(_forged_no_rules, "rules is empty", id="no-rules"),
        pytest.param(_data_check_result, "an mlci.data-check file", id="data-check-result"),
        pytest.param(_push_result, "an mlci.model-push file", id="push-result"),
        pytest.param(_pipeline_gate_failed_but_passed, "its stage gate failed", id="pipeline-gate-failed"),
        pytest.param(
            _pipeline_gate_stage_marked_passed_over_a_failed_verdict,
            "says passed: true, but",
            id="pipeline-gate-verdict-failed",
        ),
    ],
)
def test_push_refuses_verdicts_that_cannot_let_a_model_through(
    make: Any, message: str, work: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict = tmp_path / "verdict.json"
    verdict.write_text(json.dumps(make(work)))
    unreachable = "http://127.0.0.1:9"  # refused before any registry contact
    code = main(["model", "push", str(work["model"]), "--name", "forged", "--verdict", str(verdict),
                 "--tracking-uri", unreachable])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("verdict", "extra", "message"),
    [
        pytest.param("other_pass", [], "was computed on model", id="another-model"),
        pytest.param("pass_data", ["--data", "{other_data}"], "computed on other data", id="other-data"),
        pytest.param(
            "pass", ["--data", "{eval}"], "computed on other data (no data fingerprint)", id="no-data"
        ),
        pytest.param("no_digest", [], "does not record which model", id="gate-without-model"),
    ],
)
def test_push_refuses_a_verdict_of_another_model_or_other_data(
    verdict: str, extra: list[str], message: str, work: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    other_data = tmp_path / "other.csv"
    other_data.write_text(work["eval"].read_text() + "r40,0.1,0.2,0.3,0,south\n")
    no_digest = _json(work["pass"])
    del no_digest["candidate"]["model_digest"]
    (tmp_path / "no-digest.json").write_text(json.dumps(no_digest))
    paths = {**{k: str(v) for k, v in work.items()}, "no_digest": str(tmp_path / "no-digest.json")}
    values = {"other_data": str(other_data), "eval": str(work["eval"])}
    code = main(["model", "push", str(work["model"]), "--name", "reused", "--verdict", paths[verdict],
                 *(a.format(**values) for a in extra), "--tracking-uri", "http://127.0.0.1:9"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1 and message in captured.out + captured.err, captured


def test_gate_records_the_model_and_data_and_push_then_promote_accept_them(
    store: str, work: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictions = work["pass"].with_name("pass-predictions.csv")
    verdict = tmp_path / "gate.json"
    code = main(["gate", "--candidate", str(predictions), "--rule", "accuracy min=0.5", "--resamples", "0",
                 "--model", str(work["model"]), "--data", str(work["eval"]),
                 "--verdict-file", str(verdict)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    recorded = _json(verdict)
    assert recorded["candidate"]["model_digest"].startswith("sha256:")
    assert recorded["candidate"]["fingerprint"] == data_fingerprint([predictions])
    assert recorded["data_fingerprint"] == data_fingerprint([work["eval"]])
    code = main(["model", "push", str(work["model"]), "--name", "bound", "--verdict", str(verdict), "--data",
                 str(work["eval"]), "--tracking-uri", store, "--promote-to", "champion"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    mv = client(store).get_model_version_by_alias("bound", "champion")
    assert mv.tags["mlci.verdict.passed"] == "true"
    assert mv.tags["mlci.verdict.model_digest"] == recorded["candidate"]["model_digest"]
    assert mv.tags["mlci.data.fingerprint"] == recorded["data_fingerprint"]
    # Another model with that verdict is refused (the digest the gate recorded is compared).
    with pytest.raises(CheckFailed, match="was computed on model"):
        push_model(work["other"], "bound", verdict=verdict, tracking_uri=store)


def test_a_pipeline_verdict_with_a_passed_gate_stage_is_accepted(
    store: str, work: dict[str, Path], tmp_path: Path
) -> None:
    verdict = tmp_path / "pipeline.json"
    verdict.write_text(json.dumps(_pipeline(_json(work["pass"]), "passed", passed=True)))
    result = push_model(work["model"], "piped", verdict=verdict, tracking_uri=store, git=git("p" * 40))
    assert result.verdict_passed is True
    assert promote_model("piped", result.version, tracking_uri=store).action == "promoted"
    # A consistent pipeline verdict without any gate stage lets nothing through.
    no_gate = _pipeline(_json(work["pass"]), "passed", passed=True)
    no_gate["stages"] = [no_gate["stages"][0]]
    with pytest.raises(CheckFailed, match="it has no gate stage"):
        push_model(work["model"], "piped", verdict=no_gate, tracking_uri="http://127.0.0.1:9")


# -- the mlci. namespace ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "mlci.verdict.passed=true",
        "MLCI.verdict.passed=true",
        " mlci.push_key=sha256:0",
        "mlci.model.digest=x",
    ],
)
def test_user_tags_in_the_mlci_namespace_are_refused_everywhere(
    tag: str, store: str, work: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pushed = push_model(
        work["model"], "namespace", require_verdict=False, tracking_uri=store, git=git("n" * 40)
    )
    before = dict(client(store).get_model_version("namespace", pushed.version).tags)
    # model tag on an unverified version
    code = main(
        ["model", "tag", "namespace", "--version", pushed.version, "--tag", tag, "--tracking-uri", store]
    )
    assert code == 2 and "which only mlci writes" in capsys.readouterr().err
    # push without a verdict that tries to tag itself passed (or to pick its own push key), and promote
    code = main(["model", "push", str(work["other"]), "--name", "namespace", "--no-require-verdict",
                 "--tag", tag, "--promote-to", "champion", "--tracking-uri", store])  # fmt: skip
    assert code == 2 and "which only mlci writes" in capsys.readouterr().err
    versions = client(store).search_model_versions("name = 'namespace'")
    assert [str(v.version) for v in versions] == [pushed.version], "no orphan version was left behind"
    assert dict(client(store).get_model_version("namespace", pushed.version).tags) == before
    with pytest.raises(Exception, match=r"not found|RESOURCE_DOES_NOT_EXIST|alias"):
        client(store).get_model_version_by_alias("namespace", "champion")


def test_a_version_pushed_without_a_verdict_is_never_promoted(
    store: str, work: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["model", "push", str(work["model"]), "--name", "unverified2", "--no-require-verdict",
                 "--promote-to", "champion", "--tracking-uri", store])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1 and "promotion refused" in captured.out + captured.err, captured
    mv = client(store).get_model_version("unverified2", "1")
    assert mv.tags["mlci.verdict.passed"] == "false"
    # Even a tag written straight into the registry (not through mlci) does not make it promotable.
    client(store).set_model_version_tag("unverified2", "1", "mlci.verdict.passed", "true")
    with pytest.raises(CheckFailed, match="carries no verdict mlci can check again"):
        promote_model("unverified2", "1", tracking_uri=store)
    # Nor does a passing verdict of another model given with --no-require-verdict.
    result = push_model(work["model"], "unverified2", verdict=work["other_pass"], require_verdict=False,
                        tracking_uri=store, git=git("u" * 40))  # fmt: skip
    assert result.verdict_passed is False
    with pytest.raises(CheckFailed, match="its verdict did not pass \\(not promotable: the verdict"):
        promote_model("unverified2", result.version, tracking_uri=store)


def test_promote_and_rollback_check_the_logged_verdict_again(store: str, work: dict[str, Path]) -> None:
    v1 = push_model(work["model"], "recheck", verdict=work["pass"], tracking_uri=store, git=git("1" * 40))
    v2 = push_model(
        work["other"], "recheck", verdict=work["other_pass"], tracking_uri=store, git=git("2" * 40)
    )
    promote_model("recheck", v1.version, tracking_uri=store)
    promote_model("recheck", v2.version, tracking_uri=store)
    registry = client(store)
    # The verdict tag pointing at another verdict (edited in the registry): promotion refused.
    registry.set_model_version_tag("recheck", v1.version, "mlci.verdict.digest", "sha256:" + "0" * 64)
    with pytest.raises(CheckFailed, match="not the one it was pushed with"):
        promote_model("recheck", v1.version, tracking_uri=store)
    with pytest.raises(
        CheckFailed, match=f"cannot roll back alias champion of recheck to version {v1.version}"
    ):
        rollback_model("recheck", tracking_uri=store)
    assert str(registry.get_model_version_by_alias("recheck", "champion").version) == v2.version
    # The version's model digest claim moved to another model: refused too.
    registry.set_model_version_tag("recheck", v2.version, "mlci.verdict.model_digest", "sha256:" + "1" * 64)
    with pytest.raises(CheckFailed, match="not about this version's model"):
        promote_model("recheck", v2.version, tracking_uri=store)


def test_image_digest_tag_is_validated(
    store: str, work: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pushed = push_model(work["model"], "imaged", verdict=work["pass"], tracking_uri=store, git=git("i" * 40))
    argv = ["model", "tag", "imaged", "--version", pushed.version, "--tracking-uri", store, "--image-digest"]
    assert main([*argv, "latest"]) == 2 and "is not sha256:<64 hex digits>" in capsys.readouterr().err
    assert main([*argv, "sha256:" + "a" * 64]) == 0
    assert (
        client(store).get_model_version("imaged", pushed.version).tags["mlci.image.digest"]
        == "sha256:" + "a" * 64
    )


def test_library_refuses_mlci_tags_too(work: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="which only mlci writes"):
        push_model(work["model"], "lib", verdict=work["pass"], tags={"mlci.verdict.passed": "true"},
                   tracking_uri="http://127.0.0.1:9")  # fmt: skip


# -- MLflow's telemetry ------------------------------------------------------------------------------

_PROBE = """
import sys
events = []
def hook(name, args):
    if name in ("os.putenv", "os.unsetenv") and b"TELEMETRY_SESSION" in bytes(args[0]):
        events.append((name, bytes(args[0]).decode()))
sys.addaudithook(hook)
from mlci_lib.registry.tracking import mlflow_session
with mlflow_session(sys.argv[1]) as client:
    client.search_registered_models()
import mlflow.telemetry, os
no_client = mlflow.telemetry.get_telemetry_client() is None
print(repr((events, no_client, "MLFLOW_DISABLE_TELEMETRY" in os.environ)))
"""


def test_mlflow_telemetry_never_touches_the_environment(store: str, tmp_path: Path) -> None:
    # Outside CI and pytest (MLflow turns telemetry off there by itself), as a user runs mlci.
    keep = ("PATH", "HOME", "PYTHONPATH", "LANG")
    env = {k: v for k, v in os.environ.items() if k in keep}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, store],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    events, no_client, switch_left = eval(out.strip().splitlines()[-1])  # our own repr of plain values
    assert events == [], "MLflow's telemetry client wrote the environment (the race behind the flaky push)"
    assert no_client and not switch_left


def test_promote_refuses_a_version_whose_logged_verdict_is_gone(store: str, work: dict[str, Path]) -> None:
    from urllib.parse import urlparse

    pushed = push_model(work["model"], "lost", verdict=work["pass"], tracking_uri=store, git=git("l" * 40))
    artifacts = Path(urlparse(client(store).get_run(pushed.run_id).info.artifact_uri).path)
    (artifacts / "mlci" / "verdict.json").unlink()
    with pytest.raises(CheckFailed, match=r"holds no mlci/verdict\.json"):
        promote_model("lost", pushed.version, tracking_uri=store)
