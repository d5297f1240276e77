"""The pipeline's deploy stage: render the pushed image's manifests, verify the deployment, link it.

The docker tests release a real scikit-learn model through ``mlci run`` (image build, smoke test
and push to the session's registry), then run the rendered Deployment's container spec on the
Docker engine, as a cluster would run it, while the deploy stage verifies it at its address. No
Kubernetes API server runs here (see the README): the manifests are validated by schema, and the
container spec is proven on Docker.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from mlci_lib.cli import main
from mlci_lib.models import save_model
from mlci_lib.pipeline import PipelineVerdict, StageRecord
from mlci_lib.pipeline.render import pipeline_markdown
from mlci_lib.report import render_report
from tests.helpers.components import free_port
from tests.test_pipeline import read_verdict, small_pipeline, write_project

DEPLOY_SECTION = {"target": "kubernetes", "name": "churn", "namespace": "ml", "replicas": 2}


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"tenure": rng.integers(0, 72, n), "charges": rng.normal(70, 20, n).round(2)})


# -- bad input: one line, exit 2, before anything runs ------------------------------------------


def _with_deploy(stage: dict[str, Any] | None, section: Any = DEPLOY_SECTION) -> dict[str, Any]:
    config = small_pipeline(deploy=stage if stage is not None else {})
    if section is not None:
        config["deploy"] = section
    return config


@pytest.mark.parametrize(
    ("stage", "section", "expected"),
    [
        pytest.param({}, None, "no deploy section", id="no-deploy-section"),
        pytest.param({"mode": "blue"}, DEPLOY_SECTION, "stages.deploy.mode", id="unknown-mode"),
        pytest.param(
            {"mode": "gitops", "verify": {"url": "http://x.test"}}, DEPLOY_SECTION,
            "cannot run with mode: gitops", id="verify-with-gitops",
        ),
        pytest.param(
            {"apply": {"timeout": "5m"}}, DEPLOY_SECTION, "stages.deploy.apply is read only with mode: apply",
            id="apply-options-in-render-mode",
        ),
        pytest.param(
            {"verify": {"url": "ftp://x"}}, DEPLOY_SECTION, "stages.deploy.verify.url", id="not-http"
        ),
        pytest.param({}, {**DEPLOY_SECTION, "replicas": 0}, "deploy.replicas", id="bad-deploy-section"),
        pytest.param({}, {**DEPLOY_SECTION, "nmespace": "ml"}, "did you mean 'namespace'", id="typo"),
    ],
)  # fmt: skip
def test_a_bad_deploy_stage_stops_the_run_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stage: dict[str, Any], section: Any, expected: str
) -> None:
    config = write_project(tmp_path, _with_deploy(stage, section))
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "model").exists(), "training ran before the deploy stage was checked"


def test_deploy_needs_a_pushed_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_project(tmp_path, _with_deploy({}))
    assert main(["run", "--config", str(config)]) == 2
    verdict = read_verdict(tmp_path)
    deploy = next(s for s in verdict["stages"] if s["name"] == "deploy")
    assert deploy["status"] == "error" and "deploy needs a passed image-push stage" in deploy["message"]
    assert verdict["failed_stage"] == "deploy" and verdict["deployment"] is None
    assert not (tmp_path / "deploy").exists(), "manifests were rendered without a pushed image"


def test_render_refuses_a_pipeline_verdict_without_a_pushed_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real pipeline verdict of a run with no image stages: nothing was released to deploy."""
    config = write_project(tmp_path, {**small_pipeline(), "deploy": DEPLOY_SECTION})
    assert main(["run", "--config", str(config)]) == 0
    capsys.readouterr()
    verdict = tmp_path / ".mlci" / "pipeline-verdict.json"
    code = main(["deploy", "render", "--release", str(verdict), "--config", str(config)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "has no passed image-build stage" in err[0], err
    assert not (tmp_path / "deploy").exists()
    code = main(["deploy", "verify", "http://127.0.0.1:9", "--release", str(verdict)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "has no passed image-smoke stage" in err[0], err


def test_verify_needs_a_smoke_result_or_a_release(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "verify", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give --smoke FILE, or --release FILE" in err[0]


def test_deploy_runs_after_the_push_and_before_promotion() -> None:
    from mlci_lib.pipeline import STAGES

    assert STAGES.index("image-push") < STAGES.index("deploy") < STAGES.index("promote")


def test_the_action_installer_knows_every_extra_of_all() -> None:
    """`extras: all` of the actions installs what `pip install mlci[all]` does, deploy included."""
    import re

    import tomllib

    from mlci_lib.install import KNOWN_EXTRAS
    from tests.helpers.components import REPO_ROOT

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    (spec,) = project["project"]["optional-dependencies"]["all"]
    match = re.fullmatch(r"mlci\[([a-z,]+)\]", spec)
    assert match is not None
    assert sorted(KNOWN_EXTRAS) == sorted(match.group(1).split(","))


@pytest.mark.parametrize("model_name", ["churn", "Churn_Model.v2", "x-" * 60])
def test_mlci_init_writes_a_deploy_section_that_renders(tmp_path: Path, model_name: str) -> None:
    """The release workflow's deploy job renders the deploy: section mlci init wrote, for any model name."""
    from mlci_lib.deploy import parse_deploy_config
    from mlci_lib.pipeline import load_config

    assert main(["init", "--dir", str(tmp_path), "--model-name", model_name]) == 0
    config = load_config(tmp_path / "mlci.yaml", environ={})
    deploy = parse_deploy_config(config.raw.get("deploy"), default_name=config.model_name)
    assert deploy.target == "kubernetes" and deploy.namespace == "default" and len(deploy.name) <= 63
    assert "deploy" not in config.stages, "the deploy stage stays commented out until a user turns it on"


# -- the verdict and the report ------------------------------------------------------------------


def _verdict_with(deployment: dict[str, Any]) -> PipelineVerdict:
    return PipelineVerdict(
        passed=True,
        status="passed",
        failed_stage=None,
        git={"commit": "0123456789abcdef0123456789abcdef01234567"},
        data_fingerprint=None,
        stages=(StageRecord("deploy", "passed", "rendered", 0.1),),
        image={"digest": "sha256:" + "ab" * 32, "reference": "r.test/churn@sha256:" + "ab" * 32},
        deployment=deployment,
    )


def test_the_report_links_the_image_to_its_deployment_through_the_escaper() -> None:
    hostile = {
        "mode": "render",
        "target": "kubernetes",
        "namespace": "ml",
        "name": "churn",
        "image_digest": "sha256:" + "ab" * 32,
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "revision": "`|<b>x</b>",
        "time": "2026-12-01T00:00:00Z <img src=x>",
        "url": "http://churn.ml.svc",
        "verified": True,
        "passed": True,
    }
    verdict = _verdict_with(hostile)
    report = render_report(verdict.to_dict()).markdown
    head = report.split("\n\n")[1]
    assert "image `sha256:abababababab" in head and "→ deployment kubernetes `ml/churn` (render)" in head
    for line in (head, pipeline_markdown(verdict)):
        # Text is escaped; the revision stays inside one code span, where HTML is inert.
        assert "at 2026-12-01T00:00:00Z &lt;img src=x&gt;" in line and "<img" not in line, line
        assert "revision `'\\|<b>x</b>`" in line, line
    assert "| deployment namespace | `ml` |" in report
    assert "deployment: kubernetes ml/churn (render) revision `|<b>x</b>" in verdict.text()


# -- a real release, deployed as rendered on Docker ---------------------------------------------


def _project(root: Path, registry: str, base_image: str, verify_port: int) -> Path:
    data = _frame(300, 0)
    fitted = LogisticRegression(max_iter=300).fit(data, data.tenure < 20)
    save_model(fitted, root / "model", sample_input=data.head(), name="churn")
    _frame(30, 1).to_csv(root / "sample.csv", index=False)
    config = {
        "version": 1,
        "model": {"name": "churn", "path": "model"},
        "stages": {
            "image-build": {
                "repository": f"{registry}/mlci-test/pipeline-deploy",
                "base-image": base_image,
                "python-version": "3.11",
                "reference": "sample.csv",  # baked in: the deploy stage renders its alert rules
            },
            "image-smoke": {"data": "sample.csv", "requests": 5},
            "image-push": {},
            "deploy": {"mode": "render", "verify": {"url": f"http://127.0.0.1:{verify_port}", "requests": 5}},
        },
        "deploy": DEPLOY_SECTION,
    }
    (root / "mlci.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    for command in (
        ["init", "-q"],
        ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x"],
    ):
        subprocess.run(["git", *command], cwd=root, check=True)
    return root / "mlci.yaml"


@pytest.fixture(scope="module")
def released(
    tmp_path_factory: pytest.TempPathFactory, image_registry: str, python_base_image: str
) -> dict[str, Any]:
    """A project whose ``mlci run --until image-push`` built, smoke-tested and pushed its image."""
    root = tmp_path_factory.mktemp("pipeline-deploy")
    port = free_port()
    config = _project(root, image_registry, python_base_image, port)
    assert main(["run", "--config", str(config), "--until", "image-push"]) == 0
    verdict = read_verdict(root)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout
    return {"root": root, "config": config, "port": port, "verdict": verdict, "commit": commit.strip()}


def _rendered_pod(released: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """``mlci deploy render --release <the pipeline verdict>``, as a CI job after the release runs it."""
    root = released["root"]
    digest = released["verdict"]["image"]["digest"]
    result = tmp_path / "render.json"
    code = main([
        "deploy", "render", "--release", str(root / ".mlci" / "pipeline-verdict.json"),
        "--image-digest", digest, "--config", str(released["config"]), "--output", str(tmp_path / "out"),
        "--result-file", str(result),
    ])  # fmt: skip
    assert code == 0
    rendered = json.loads(result.read_text())
    assert rendered["image_digest"] == digest and rendered["model_name"] == "churn"
    deployment = yaml.safe_load((tmp_path / "out" / "base" / "deployment.yaml").read_text())
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        == released["verdict"]["image"]["reference"]
    )
    return dict(deployment["spec"]["template"]["spec"])


def _while_deployed(pod: dict[str, Any], port: int, action: Callable[[], None]) -> None:
    from mlci_lib.deploy.podrun import run_container_spec

    ran = run_container_spec(
        pod["containers"][0], port=port, pod_security=pod["securityContext"], while_running=action
    )
    assert ran.passed, ran.message


@pytest.mark.docker
@pytest.mark.slow
def test_the_deploy_stage_renders_verifies_and_links_the_deployment(
    released: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, digest = released["root"], released["verdict"]["image"]["digest"]
    pod = _rendered_pod(released, tmp_path)
    codes: list[int] = []
    _while_deployed(
        pod,
        released["port"],
        lambda: codes.append(main(["run", "--config", str(released["config"]), "--stage", "deploy"])),
    )
    assert codes == [0], capsys.readouterr()
    verdict = read_verdict(root)
    assert verdict["passed"] is True
    stage = next(s for s in verdict["stages"] if s["name"] == "deploy")
    assert (
        stage["status"] == "passed" and f"verified at http://127.0.0.1:{released['port']}" in stage["message"]
    )
    record = stage["verdict"]
    assert record["schema"] == "mlci.deployment" and record["image_digest"] == digest
    checks = {c["name"]: c["outcome"] for c in record["verify"]["checks"]}
    # No gate ran in this project: the image carries no verdict digest to check.
    assert checks == {"health": "pass", "model digest": "pass", "predictions": "pass"}
    assert record["verify"]["image_digest"] == digest
    assert (root / "deploy" / "base" / "deployment.yaml").is_file()
    # the alert rules of mlci monitor render, for the job the ServiceMonitor gives: a PrometheusRule
    rule = yaml.safe_load((root / "deploy" / "base" / "prometheusrule.yaml").read_text())
    rendered = yaml.safe_load((root / ".mlci" / "monitoring" / "alerts.yml").read_text())
    assert rule["kind"] == "PrometheusRule" and rule["spec"] == rendered
    assert {r["labels"]["job"] for g in rendered["groups"] for r in g["rules"]} == {"churn"}
    assert "prometheusrule.yaml" in record["files"]
    link = verdict["deployment"]
    assert link["image_digest"] == digest == verdict["image"]["digest"]
    assert (link["target"], link["namespace"], link["name"], link["mode"]) == (
        "kubernetes",
        "ml",
        "churn",
        "render",
    )
    assert link["commit"] == released["commit"] and link["time"].endswith("Z") and link["verified"] is True
    # The earlier stages' records are kept: the chain runs commit → image → deployment.
    assert {s["name"]: s["status"] for s in verdict["stages"]}["image-push"] == "passed"
    report = tmp_path / "report.md"
    verdict_file = str(root / ".mlci" / "pipeline-verdict.json")
    assert main(["report", verdict_file, "--report-file", str(report), "--comment", "false"]) == 0
    assert "→ deployment kubernetes `ml/churn` (render)" in report.read_text()


@pytest.mark.docker
@pytest.mark.slow
def test_another_model_behind_the_url_fails_the_stage_and_drops_the_link(
    released: dict[str, Any], tmp_path: Path
) -> None:
    from mlci_lib.serving.server import ModelServer

    data = _frame(200, 3)
    other = save_model(
        LogisticRegression(max_iter=300).fit(data, data.charges > 70),
        tmp_path / "other",
        sample_input=data.head(),
    )
    with ModelServer(other, port=released["port"]) as server:
        server.wait_ready(60)
        assert main(["run", "--config", str(released["config"]), "--stage", "deploy"]) == 1
    verdict = read_verdict(released["root"])
    stage = next(s for s in verdict["stages"] if s["name"] == "deploy")
    assert stage["status"] == "failed" and "NOT verified" in stage["message"]
    assert "model digest" in stage["message"] and "predictions" in stage["message"]
    assert verdict["passed"] is False and verdict["failed_stage"] == "deploy"
    assert verdict["deployment"]["verified"] is False


@pytest.mark.docker
@pytest.mark.slow
def test_nothing_at_the_url_is_one_line_and_exit_2(
    released: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--config", str(released["config"]), "--stage", "deploy"]) == 2
    verdict = read_verdict(released["root"])
    stage = next(s for s in verdict["stages"] if s["name"] == "deploy")
    assert stage["status"] == "error" and "does not answer" in stage["message"], stage
    assert verdict["deployment"] is None, "a deployment that was not verified is not linked"


def _variant(released: dict[str, Any], name: str, stage: dict[str, Any]) -> Path:
    """The released project's pipeline with another deploy stage, beside it (same verdict on disk)."""
    config = yaml.safe_load(released["config"].read_text())
    config["stages"]["deploy"] = stage
    path = released["root"] / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


KUBE_TOKEN = "kube-T0ken-5ecret-0123456789abcdef"


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_mode_apply_runs_mlci_deploy_apply_and_masks_the_kubeconfig(released: dict[str, Any]) -> None:
    """No API server runs here: apply gets as far as asking the cluster, which does not answer."""
    from mlci_lib.pipeline import run_pipeline

    server = f"https://127.0.0.1:{free_port()}"
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "staging", "cluster": {"server": server}}],
        "users": [{"name": "deployer", "user": {"token": KUBE_TOKEN}}],
        "contexts": [{"name": "ci", "context": {"cluster": "staging", "user": "deployer"}}],
        "current-context": "ci",
    })  # fmt: skip
    config = _variant(
        released, "apply", {"mode": "apply", "apply": {"kubeconfig-env": "KUBECONFIG_CONTENT", "timeout": 30}}
    )
    lines: list[str] = []
    masked: list[str] = []
    environ = {**os.environ, "KUBECONFIG_CONTENT": kubeconfig, "GITHUB_ACTIONS": "true"}
    verdict = run_pipeline(
        config,
        only=["deploy"],
        environ=environ,
        progress=lines.append,
        command_output=lines.append,
        mask=masked.append,
    )
    stage = verdict.stage("deploy")
    assert stage is not None and stage.status == "error", verdict.text()
    assert "mlci deploy apply exited with code 2" in stage.message
    assert f"cannot read deployment.apps/churn from the cluster ci at {server}" in stage.message
    assert KUBE_TOKEN in masked, "the kubeconfig's token was not masked for the run"
    assert not any(KUBE_TOKEN in line for line in lines), "the token reached the log"
    assert verdict.deployment is None


@pytest.mark.docker
@pytest.mark.slow
def test_mode_gitops_commits_the_manifests_and_links_the_commit(
    released: dict[str, Any], tmp_path: Path
) -> None:
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    seed = tmp_path / "seed"
    seed.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True)
    (seed / "README.md").write_text("cluster state\n")
    subprocess.run([*git, "add", "-A"], cwd=seed, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "seed"], cwd=seed, check=True)
    repository = tmp_path / "cluster-state.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(repository)], check=True)
    gitops = {"repository": str(repository), "path": "apps/churn", "no-pull-request": True}
    config = _variant(released, "gitops", {"mode": "gitops", "gitops": gitops})
    assert main(["run", "--config", str(config), "--stage", "deploy"]) == 0
    verdict = read_verdict(released["root"])
    link = verdict["deployment"]
    head = subprocess.run(
        ["git", "rev-parse", "mlci/deploy-churn"], cwd=repository, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert link["mode"] == "gitops" and link["revision"] == head
    shown = subprocess.run(
        ["git", "show", f"{head}:apps/churn/base/deployment.yaml"],
        cwd=repository,
        capture_output=True,
        text=True,
    )
    assert released["verdict"]["image"]["reference"] in shown.stdout
    # mlci deploy gitops, in its own process, rendered the stage's alert rules too
    rule = subprocess.run(
        ["git", "show", f"{head}:apps/churn/base/prometheusrule.yaml"],
        cwd=repository,
        capture_output=True,
        text=True,
    )
    assert rule.returncode == 0 and "MlciFeatureMeanShift" in rule.stdout, rule.stderr
