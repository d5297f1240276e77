"""The serving image on a real Docker engine and a real registry: build, smoke, push, pull by digest.

One image is built per module (the offline base image, wheelhouse mode) and shared; the rebuild
and broken-model tests build on top of its cached dependency layers.
"""

from __future__ import annotations

import io
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlci_lib.cli import main
from mlci_lib.errors import CheckFailed
from mlci_lib.gate.latency import load_latency
from mlci_lib.gitcontext import GitContext
from mlci_lib.image import ImageBuildResult, build_image, push_image, smoke_test_image
from mlci_lib.models import load_model, save_model
from mlci_lib.runner import CiRunner

pytestmark = [pytest.mark.docker, pytest.mark.slow]

GIT = GitContext(
    commit="0123456789abcdef0123456789abcdef01234567",
    ref="refs/heads/main",
    branch="main",
    default_branch="main",
    repository="mlci-dev/churn",
    server_url="https://github.com",
    run_url=None,
)


def _data(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "charges": rng.normal(70, 20, n).round(2),
            "calls": rng.poisson(2, n),
        }
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("image")


@pytest.fixture(scope="module")
def sample(workdir: Path) -> Path:
    path = workdir / "sample.csv"
    _data(60, seed=1).to_csv(path, index=False)
    return path


def _model(folder: Path, c: float, name: str = "churn") -> Path:
    data = _data()
    y = (data.tenure < 20).astype(int) | (data.calls > 3).astype(int)
    return save_model(
        LogisticRegression(C=c, max_iter=500).fit(data, y), folder, sample_input=data.head(), name=name
    )


@pytest.fixture(scope="module")
def model(workdir: Path) -> Path:
    return _model(workdir / "model", c=1.0)


@pytest.fixture(scope="module")
def built(
    python_base_image: str, image_registry: str, model: Path, sample: Path, workdir: Path
) -> ImageBuildResult:
    verdict = workdir / "verdict.json"
    verdict.write_text(json.dumps({"schema": "mlci.gate-verdict", "schema_version": 1, "passed": True}))
    return build_image(
        model,
        repository=f"{image_registry}/mlci-test/churn",
        base_image=python_base_image,
        python_version="3.11",
        sample_data=sample,
        model_version="3",
        model_uri="models:/churn/3",
        verdict_file=verdict,
        git=GIT,
    )


def run_cli(
    argv: list[str], tmp_path: Path, environ: dict[str, str] | None = None
) -> tuple[int, str, str, str]:
    out, err = io.StringIO(), io.StringIO()
    outputs = tmp_path / "outputs.txt"
    outputs.unlink(missing_ok=True)
    env = {"MLCI_OUTPUT_FILE": str(outputs), **(environ or {})}
    code = main(argv, runner=CiRunner(env, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue(), outputs.read_text() if outputs.exists() else ""


def _inspect(reference: str) -> dict:
    done = subprocess.run(
        ["docker", "image", "inspect", reference], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)[0]


def _registry_json(url: str, accept: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_build_tags_labels_and_locks_down_the_image(built: ImageBuildResult, model: Path) -> None:
    assert built.tags == ("0123456789ab", "model-3", "latest")
    attrs = _inspect(built.image_id)
    config = attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "/opt/mlci/venv/bin/python"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == GIT.commit
    assert labels["org.opencontainers.image.source"] == "https://github.com/mlci-dev/churn"
    assert labels["org.opencontainers.image.version"] == "3"
    assert labels["org.opencontainers.image.title"] == "churn"
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert labels["io.mlci.model.digest"] == load_model(model).digest
    assert labels["io.mlci.model.uri"] == "models:/churn/3"
    assert labels["io.mlci.verdict.digest"].startswith("sha256:")
    assert sorted(attrs["RepoTags"]) == sorted(built.references)


def test_the_image_runs_read_only_as_non_root(built: ImageBuildResult) -> None:
    done = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--read-only",
            "--network",
            "none",
            "--entrypoint",
            "/opt/mlci/venv/bin/python",
            built.image_id,
            "-c",
            "import os, sklearn, mlci_lib.serving; print(os.getuid()); open('/x', 'w')",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip() == "10001"
    assert "Read-only file system" in done.stderr


def test_smoke_then_push_then_pull_by_digest(
    built: ImageBuildResult,
    model: Path,
    sample: Path,
    image_registry: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    smoke_file, latency_file = tmp_path / "smoke.json", tmp_path / "latency.json"
    code, out, err, outputs = run_cli(
        [
            "image",
            "smoke",
            built.reference,
            "--model",
            str(model),
            "--sample-data",
            str(sample),
            "--requests",
            "30",
            "--rows-per-request",
            "5",
            "--output",
            str(smoke_file),
            "--latency-output",
            str(latency_file),
        ],
        tmp_path,
    )
    assert code == 0, out + err
    smoke = json.loads(smoke_file.read_text())
    assert smoke["passed"] is True and smoke["mismatch_count"] == 0 and smoke["rows"] == 60
    assert smoke["health"] == "healthy" and smoke["user"] == "10001:10001"
    assert smoke["version"]["model"]["version"] == "3"
    latency = json.loads(latency_file.read_text())
    assert (
        latency["schema"] == "mlci.latency" and latency["requests"] == 30 and latency["rows_per_request"] == 5
    )
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert load_latency(latency_file, what="latency")["p95_ms"] == latency["p95_ms"]  # the gate reads it
    leftovers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=io.mlci.smoke", "--filter", f"ancestor={built.image_id}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert leftovers.stdout.strip() == ""

    push_file = tmp_path / "push.json"
    monkeypatch.setenv("MLCI_REGISTRY_PASSWORD", "s3cr3t-pw")
    code, out, err, outputs = run_cli(
        [
            "image",
            "push",
            built.reference,
            "--tag",
            "0123456789ab",
            "--tag",
            "model-3",
            "--smoke-file",
            str(smoke_file),
            "--output",
            str(push_file),
            "--username",
            "bot",
        ],
        tmp_path,
        {"GITHUB_ACTIONS": "true"},
    )
    assert code == 0, out + err
    assert "::add-mask::s3cr3t-pw" in out
    assert "s3cr3t-pw" not in out.replace("::add-mask::s3cr3t-pw", "") + err + push_file.read_text()
    pushed = json.loads(push_file.read_text())
    digest = pushed["digest"]
    assert digest.startswith("sha256:") and pushed["verified"] is True
    assert "digest<<" in outputs and digest in outputs

    base = f"http://{image_registry}/v2/mlci-test/churn"
    status, tags = _registry_json(f"{base}/tags/list")
    assert status == 200 and sorted(tags["tags"]) == ["0123456789ab", "model-3"]
    status, manifest = _registry_json(
        f"{base}/manifests/{digest}", "application/vnd.docker.distribution.manifest.v2+json"
    )
    assert status == 200
    _, blob = _registry_json(f"{base}/blobs/{manifest['config']['digest']}")
    assert blob["config"]["Labels"]["io.mlci.model.digest"] == load_model(model).digest
    assert blob["config"]["User"] == "10001:10001"

    subprocess.run(
        ["docker", "pull", f"{image_registry}/mlci-test/churn@{digest}"], check=True, capture_output=True
    )
    pulled = _inspect(f"{image_registry}/mlci-test/churn@{digest}")
    assert pulled["Id"] == built.image_id
    assert pulled["Config"]["Labels"]["org.opencontainers.image.revision"] == GIT.commit


def test_a_new_model_rebuilds_only_the_model_layer(
    built: ImageBuildResult, python_base_image: str, image_registry: str, sample: Path, workdir: Path
) -> None:
    other = _model(workdir / "model-b", c=0.01)
    rebuilt = build_image(
        other,
        repository=f"{image_registry}/mlci-test/churn",
        tags=["model-b"],
        base_image=python_base_image,
        python_version="3.11",
        sample_data=sample,
        git=GIT,
    )
    steps = {s.instruction.split()[0] + " " + s.instruction.split()[1]: s for s in rebuilt.steps}
    app_step = next(s.number for s in rebuilt.steps if s.instruction.startswith("COPY app/"))
    dependencies = [s for s in rebuilt.steps if s.number < app_step and not s.instruction.startswith("FROM")]
    assert dependencies and all(s.cached for s in dependencies), rebuilt.built_steps
    assert not steps["COPY bundle/"].cached
    old_layers = _inspect(built.image_id)["RootFS"]["Layers"]
    new_layers = _inspect(rebuilt.image_id)["RootFS"]["Layers"]
    base_layers = len(_inspect(python_base_image)["RootFS"]["Layers"])
    # The base and the dependency layer are the very same layers; only the model layer is new (the
    # runtime layer too, but only if mlci's own source changed between the two builds).
    assert new_layers[: base_layers + 1] == old_layers[: base_layers + 1]
    assert len(new_layers) == len(old_layers) == base_layers + 3
    assert new_layers[-1] != old_layers[-1]


def test_a_broken_model_fails_the_smoke_test_and_is_not_pushed(
    built: ImageBuildResult, python_base_image: str, image_registry: str, sample: Path, workdir: Path
) -> None:
    data = _data()
    broken = save_model(LogisticRegression(), workdir / "unfitted", sample_input=data.head(), name="churn")
    image = build_image(
        broken,
        repository=f"{image_registry}/mlci-test/broken",
        tags=["candidate"],
        base_image=python_base_image,
        python_version="3.11",
        git=GIT,
    )
    smoke = smoke_test_image(image.reference, broken, sample, requests=5, health_timeout=90)
    assert smoke.passed is False
    assert "exited" in smoke.message
    assert "warm-up" in smoke.logs_tail and "NotFittedError" in smoke.logs_tail
    with pytest.raises(CheckFailed, match="did not pass its smoke test"):
        push_image(image.reference, smoke=smoke)
    status, _ = _registry_json(f"http://{image_registry}/v2/mlci-test/broken/tags/list")
    assert status == 404  # the repository was never created: nothing was pushed


def test_push_refuses_an_image_other_than_the_smoke_tested_one(built: ImageBuildResult, sample: Path) -> None:
    forged = {"schema": "mlci.image-smoke", "passed": True, "image": "x", "image_id": "sha256:" + "0" * 64}
    with pytest.raises(CheckFailed, match="not on"):
        push_image(built.reference, smoke=forged)


def test_smoke_fails_when_the_image_serves_another_model(
    built: ImageBuildResult, sample: Path, workdir: Path
) -> None:
    other = _model(workdir / "model-c", c=0.0005)
    smoke = smoke_test_image(built.reference, other, sample, requests=3)
    assert smoke.passed is False
    assert smoke.mismatch_count > 0
    assert smoke.mismatches[0].field in ("prediction", "probability")


def test_cli_build_reports_outputs(
    built: ImageBuildResult,
    model: Path,
    sample: Path,
    python_base_image: str,
    image_registry: str,
    tmp_path: Path,
) -> None:
    result_file = tmp_path / "build.json"
    code, out, err, outputs = run_cli(
        [
            "image",
            "build",
            str(model),
            "--repository",
            f"{image_registry}/mlci-test/churn",
            "--tag",
            "cli",
            "--base-image",
            python_base_image,
            "--python-version",
            "3.11",
            "--output",
            str(result_file),
            "--sample-data",
            str(sample),
            "--model-version",
            "3",
            "--json",
        ],
        tmp_path,
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["schema"] == "mlci.image-build"
    assert json.loads(result_file.read_text())["image_id"] == result["image_id"]
    assert f"{image_registry}/mlci-test/churn:cli" in outputs
