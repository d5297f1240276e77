"""`mlci deploy render`: manifests validated offline, scanned, and their container run on Docker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from mlci_lib.cli import main
from mlci_lib.deploy import make_release, parse_deploy_config, render_deployment
from mlci_lib.deploy.manifests import container_spec, manifests
from mlci_lib.deploy.validate import validate_manifest
from mlci_lib.errors import ConfigError, InputError
from mlci_lib.models import save_model
from mlci_lib.runner import CiRunner
from tests.helpers.components import free_port, require

DIGEST = "sha256:" + "a" * 64
IMAGE = f"registry.example:5000/team/churn@{DIGEST}"


def _release(image: str = IMAGE) -> object:
    return make_release(
        image=image,
        model_name="churn",
        model_version="3",
        model_digest="sha256:" + "b" * 64,
        verdict_digest="sha256:" + "c" * 64,
        user="10001:10001",
    )


def _pipeline(folder: Path, deploy: dict | None) -> Path:
    body: dict = {"version": 1, "model": {"name": "churn"}, "stages": {"gate": {"rules": "gate.yaml"}}}
    if deploy is not None:
        body["deploy"] = deploy
    path = folder / "mlci.yaml"
    path.write_text(yaml.safe_dump(body), encoding="utf-8")
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv, runner=CiRunner(environ={}))
    out, err = capsys.readouterr()
    return code, out, err


# -- rendering and validation -----------------------------------------------------------------


@pytest.mark.parametrize("target", ["kubernetes", "kserve"])
@pytest.mark.slow
def test_rendered_manifests_validate_strictly_and_carry_the_release(tmp_path: Path, target: str) -> None:
    config = parse_deploy_config(
        {"target": target, "namespace": "ml", "autoscaling": {"min-replicas": 2, "max-replicas": 5}},
        default_name="churn",
    )
    result = render_deployment(_release(), config, tmp_path / "deploy")  # type: ignore[arg-type]
    base = tmp_path / "deploy" / "base"
    assert sorted(p.name for p in base.iterdir()) == sorted([*result.files, ".mlci-render.json"])
    if target == "kubernetes":
        assert set(result.validated) == {
            "deployment.yaml",
            "service.yaml",
            "horizontalpodautoscaler.yaml",
            "poddisruptionbudget.yaml",
            "networkpolicy.yaml",
            "servicemonitor.yaml",  # against the Prometheus Operator's CRD schema
        }
        assert result.custom_kinds == ()
        pod = yaml.safe_load((base / "deployment.yaml").read_text())["spec"]["template"]
    else:
        assert set(result.validated) == {"inferenceservice.yaml", "networkpolicy.yaml"}  # KServe's CRD
        assert result.custom_kinds == ()
        pod = {"spec": yaml.safe_load((base / "inferenceservice.yaml").read_text())["spec"]["predictor"]}
    container = pod["spec"]["containers"][0]
    assert container["image"] == IMAGE  # by digest, never a tag
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"] == {"drop": ["ALL"]} and security["runAsUser"] == 10001
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"requests", "limits"} <= set(container["resources"])
    meta = yaml.safe_load((base / result.files[0]).read_text())["metadata"]
    assert meta["annotations"]["mlci.io/model-digest"] == "sha256:" + "b" * 64
    assert meta["annotations"]["mlci.io/verdict-digest"] == "sha256:" + "c" * 64
    assert meta["annotations"]["mlci.io/image-digest"] == DIGEST
    if shutil.which("kubectl"):
        assert result.kustomize == "built"


def test_strict_validation_refuses_a_field_kubernetes_does_not_know() -> None:
    config = parse_deploy_config({"namespace": "ml"}, default_name="churn")
    body = manifests(config, _release())["deployment.yaml"]  # type: ignore[arg-type]
    assert validate_manifest(body, "1.31", where="deployment.yaml")
    body["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFs"] = True
    with pytest.raises(
        InputError, match=r"deployment\.yaml: Deployment does not validate against Kubernetes 1\.31"
    ):
        validate_manifest(body, "1.31", where="deployment.yaml")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("registry.example/churn:v3", "not an image reference by digest"),
        ("registry.example/churn@sha256:abc", "not an image reference by digest"),
        ("registry.example/churn:v3\nRUN x@" + DIGEST, "not an image reference by digest"),
    ],
    ids=["tag", "short-digest", "newline"],
)
def test_a_tag_or_a_malformed_reference_is_refused(image: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _release(image)


@pytest.mark.parametrize(
    ("deploy", "message"),
    [
        ({"target": "nomad"}, "deploy.target must be one of"),
        ({"namespce": "ml"}, "did you mean 'namespace'"),
        ({"namespace": "ML_team"}, "deploy.namespace must be a DNS-1123 label"),
        ({"resources": {"limits": {"cpu": "lots", "memory": "1Gi"}}}, "not a CPU quantity"),
        ({"autoscaling": {"min-replicas": 5, "max-replicas": 2}}, "max-replicas 2 is below min-replicas 5"),
        ({"labels": {"app.kubernetes.io/name": "x"}}, "is set by mlci"),
        ({"kubernetes-version": "2"}, "must look like 1.31"),
    ],
)
def test_a_bad_deploy_section_names_the_key(deploy: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_deploy_config(deploy, default_name="churn")


@pytest.mark.slow
def test_cli_renders_from_the_pipeline_file_and_refuses_what_it_cannot_deploy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _pipeline(tmp_path, {"namespace": "ml"})
    code, _, err = _run(
        ["deploy", "render", "--image", IMAGE, "--config", str(config), "--model-version", "3"], capsys
    )
    assert code == 0, err
    assert (tmp_path / "deploy" / "base" / "kustomization.yaml").is_file()
    code, _, err = _run(["deploy", "render", "--image", "churn:latest", "--config", str(config)], capsys)
    assert code == 2 and "not an image reference by digest" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "bare").mkdir()
    bare = _pipeline(tmp_path / "bare", None)
    code, _, err = _run(["deploy", "render", "--image", IMAGE, "--config", str(bare)], capsys)
    assert code == 2 and "has no deploy section" in err


def test_a_failed_render_leaves_the_previous_manifests_whole(tmp_path: Path) -> None:
    good = parse_deploy_config({"namespace": "ml"}, default_name="churn")
    render_deployment(_release(), good, tmp_path / "deploy")  # type: ignore[arg-type]
    before = {p.name: p.read_bytes() for p in (tmp_path / "deploy" / "base").iterdir()}
    newer = parse_deploy_config({"namespace": "ml", "kubernetes-version": "1.99"}, default_name="churn")
    with pytest.raises(ConfigError, match="newer than the bundled schemas"):
        render_deployment(_release(), newer, tmp_path / "deploy")  # type: ignore[arg-type]
    after = {p.name: p.read_bytes() for p in (tmp_path / "deploy" / "base").iterdir()}
    assert after == before
    assert [p.name for p in (tmp_path / "deploy").iterdir()] == ["base"]  # no scratch left behind


def test_a_folder_mlci_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "deploy" / "base").mkdir(parents=True)
    (tmp_path / "deploy" / "base" / "mine.yaml").write_text("kind: Secret\n")
    config = parse_deploy_config({"namespace": "ml"}, default_name="churn")
    with pytest.raises(InputError, match="was not written by mlci deploy render"):
        render_deployment(_release(), config, tmp_path / "deploy")  # type: ignore[arg-type]
    assert (tmp_path / "deploy" / "base" / "mine.yaml").is_file()


# -- policy scan ------------------------------------------------------------------------------


def _checkov() -> str | None:
    local = Path(sys.prefix) / "tools" / "checkov" / "bin" / "checkov"
    return str(local) if local.exists() else shutil.which("checkov")


@pytest.mark.slow
@pytest.mark.parametrize("target", ["kubernetes", "kserve"])
def test_rendered_manifests_pass_checkovs_kubernetes_policies(tmp_path: Path, target: str) -> None:
    checkov = _checkov()
    require(checkov is not None, "checkov", "scripts/test installs it in .venv/tools/checkov")
    assert checkov is not None
    config = parse_deploy_config({"target": target, "namespace": "ml"}, default_name="churn")
    result = render_deployment(_release(), config, tmp_path / "deploy")  # type: ignore[arg-type]
    scanned = Path(result.folder)
    if target == "kserve":
        # checkov has no policies for the InferenceService kind: its predictor's pod spec is
        # scanned as the Pod KServe makes of it.
        service = yaml.safe_load((scanned / "inferenceservice.yaml").read_text())
        predictor = dict(service["spec"]["predictor"])
        predictor.pop("minReplicas"), predictor.pop("maxReplicas")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": service["metadata"], "spec": predictor}
        scanned = tmp_path / "scan"
        scanned.mkdir()
        (scanned / "pod.yaml").write_text(yaml.safe_dump(pod))
        shutil.copy(Path(result.folder) / "networkpolicy.yaml", scanned)
    done = subprocess.run(
        [checkov, "-d", str(scanned), "--framework", "kubernetes", "--quiet", "--compact", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    reports = [r for r in reports if "results" in r]
    failed = [c["check_id"] + " " + c["check_name"] for r in reports for c in r["results"]["failed_checks"]]
    passed = sum(r["summary"]["passed"] for r in reports)
    assert not failed, failed
    assert passed >= 30  # the scan looked at the pod specs, not at nothing


# -- the container spec on a real engine ------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_the_rendered_container_runs_on_docker_and_answers_its_probes(
    python_base_image: str, image_registry: str, tmp_path: Path
) -> None:
    from mlci_lib.deploy.podrun import run_container_spec
    from mlci_lib.image import build_image, push_image

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    model = save_model(
        LogisticRegression().fit(frame, (frame.a > 0).astype(int)),
        tmp_path / "model",
        sample_input=frame.head(),
    )
    built = build_image(
        model,
        repository=f"{image_registry}/mlci-test/deploy",
        tags=["podrun"],
        base_image=python_base_image,
        python_version="3.11",
    )
    pushed = push_image(built.reference, require_smoke=False)
    release = make_release(
        image=pushed.digest_reference,
        model_name="deploy",
        model_version=None,
        model_digest=built.model_digest,
        verdict_digest=None,
        user="10001:10001",
    )
    config = parse_deploy_config({"namespace": "ml"}, default_name="deploy")
    pod = manifests(config, release)["deployment.yaml"]["spec"]["template"]["spec"]
    result = run_container_spec(pod["containers"][0], port=free_port(), pod_security=pod["securityContext"])
    assert result.passed, result.message
    assert [p.probe for p in result.probes] == ["startup", "liveness", "readiness"]
    assert container_spec(config, release)["image"] == pushed.digest_reference
