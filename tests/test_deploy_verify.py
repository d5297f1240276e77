"""`mlci deploy verify` against real serving runtimes on loopback.

The smoke result is made by the smoke module's own recorder from the model's in-process
predictions and the released runtime's /version, which is what ``mlci image smoke`` records of
the container; the deployment under test is a separate runtime serving the same, or another, model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlci_lib.cli import main
from mlci_lib.image.smoke import Latency, SmokeResult, smoke_sample
from mlci_lib.models import load_model, save_model
from mlci_lib.results import to_jsonable
from mlci_lib.serving.server import ModelServer
from tests.helpers.components import free_port

VERDICT_DIGEST = "sha256:" + "ab" * 32


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"tenure": rng.integers(0, 72, n), "charges": rng.normal(70, 20, n).round(2)})


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    data = _frame(300, 0)
    root = tmp_path_factory.mktemp("verify-models")
    released = LogisticRegression(max_iter=200).fit(data, data.tenure < 20)
    other = LogisticRegression(max_iter=200).fit(data, data.charges > 70)
    return {
        "released": save_model(released, root / "released", sample_input=data.head(), name="churn"),
        "other": save_model(other, root / "other", sample_input=data.head(), name="churn"),
    }


@pytest.fixture(scope="module")
def served(models: dict[str, Path]) -> Iterator[dict[str, ModelServer]]:
    info = {"verdict_digest": VERDICT_DIGEST}
    with (
        ModelServer(models["released"], info=info) as released,
        ModelServer(models["other"], info=info) as other,
    ):
        released.wait_ready(60)
        other.wait_ready(60)
        yield {"released": released, "other": other}


@pytest.fixture(scope="module")
def smoke_file(
    models: dict[str, Path], served: dict[str, ModelServer], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    import urllib.request

    model = load_model(models["released"])
    ready = model.prepare(_frame(40, 1), source="sample rows")
    predictions, probabilities = model.predict(ready, source="sample rows")
    with urllib.request.urlopen(f"{served['released'].url}/version", timeout=5) as response:
        version = json.load(response)
    result = SmokeResult(
        passed=True, image="registry.test/churn:1", image_id="sha256:" + "0" * 64, user="10001:10001",
        read_only=True, health="healthy", rows=40, mismatches=(), mismatch_count=0,
        latency=Latency(
            requests=50, rows_per_request=1, p50_ms=2.0, p95_ms=3.0, p99_ms=4.0, mean_ms=2.2, max_ms=5.0
        ),
        latency_file=None, version=version, message="40 rows served identically", logs_tail="",
        sample=smoke_sample(to_jsonable(ready.to_dict(orient="records")), predictions, probabilities, 1e-9),
    )  # fmt: skip
    path = tmp_path_factory.mktemp("smoke") / "smoke.json"
    path.write_text(result.to_json())
    return path


def _verify(url: str, smoke: Path, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    verdict = tmp_path / "deploy-verdict.json"
    code = main(["deploy", "verify", url, "--smoke", str(smoke), "--verdict-file", str(verdict), *extra])
    return code, json.loads(verdict.read_text()) if verdict.exists() else {}


def _checks(verdict: dict) -> dict[str, str]:
    return {check["name"]: check["outcome"] for check in verdict["checks"]}


def test_the_released_model_is_verified(
    served: dict[str, ModelServer], smoke_file: Path, tmp_path: Path
) -> None:
    code, verdict = _verify(served["released"].url, smoke_file, tmp_path)
    assert code == 0, verdict
    assert verdict["schema"] == "mlci.deploy-verdict" and verdict["passed"] is True
    assert _checks(verdict) == {
        "health": "pass",
        "model digest": "pass",
        "verdict digest": "pass",
        "predictions": "pass",
    }
    assert verdict["model_digest"].startswith("sha256:") and verdict["checked_at"].endswith("Z")


def test_another_model_behind_the_url_fails(
    served: dict[str, ModelServer], smoke_file: Path, tmp_path: Path
) -> None:
    code, verdict = _verify(served["other"].url, smoke_file, tmp_path)
    assert code == 1
    checks = _checks(verdict)
    assert checks["model digest"] == "fail" and checks["predictions"] == "fail" and checks["health"] == "pass"
    failed = next(c for c in verdict["checks"] if c["name"] == "predictions")
    assert "recorded rows served another prediction" in failed["message"]


def test_latency_rules_of_a_gate_file(
    served: dict[str, ModelServer], smoke_file: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate.yml"
    gate.write_text("latency:\n  p95_ms: {max: 10000}\n  p50_ms: {max-increase: 10000}\n")
    code, verdict = _verify(
        served["released"].url, smoke_file, tmp_path, "--gate", str(gate), "--requests", "20"
    )
    assert code == 0, verdict
    rules = {r["rule"]: r for r in verdict["latency_rules"]}
    assert rules["latency p95_ms max"]["outcome"] == "pass"
    # max-increase compares with the latency the smoke test measured.
    assert rules["latency p50_ms max-increase"]["baseline"] == 2.0
    gate.write_text("latency:\n  p99_ms: {max: 0.0001}\n")
    code, verdict = _verify(
        served["released"].url, smoke_file, tmp_path, "--gate", str(gate), "--requests", "5"
    )
    assert code == 1 and verdict["latency_rules"][0]["outcome"] == "fail"


def test_a_release_result_supplies_the_digests(
    served: dict[str, ModelServer], smoke_file: Path, tmp_path: Path
) -> None:
    smoke = json.loads(smoke_file.read_text())
    digest = smoke["version"]["model"]["digest"]
    image = "registry.test/churn@sha256:" + "cd" * 32
    release = {
        "schema": "mlci.image-release", "passed": True, "push": {"digest_reference": image},
        "smoke": smoke,
        "build": {"labels": {"io.mlci.model.name": "churn", "io.mlci.model.digest": digest,
                             "io.mlci.verdict.digest": "sha256:" + "ef" * 32}},
    }  # fmt: skip
    path = tmp_path / "release.json"
    path.write_text(json.dumps(release))
    # The release alone (it holds the smoke result): the runtime reports another verdict digest.
    code, verdict = _verify(served["released"].url, path, tmp_path)
    assert code == 1 and _checks(verdict)["verdict digest"] == "fail"
    assert verdict["image"] == image and verdict["image_digest"] == "sha256:" + "cd" * 32


@pytest.mark.parametrize(
    ("smoke", "message"),
    [
        pytest.param(
            {"schema": "mlci.image-smoke", "passed": True}, "records no sample rows", id="no-sample"
        ),
        pytest.param({"schema": "mlci.image-smoke", "passed": False}, "smoke test that failed", id="failed"),
        pytest.param({"schema": "mlci.gate-verdict"}, "is not a smoke result", id="other-file"),
    ],
)
def test_bad_smoke_files_are_one_line_exit_2(
    smoke: dict, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "smoke.json"
    path.write_text(json.dumps(smoke))
    code = main(["deploy", "verify", "http://127.0.0.1:9", "--smoke", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_an_unreachable_url_is_one_line_exit_2(smoke_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["deploy", "verify", url, "--smoke", str(smoke_file)])
    err = capsys.readouterr().err
    assert (
        code == 2 and f"the deployment at {url} does not answer" in err and len(err.strip().splitlines()) == 1
    )


# -- the whole chain on a real engine --------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_a_released_image_run_as_rendered_is_verified(
    python_base_image: str, image_registry: str, models: dict[str, Path], tmp_path: Path
) -> None:
    """Release (build, smoke, push), render, run the rendered container on Docker, verify it."""
    from mlci_lib.deploy import parse_deploy_config, release_from_result
    from mlci_lib.deploy.manifests import manifests
    from mlci_lib.deploy.podrun import run_container_spec
    from mlci_lib.image.release import release_image

    sample = tmp_path / "sample.csv"
    _frame(30, 2).to_csv(sample, index=False)
    verdict = tmp_path / "gate-verdict.json"
    verdict.write_text(json.dumps({"schema": "mlci.gate-verdict", "schema_version": 1, "passed": True}))
    released = release_image(
        models["released"],
        push=True,
        sample_data=sample,
        build_options={
            "repository": f"{image_registry}/mlci-test/verify",
            "base_image": python_base_image,
            "python_version": "3.11",
            "verdict_file": verdict,
        },
    )
    assert released.passed, released.failed_stage
    assert released.smoke is not None and released.smoke.sample is not None
    assert len(released.smoke.sample.rows) == 30
    release_file = tmp_path / "release.json"
    release_file.write_text(released.to_json())
    release = release_from_result(released.to_dict(), source=str(release_file))
    pod = manifests(parse_deploy_config({"namespace": "ml"}, default_name="churn"), release)
    spec = pod["deployment.yaml"]["spec"]["template"]["spec"]
    port = free_port()
    outcome: dict[str, object] = {}

    def verify() -> None:
        out = tmp_path / "deploy-verdict.json"
        outcome["code"] = main([
            "deploy", "verify", f"http://127.0.0.1:{port}", "--smoke", str(release_file),
            "--release", str(release_file), "--verdict-file", str(out),
        ])  # fmt: skip
        outcome["verdict"] = json.loads(out.read_text())

    ran = run_container_spec(
        spec["containers"][0], port=port, pod_security=spec["securityContext"], while_running=verify
    )
    assert ran.passed, ran.message
    assert outcome["code"] == 0, outcome
    result = outcome["verdict"]
    assert isinstance(result, dict)
    assert _checks(result) == {
        "health": "pass",
        "model digest": "pass",
        "verdict digest": "pass",
        "predictions": "pass",
    }
    assert (
        result["image_digest"] == release.image_digest and result["verdict_digest"] == release.verdict_digest
    )
