"""The alert rules of `mlci monitor render` in the deploy manifests, as a Prometheus Operator
PrometheusRule: validated against its CRD schema, and still rules promtool accepts and whose own
unit tests pass once extracted from it."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from mlci_lib.cli import main
from mlci_lib.deploy import make_release, parse_deploy_config, render_deployment
from mlci_lib.deploy.config import with_alert_rules
from mlci_lib.deploy.crds import validate_custom
from mlci_lib.errors import InputError
from mlci_lib.models import save_model
from mlci_lib.monitor.render import read_rules_file
from mlci_lib.runner import CiRunner
from tests.helpers.components import require

IMAGE = "registry.example:5000/team/churn@sha256:" + "a" * 64


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model, its training data and an mlci.yaml whose deploy: section names the Service churn-api."""
    folder = tmp_path_factory.mktemp("alert-rules")
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"tenure": rng.integers(0, 72, 400), "charges": rng.normal(70, 20, 400).round(2)})
    train.to_csv(folder / "train.csv", index=False)
    fitted = LogisticRegression(max_iter=300).fit(train, train.tenure < 20)
    save_model(fitted, folder / "model", sample_input=train.head(), name="churn")
    config = {
        "version": 1,
        "model": {"name": "churn", "path": "model"},
        "stages": {"gate": {"rules": "gate.yaml"}},
        "deploy": {"name": "churn-api", "namespace": "ml", "labels": {"release": "prometheus"}},
    }
    (folder / "mlci.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv, runner=CiRunner(environ={}))
    return code, capsys.readouterr().err


def _rules(project: Path, out: str, capsys: pytest.CaptureFixture[str], *extra: str) -> Path:
    code, err = _cli(
        ["monitor", "render", "--model", str(project / "model"), "--reference", str(project / "train.csv"),
         "-o", str(project / out), *extra],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    return project / out / "alerts.yml"


def _promtool() -> str:
    binary = shutil.which("promtool")
    require(binary is not None, "promtool", "install Debian's prometheus (scripts/test does)")
    assert binary is not None
    return binary


def test_the_rules_become_a_prometheus_rule_that_validates_and_stays_the_same_rules(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # for the deployment of mlci.yaml: the job its ServiceMonitor gives the series, the Service's name
    rules = _rules(project, "monitoring", capsys, "--deploy-config", str(project / "mlci.yaml"))
    document = yaml.safe_load(rules.read_text())
    assert {r["labels"]["job"] for r in document["groups"][0]["rules"]} == {"churn-api"}
    code, err = _cli(
        ["deploy", "render", "--image", IMAGE, "--config", str(project / "mlci.yaml"), "--alert-rules",
         str(rules), "--output", str(tmp_path / "deploy")],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    base = tmp_path / "deploy" / "base"
    body = yaml.safe_load((base / "prometheusrule.yaml").read_text())
    assert (body["apiVersion"], body["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert body["metadata"]["name"] == "churn-api" and body["metadata"]["namespace"] == "ml"
    # the Operator's ruleSelector usually matches a label: deploy.labels reach the rule too
    assert body["metadata"]["labels"]["release"] == "prometheus"
    assert "prometheusrule.yaml" in yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]
    validate_custom(body, where="prometheusrule.yaml")  # the vendored CRD schema, strictly
    assert body["spec"] == document  # one source: the renderer's rules, as written

    # extracted, the rules pass promtool's check and the unit tests mlci monitor render wrote
    extracted = tmp_path / "extracted"
    extracted.mkdir()
    (extracted / "alerts.yml").write_text(yaml.safe_dump({"groups": body["spec"]["groups"]}))
    shutil.copy(rules.with_name("alerts.test.yml"), extracted / "alerts.test.yml")
    tool = _promtool()
    check = subprocess.run(
        [tool, "check", "rules", "alerts.yml"], cwd=extracted, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tests = subprocess.run(
        [tool, "test", "rules", "alerts.test.yml"], cwd=extracted, capture_output=True, text=True
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_a_rule_the_crd_does_not_know_is_refused_naming_the_field(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = read_rules_file(_rules(project, "monitoring-typo", capsys, "--job", "churn-api"))
    broken = copy.deepcopy(rules)
    broken["groups"][0]["rules"][0]["fore"] = broken["groups"][0]["rules"][0].pop("for")
    config = with_alert_rules(
        parse_deploy_config({"name": "churn-api", "namespace": "ml"}, default_name="churn"),
        broken,
        source="x",
    )
    release = make_release(
        image=IMAGE,
        model_name="churn",
        model_version="1",
        model_digest=None,
        verdict_digest=None,
        user="10001",
    )
    with pytest.raises(InputError, match=r"at spec\.groups\.0\.rules\.0: Additional properties .*'fore'"):
        render_deployment(release, config, tmp_path / "deploy")
    assert not (tmp_path / "deploy" / "base").exists()  # nothing written


def test_bad_alert_rules_are_one_line_and_exit_2(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_job = _rules(project, "monitoring-other-job", capsys)  # job churn: not what the Service gives
    dashboard = other_job.with_name("dashboard.json")
    listed = tmp_path / "listed.yml"
    listed.write_text("groups:\n  - name: g\n    rules:\n      - {alert: A, expr: up == 0, labels: [job]}\n")
    no_monitor = tmp_path / "no-monitor.yaml"
    no_monitor.write_text(
        (project / "mlci.yaml")
        .read_text()
        .replace("namespace: ml", "namespace: ml\n  service-monitor: false")
    )
    for argv, message in (
        (["deploy", "render", "--alert-rules", str(other_job)], "mlci monitor render --job churn-api"),
        (["deploy", "render", "--alert-rules", str(dashboard)], "has no list of groups"),
        (["deploy", "render", "--alert-rules", str(tmp_path / "none.yml")], "none.yml"),
        (["deploy", "render", "--alert-rules", str(listed)], "rules[0].labels must map names to text"),
        (
            ["monitor", "render", "--model", str(project / "model"), "--reference",
             str(project / "train.csv"), "-o", str(tmp_path / "o"), "--deploy-config", str(no_monitor)],
            "renders no ServiceMonitor",
        ),
    ):  # fmt: skip
        if argv[1] == "render" and argv[0] == "deploy":
            argv += [
                "--image",
                IMAGE,
                "--config",
                str(project / "mlci.yaml"),
                "--output",
                str(tmp_path / "d"),
            ]
        code, err = _cli(argv, capsys)
        assert code == 2, err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "d").exists()
