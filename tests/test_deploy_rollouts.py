"""`deploy.rollout`: an Argo Rollout and an AnalysisTemplate running `mlci deploy analyze`.

No Argo controller can run here: the Rollout's pod template and the analysis Job are validated
strictly as the built-in objects they are (PodTemplateSpec, JobSpec), the Argo resources' own
fields are checked against the fields Argo Rollouts documents, and the analysis Job's command
line is run through mlci's own CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlci_lib.cli import main
from mlci_lib.deploy import make_release, parse_deploy_config, render_deployment
from mlci_lib.deploy.manifests import manifests
from mlci_lib.deploy.validate import validate_manifest
from mlci_lib.errors import ConfigError, InputError
from tests.helpers.components import free_port

IMAGE = "registry.example:5000/team/churn@sha256:" + "a" * 64
ROLLOUT = {
    "steps": [10, 50],
    "pause": "5m",
    "analysis": True,
    "prometheus": "http://prometheus.monitoring:9090",
}

# The fields Argo Rollouts documents (argo-rollouts.readthedocs.io: features/specification,
# features/canary, analysis; v1.7), level by level, for the parts mlci renders.
ROLLOUT_SPEC = {
    "replicas",
    "selector",
    "template",
    "workloadRef",
    "minReadySeconds",
    "revisionHistoryLimit",
    "paused",
    "progressDeadlineSeconds",
    "progressDeadlineAbort",
    "restartAt",
    "rollbackWindow",
    "strategy",
    "analysis",
}
CANARY = {
    "canaryService",
    "stableService",
    "canaryMetadata",
    "stableMetadata",
    "maxUnavailable",
    "maxSurge",
    "scaleDownDelaySeconds",
    "scaleDownDelayRevisionLimit",
    "abortScaleDownDelaySeconds",
    "analysis",
    "steps",
    "trafficRouting",
    "antiAffinity",
    "pingPong",
    "dynamicStableScale",
    "minPodsPerReplicaSet",
}
STEP = {
    "setWeight",
    "pause",
    "analysis",
    "experiment",
    "setCanaryScale",
    "setHeaderRoute",
    "setMirrorRoute",
    "plugin",
}
ANALYSIS_SPEC = {"metrics", "args", "dryRun", "measurementRetention"}
METRIC = {
    "name",
    "interval",
    "initialDelay",
    "count",
    "successCondition",
    "failureCondition",
    "failureLimit",
    "inconclusiveLimit",
    "consecutiveErrorLimit",
    "provider",
}
JOB_PROVIDER = {"metadata", "spec"}


def _release() -> Any:
    return make_release(
        image=IMAGE,
        model_name="churn",
        model_version="3",
        model_digest="sha256:" + "b" * 64,
        verdict_digest=None,
        user="10001:10001",
    )


def _bodies(**rollout: Any) -> dict[str, dict[str, Any]]:
    config = parse_deploy_config(
        {
            "namespace": "ml",
            "autoscaling": {"min-replicas": 2, "max-replicas": 4},
            "rollout": {**ROLLOUT, **rollout},
        },
        default_name="churn",
    )
    return manifests(config, _release())


def test_a_rollout_replaces_the_deployment_and_validates(tmp_path: Path) -> None:
    config = parse_deploy_config({"namespace": "ml", "rollout": ROLLOUT}, default_name="churn")
    result = render_deployment(_release(), config, tmp_path / "deploy")
    assert "deployment.yaml" not in result.files
    # Against Argo Rollouts' CRD schemas, and their pod template and Job as built-in objects.
    assert {"rollout.yaml", "analysistemplate.yaml"} <= set(result.validated)
    assert result.custom_kinds == ()
    rendered = yaml.safe_load((tmp_path / "deploy" / "base" / "rollout.yaml").read_text())
    assert rendered["kind"] == "Rollout" and rendered["apiVersion"] == "argoproj.io/v1alpha1"
    kustomization = yaml.safe_load((tmp_path / "deploy" / "base" / "kustomization.yaml").read_text())
    assert "rollout.yaml" in kustomization["resources"]


def test_the_rollout_has_the_deployments_pod_template_and_canary_steps() -> None:
    bodies = _bodies()
    plain = manifests(parse_deploy_config({"namespace": "ml"}, default_name="churn"), _release())
    rollout = bodies["rollout.yaml"]
    assert rollout["spec"]["template"] == plain["deployment.yaml"]["spec"]["template"]
    assert rollout["spec"]["selector"] == plain["deployment.yaml"]["spec"]["selector"]
    assert set(rollout["spec"]) <= ROLLOUT_SPEC
    canary = rollout["spec"]["strategy"]["canary"]
    assert set(canary) <= CANARY and all(set(step) <= STEP for step in canary["steps"])
    assert canary["steps"] == [
        {"setWeight": 10},
        {"pause": {"duration": "5m"}},
        {"analysis": {"templates": [{"templateName": "churn-canary-analysis"}]}},
        {"setWeight": 50},
        {"pause": {"duration": "5m"}},
        {"analysis": {"templates": [{"templateName": "churn-canary-analysis"}]}},
    ]
    assert canary["canaryMetadata"]["labels"] == {"mlci.io/track": "canary"}
    # The autoscaler scales the Rollout, and the scraped series carry the track label.
    assert bodies["horizontalpodautoscaler.yaml"]["spec"]["scaleTargetRef"]["kind"] == "Rollout"
    assert bodies["servicemonitor.yaml"]["spec"]["podTargetLabels"] == ["mlci.io/track"]


def test_the_analysis_template_runs_mlci_deploy_analyze_in_the_released_image(
    capsys: pytest.CaptureFixture[str],
) -> None:
    template = _bodies(window="3m")["analysistemplate.yaml"]
    assert template["metadata"]["name"] == "churn-canary-analysis"
    assert set(template["spec"]) <= ANALYSIS_SPEC
    (metric,) = template["spec"]["metrics"]
    assert set(metric) <= METRIC and set(metric["provider"]) == {"job"}
    assert set(metric["provider"]["job"]) <= JOB_PROVIDER
    pod = metric["provider"]["job"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE and pod["restartPolicy"] == "Never"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["command"] == ["/opt/mlci/venv/bin/python", "-m", "mlci_lib", "deploy", "analyze"]
    args = container["args"]
    assert args[args.index("--window") + 1] == "3m"
    assert args[args.index("--canary") + 1] == 'namespace="ml",service="churn",mlci_io_track="canary"'
    # mlci's own CLI takes the job's arguments: against a Prometheus that does not answer, the
    # one-line exit 2 of an unreachable server, not a usage error.
    url = f"http://127.0.0.1:{free_port()}"
    args[args.index("--prometheus") + 1] = url
    code = main(["deploy", "analyze", *args])
    err = capsys.readouterr().err
    assert code == 2 and f"Prometheus at {url} does not answer" in err, err


def test_the_embedded_pod_template_and_job_are_validated_strictly() -> None:
    bodies = _bodies()
    rollout = bodies["rollout.yaml"]
    rollout["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFs"] = True
    with pytest.raises(
        InputError, match=r"PodTemplate inside Rollout\): PodTemplate does not validate.*readOnlyRootFs"
    ):
        validate_manifest(rollout, "1.31", where="rollout.yaml")
    template = bodies["analysistemplate.yaml"]
    template["spec"]["metrics"][0]["provider"]["job"]["spec"]["backoffLimit"] = "none"
    with pytest.raises(
        InputError, match=r"Job inside AnalysisTemplate\): Job does not validate.*backoffLimit"
    ):
        validate_manifest(template, "1.31", where="analysistemplate.yaml")


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        pytest.param({"steps": [50, 10]}, "rollout.steps must be rising", id="falling-steps"),
        pytest.param({"steps": [100]}, "rollout.steps must be rising", id="full-weight"),
        pytest.param({"pause": "soon"}, "rollout.pause", id="pause"),
        pytest.param(
            {"prometheus": None}, "rollout.prometheus must be the cluster's Prometheus", id="no-prometheus"
        ),
        pytest.param({"stepz": [1]}, "stepz", id="unknown-key"),
        pytest.param({"on-inconclusive": "maybe"}, "on-inconclusive", id="policy"),
    ],
)
def test_a_bad_rollout_section_names_the_key(rollout: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_deploy_config({"rollout": {**ROLLOUT, **rollout}}, default_name="churn")


def test_a_rollout_needs_the_kubernetes_target() -> None:
    with pytest.raises(ConfigError, match="needs target: kubernetes"):
        parse_deploy_config({"target": "kserve", "rollout": ROLLOUT}, default_name="churn")


def test_render_rollout_option_without_analysis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mlci.yaml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "model": {"name": "churn"},
                "stages": {"gate": {"rules": "gate.yaml"}},
                "deploy": {"namespace": "ml"},
            }
        )
    )
    code = main(
        [
            "deploy",
            "render",
            "--image",
            IMAGE,
            "--model-name",
            "churn",
            "--config",
            str(tmp_path / "mlci.yaml"),
            "--output",
            str(tmp_path / "out"),
            "--rollout",
        ]
    )
    assert code == 0, capsys.readouterr().err
    files = {p.name for p in (tmp_path / "out" / "base").iterdir()}
    assert "rollout.yaml" in files and "analysistemplate.yaml" not in files and "deployment.yaml" not in files
