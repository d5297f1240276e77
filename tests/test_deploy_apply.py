"""`mlci deploy apply`: what can be exercised without a Kubernetes API server, for real.

No API server runs on the test machines, and ``kubectl apply --dry-run=client`` needs one too
(it asks the server which resources exist), so the tests cover: the kubeconfig read and checked
before kubectl runs, its secrets masked and its temporary file; the real kubectl against a server
that does not answer (exit 2, one line, nothing applied); each step's argv; the parsing of
kubectl's answers; and every bad input the command refuses before it touches a cluster.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
import yaml

from mlci_lib.cli import main
from mlci_lib.deploy.apply import Kubectl, Workload, condensed, parse_applied, restorable, workload_of
from mlci_lib.deploy.config import parse_deploy_config
from mlci_lib.deploy.kubeconfig import kubeconfig_path, parse_kubeconfig
from mlci_lib.errors import ConfigError, InputError
from mlci_lib.runner import CiRunner
from tests.helpers.components import free_port

IMAGE = "registry.example:5000/team/churn@sha256:" + "a" * 64
TOKEN = "kube-T0ken-5ecret-0123456789abcdef"
CLIENT_KEY = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tc2VjcmV0a2V5ZGF0YQ=="

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def _kubeconfig(server: str, *, token: str = TOKEN) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "staging", "cluster": {"server": server}}],
            "users": [{"name": "deployer", "user": {"token": token, "client-key-data": CLIENT_KEY}}],
            "contexts": [
                {"name": "ci", "context": {"cluster": "staging", "user": "deployer", "namespace": "ml"}}
            ],
            "current-context": "ci",
        }
    )


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    body = {
        "version": 1,
        "model": {"name": "churn"},
        "stages": {"gate": {"rules": "gate.yaml"}},
        "deploy": {"namespace": "ml"},
    }
    path = tmp_path / "mlci.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def _run(argv: list[str], tmp_path: Path, *, github: bool = False) -> tuple[int, str, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {
        "MLCI_OUTPUT_FILE": str(tmp_path / "outputs.txt"),
        "MLCI_SUMMARY_FILE": str(tmp_path / "summary.md"),
    }
    if github:
        env["GITHUB_ACTIONS"] = "true"
    code = main(argv, runner=CiRunner(env, stdout=out, stderr=err))
    files = "".join(
        p.read_text() for p in tmp_path.glob("*") if p.is_file() and p.suffix in (".txt", ".md", ".json")
    )
    return code, out.getvalue(), err.getvalue(), files


def _apply(pipeline: Path, *extra: str) -> list[str]:
    return ["deploy", "apply", "--image", IMAGE, "--config", str(pipeline), *extra]


# -- against a server that does not answer: the real kubectl ------------------------------------


@needs_kubectl
@pytest.mark.parametrize("github", [False, True], ids=["plain", "github"])
@pytest.mark.slow
def test_an_unreachable_server_is_one_line_exit_2_with_the_kubeconfig_masked_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: Path, github: bool
) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    monkeypatch.setenv("KUBECONFIG_CONTENT", _kubeconfig(server))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    verdict = tmp_path / "verdict.json"
    code, out, err, files = _run(
        _apply(
            pipeline, "--kubeconfig-env", "KUBECONFIG_CONTENT", "--no-verify", "--verdict-file", str(verdict)
        ),
        tmp_path,
        github=github,
    )
    assert code == 2, out + err
    log = out + err
    error = [line for line in log.splitlines() if "cannot read" in line]
    assert len(error) == 1 and "Traceback" not in log
    assert f"kubectl cannot read deployment.apps/churn from the cluster ci at {server}" in error[0]
    assert "refused" in error[0] and "memcache.go" not in error[0]  # kubectl's error, condensed
    if not github:
        assert err.strip() == error[0]
    for secret in (TOKEN, CLIENT_KEY):
        # On GitHub the runner is told to mask each secret; nothing else carries it.
        masks = [line for line in log.splitlines() if line.startswith("::add-mask::")]
        assert (f"::add-mask::{secret}" in masks) == github
        assert secret not in "\n".join(line for line in log.splitlines() if line not in masks)
        assert secret not in files
    assert json.loads(verdict.read_text())["exit_code"] == 2
    assert list(scratch.iterdir()) == []  # the temporary kubeconfig and render are gone


@needs_kubectl
def test_a_kubeconfig_file_is_used_in_place(tmp_path: Path, pipeline: Path) -> None:
    server = f"https://127.0.0.1:{free_port()}"
    config = tmp_path / "kubeconfig"
    config.write_text(_kubeconfig(server))
    code, out, err, _ = _run(_apply(pipeline, "--kubeconfig", str(config), "--no-verify"), tmp_path)
    assert code == 2 and f"at {server}" in err and TOKEN not in out + err
    assert config.read_text() == _kubeconfig(server)


def test_condensed_keeps_kubectls_own_error_line() -> None:
    stderr = (
        'E1201 23:38:18.417750   26091 memcache.go:265] "Unhandled Error" err="couldn\'t get current server '
        'API group list: Get \\"https://127.0.0.1:9/api?timeout=32s\\": dial tcp 127.0.0.1:9: connect: '
        'connection refused"\n'
        "The connection to the server 127.0.0.1:9 was refused - did you specify the right host or port?\n"
    )
    assert condensed(stderr) == (
        "The connection to the server 127.0.0.1:9 was refused - did you specify the right host or port?"
    )
    assert condensed('error: unable to recognize "x.yaml": no matches for kind "ServiceMonitor"\n') == (
        'unable to recognize "x.yaml": no matches for kind "ServiceMonitor"'
    )


# -- the kubeconfig, read before kubectl runs ------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        (
            f"apiVersion: v1\nusers: [{{name: u, user: {{token: '{TOKEN}}}]\n",
            "does not parse as YAML at line 3",
        ),
        ("- just\n- a list\n", "is not a kubeconfig"),
        ("kind: Config\nclusters: []\n", "sets no current-context"),
        ("kind: Config\ncurrent-context: prod\ncontexts: []\n", "has no context named 'prod'"),
        (
            "kind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
            "clusters: [{name: k, cluster: {certificate-authority-data: x}}]\n",
            "cluster 'k' has no server address",
        ),
    ],
    ids=["not-yaml", "not-a-mapping", "no-current-context", "unknown-context", "no-server"],
)
def test_a_bad_kubeconfig_is_refused_naming_where_it_came_from_and_never_quoting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: Path, text: str, message: str
) -> None:
    monkeypatch.setenv("KC", text)
    code, out, err, files = _run(_apply(pipeline, "--kubeconfig-env", "KC", "--no-verify"), tmp_path)
    assert code == 2, out + err
    assert err.startswith("mlci: error: kubeconfig in $KC") and message in err
    assert len(err.strip().splitlines()) == 1 and TOKEN not in out + err + files


def test_content_that_does_not_parse_is_masked_line_by_line_on_github(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: Path
) -> None:
    monkeypatch.setenv("KC", f"users: [{{name: u, user: {{token: '{TOKEN}}}]\n")
    code, out, err, _ = _run(_apply(pipeline, "--kubeconfig-env", "KC", "--no-verify"), tmp_path, github=True)
    assert code == 2
    assert f"::add-mask::users: [{{name: u, user: {{token: '{TOKEN}}}]" in out + err


def test_the_kubeconfig_from_a_variable_lives_in_a_0600_file_only_while_kubectl_runs() -> None:
    kube = parse_kubeconfig(_kubeconfig("https://10.0.0.1:6443"), source="kubeconfig in $KC")
    assert kube.cluster.context == "ci" and kube.cluster.cluster == "staging"
    assert kube.cluster.server == "https://10.0.0.1:6443" and kube.cluster.namespace == "ml"
    assert set(kube.secrets) == {TOKEN, CLIENT_KEY}
    with kubeconfig_path(kube, None) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert Path(path).read_text() == kube.text
    assert not os.path.exists(path)
    with kubeconfig_path(kube, "/given/file") as given:
        assert given == "/given/file"


@pytest.mark.parametrize(
    "extra, env, message",
    [
        (("--no-verify",), {}, "give the cluster: --kubeconfig FILE or --kubeconfig-env NAME"),
        (
            ("--kubeconfig-env", "KC"),
            {"KC": "x"},
            "give --url URL for the post-deploy checks, or --no-verify",
        ),
        (
            ("--kubeconfig-env", "KC", "--no-verify", "--url", "http://x"),
            {"KC": "x"},
            "give --url URL for the post-deploy checks, or --no-verify",
        ),
        (("--kubeconfig-env", "NOT_SET", "--no-verify"), {}, "$NOT_SET is empty or not set"),
        (
            ("--kubeconfig", "/nonexistent/kc", "--no-verify"),
            {},
            "option --kubeconfig: cannot read /nonexistent/kc",
        ),
        (
            ("--kubeconfig-env", "KC", "--url", "http://127.0.0.1:9"),
            {"KC": _kubeconfig("https://127.0.0.1:9")},
            "give --smoke FILE",
        ),
        (
            ("--kubeconfig-env", "KC", "--url", "churn.ml.svc"),
            {"KC": _kubeconfig("https://127.0.0.1:9")},
            "URL 'churn.ml.svc' is not an http(s) address",
        ),
    ],
    ids=[
        "no-cluster",
        "no-url",
        "url-and-no-verify",
        "empty-variable",
        "unreadable-file",
        "no-smoke",
        "bad-url",
    ],
)
def test_bad_options_are_one_line_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pipeline: Path,
    extra: tuple[str, ...],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err, _ = _run(_apply(pipeline, *extra), tmp_path)
    assert code == 2, out + err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv_change, deploy, message",
    [
        (
            {"--image": "registry.example/churn:v3"},
            {"namespace": "ml"},
            "is not an image reference by digest",
        ),
        ({}, None, "mlci.yaml has no deploy section"),
        ({}, {"namespace": "ml", "rollout": {"analysis": False}}, "does not apply an Argo Rollout"),
    ],
    ids=["tag", "no-deploy-section", "rollout"],
)
def test_what_cannot_be_deployed_stops_before_kubectl_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv_change: dict, deploy: dict | None, message: str
) -> None:
    body: dict = {"version": 1, "model": {"name": "churn"}, "stages": {"gate": {"rules": "gate.yaml"}}}
    if deploy is not None:
        body["deploy"] = deploy
    config = tmp_path / "mlci.yaml"
    config.write_text(yaml.safe_dump(body))
    # kubectl is not even on the PATH: had it been needed, the error would say so.
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("KC", _kubeconfig("https://127.0.0.1:9"))
    image = argv_change.get("--image", IMAGE)
    argv = [
        "deploy",
        "apply",
        "--image",
        image,
        "--config",
        str(config),
        "--kubeconfig-env",
        "KC",
        "--no-verify",
    ]
    code, out, err, _ = _run(argv, tmp_path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, out + err


def test_without_kubectl_the_error_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("KC", _kubeconfig("https://127.0.0.1:9"))
    code, _, err, _ = _run(_apply(pipeline, "--kubeconfig-env", "KC", "--no-verify"), tmp_path)
    assert code == 2 and "needs kubectl, which is not on the PATH" in err


# -- each step's argv, and kubectl's answers -------------------------------------------------------


def test_each_step_is_one_kubectl_command() -> None:
    kubectl = Kubectl("/run/kc.yaml", "ci", binary="/usr/bin/kubectl")
    head = ["/usr/bin/kubectl", "--kubeconfig", "/run/kc.yaml", "--context", "ci"]
    timeout = ["--request-timeout", "30s"]
    deployment = Workload("deployment.apps", "churn", "ml")
    service = Workload("inferenceservice.serving.kserve.io", "churn", "ml")
    assert kubectl.apply_argv("/tmp/r/base", dry_run=True) == [
        *head,
        *timeout,
        "apply",
        "--kustomize",
        "/tmp/r/base",
        "--field-manager=mlci",
        "--dry-run=server",
    ]
    assert kubectl.apply_argv("/tmp/r/base", dry_run=False)[-1] == "--field-manager=mlci"
    assert kubectl.get_argv(deployment) == [
        *head,
        *timeout,
        "get",
        "deployment.apps/churn",
        "--namespace",
        "ml",
        "--ignore-not-found",
        "--output",
        "json",
    ]
    # The rollout watch is bounded by --timeout alone, not cut by the per-request timeout.
    assert kubectl.wait_argv(deployment, 300) == [
        *head,
        "rollout",
        "status",
        "deployment.apps/churn",
        "--namespace",
        "ml",
        "--timeout=300s",
    ]
    assert kubectl.wait_argv(service, 60, generation=4) == [
        *head,
        "wait",
        "--for=jsonpath={.status.observedGeneration}=4",
        "inferenceservice.serving.kserve.io/churn",
        "--namespace",
        "ml",
        "--timeout=60s",
    ]
    assert kubectl.wait_argv(service, 60)[len(head) + 1] == "--for=condition=Ready"
    assert kubectl.undo_argv(deployment) == [
        *head,
        *timeout,
        "rollout",
        "undo",
        "deployment.apps/churn",
        "--namespace",
        "ml",
    ]
    assert kubectl.restore_argv("/tmp/u/previous.json")[-3:] == [
        "--filename",
        "/tmp/u/previous.json",
        "--field-manager=mlci",
    ]


@needs_kubectl
@pytest.mark.slow
def test_the_real_kubectl_accepts_every_argv_and_gets_as_far_as_the_server(tmp_path: Path) -> None:
    # A flag kubectl does not know, or a condition it cannot parse, fails before any connection
    # ("unknown flag", "unrecognized condition"); every step's argv must reach the server instead.
    port = free_port()
    config = tmp_path / "kubeconfig"
    config.write_text(_kubeconfig(f"https://127.0.0.1:{port}"))
    base = tmp_path / "base"
    base.mkdir()
    (base / "kustomization.yaml").write_text("resources: [configmap.yaml]\n")
    (base / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ml}\n"
    )
    kubectl = Kubectl(str(config), "ci")
    deployment = Workload("deployment.apps", "churn", "ml")
    service = Workload("inferenceservice.serving.kserve.io", "churn", "ml")
    argvs = [
        kubectl.apply_argv(base, dry_run=True),
        kubectl.apply_argv(base, dry_run=False),
        kubectl.get_argv(deployment),
        kubectl.wait_argv(deployment, 5),
        kubectl.wait_argv(service, 5, generation=3),
        kubectl.wait_argv(service, 5),
        kubectl.undo_argv(deployment),
        kubectl.restore_argv(base / "configmap.yaml"),
    ]
    for argv in argvs:
        done = kubectl.run(argv, timeout=60)
        assert done.returncode != 0
        assert f"127.0.0.1:{port}" in done.stderr and "refused" in done.stderr, (argv, done.stderr)
    bogus = kubectl.run(kubectl.argv("wait", "--for=bogus", "deployment.apps/churn"), timeout=60)
    assert "unrecognized condition" in bogus.stderr and f"127.0.0.1:{port}" not in bogus.stderr


def test_the_workload_follows_the_target() -> None:
    assert workload_of(parse_deploy_config({"namespace": "ml"}, default_name="churn")).ref == (
        "deployment.apps/churn"
    )
    kserve = parse_deploy_config({"namespace": "ml", "target": "kserve"}, default_name="churn")
    assert workload_of(kserve).ref == "inferenceservice.serving.kserve.io/churn"
    with pytest.raises(ConfigError, match="mlci deploy gitops"):
        workload_of(parse_deploy_config({"rollout": {"analysis": False}}, default_name="churn"))


def test_kubectl_applys_lines_are_parsed_into_objects_and_actions() -> None:
    stdout = (
        "service/churn unchanged\n"
        "deployment.apps/churn configured\n"
        "servicemonitor.monitoring.coreos.com/churn created (server dry run)\n"
        "Warning: something the server said\n"
    )
    assert [(a.object, a.action) for a in parse_applied(stdout)] == [
        ("service/churn", "unchanged"),
        ("deployment.apps/churn", "configured"),
        ("servicemonitor.monitoring.coreos.com/churn", "created"),
    ]


def test_a_previous_object_is_restored_without_the_fields_the_server_owns() -> None:
    previous = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "churn",
            "namespace": "ml",
            "resourceVersion": "8812",
            "uid": "0b5e",
            "generation": 3,
            "creationTimestamp": "2026-11-30T10:00:00Z",
            "managedFields": [{"manager": "mlci"}],
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "mlci.io/model-digest": "d",
            },
        },
        "spec": {"predictor": {"minReplicas": 1}},
        "status": {"url": "http://churn.ml"},
    }
    assert restorable(previous) == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "churn", "namespace": "ml", "annotations": {"mlci.io/model-digest": "d"}},
        "spec": {"predictor": {"minReplicas": 1}},
    }


def test_parse_refuses_a_missing_user_quietly_without_secrets() -> None:
    text = (
        "kind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: nobody}}]\n"
        "clusters: [{name: k, cluster: {server: 'https://k:6443'}}]\nusers: []\n"
    )
    with pytest.raises(InputError, match="has no user named 'nobody'"):
        parse_kubeconfig(text, source="kubeconfig file kc")


def test_the_verdict_is_written_against_its_schema_and_reads_back(tmp_path: Path) -> None:
    from mlci_lib.deploy.apply import Applied, ApplyVerdict, Step
    from mlci_lib.deploy.kubeconfig import Cluster
    from mlci_lib.deploy.summary import apply_markdown
    from mlci_lib.deploy.verify import DeployVerdict, VerifyCheck
    from mlci_lib.files import write_json_atomic
    from mlci_lib.result_schemas import from_dict

    checked = DeployVerdict(
        passed=False,
        url="http://churn.ml.svc",
        model_name="churn",
        model_version="3",
        model_digest="sha256:" + "b" * 64,
        image=IMAGE,
        image_digest="sha256:" + "a" * 64,
        verdict_digest=None,
        checks=(VerifyCheck("model digest", "fail", "served another", "sha256:" + "b" * 64, "sha256:x"),),
        latency_rules=(),
        latency=None,
        checked_at="2026-12-01T10:00:00Z",
    )
    verdict = ApplyVerdict(
        passed=False,
        cluster=Cluster("ci", "staging", "https://10.0.0.1:6443", "ml"),
        namespace="ml",
        workload="deployment.apps/churn",
        revision="7",
        applied=(Applied("deployment.apps/churn", "configured"), Applied("service/churn", "unchanged")),
        steps=(
            Step("rollout", True, "deployment.apps/churn rolled out in 31 s"),
            Step("verify", False, "not verified"),
            Step("undo", True, "rollout undone: deployment.apps/churn rolled out in 12 s"),
        ),
        undone=True,
        verification=checked,
        image=IMAGE,
        image_digest="sha256:" + "a" * 64,
        model_name="churn",
        model_version="3",
        model_digest="sha256:" + "b" * 64,
        verdict_digest=None,
        started_at="2026-12-01T09:59:00Z",
        finished_at="2026-12-01T10:00:30Z",
    )
    path = write_json_atomic(tmp_path / "apply.json", verdict.to_dict())  # checked against its schema
    document = json.loads(path.read_text())
    assert document["schema"] == "mlci.deploy-apply" and document["revision"] == "7"
    assert document["cluster"] == {
        "context": "ci",
        "cluster": "staging",
        "server": "https://10.0.0.1:6443",
        "namespace": "ml",
    }
    assert from_dict(ApplyVerdict, document).to_dict() == document
    assert (
        "ROLLED BACK on ci (https://10.0.0.1:6443) as ml/deployment.apps/churn, revision 7" in verdict.text()
    )
    assert "### mlci deploy apply: ↩️ rolled back" in apply_markdown(verdict)


def test_only_a_revision_this_apply_started_is_undone() -> None:
    from mlci_lib.deploy.apply import changed_by_apply

    deployment = Workload("deployment.apps", "churn", "ml")

    def at(revision: str, generation: int) -> dict:
        annotations = {"deployment.kubernetes.io/revision": revision}
        return {"metadata": {"annotations": annotations, "generation": generation}}

    assert changed_by_apply(deployment, at("4", 9), at("5", 10))  # a new pod template
    # The same release again, or a replica count: undoing would go back to the release before.
    assert not changed_by_apply(deployment, at("4", 9), at("4", 10))
    assert changed_by_apply(deployment, None, at("1", 1))  # created by this apply
    service = Workload("inferenceservice.serving.kserve.io", "churn", "ml")
    assert changed_by_apply(service, {"metadata": {"generation": 3}}, {"metadata": {"generation": 4}})
    assert not changed_by_apply(service, {"metadata": {"generation": 3}}, {"metadata": {"generation": 3}})
