"""The training reference, computed once: baked into the image, exported on /metrics, and the same
figures in the alert rules (which fire when the server exports another reference)."""

from __future__ import annotations

import io
import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from mlci_lib.cli import main
from mlci_lib.models import load_model, save_model
from mlci_lib.monitor.reference import compute_reference, read_reference
from mlci_lib.runner import CiRunner
from mlci_lib.serving import ModelServer
from tests.helpers.components import PrometheusServer, free_port, http_ok, wait_until


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, runner=CiRunner({}, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reference")
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"tenure": rng.integers(0, 72, 800), "charges": rng.normal(70, 20, 800).round(2)})
    data.to_csv(folder / "train.csv", index=False)
    y = np.where(data.tenure < 20, "churn", "stay")
    save_model(
        LogisticRegression(max_iter=500).fit(data, y),
        folder / "churn",
        sample_input=data.head(),
        name="churn",
    )
    save_model(
        LogisticRegression(max_iter=500).fit(data, data.charges > 70),
        folder / "other",
        sample_input=data.head(),
    )
    return folder


def render(project: Path, reference: Path, out: str) -> tuple[int, dict[str, Any], str]:
    code, stdout, err = run_cli(
        ["--json", "monitor", "render", "--model", str(project / "churn"), "--reference", str(reference),
         "-o", str(project / out), "--job", "ref-churn", "--window", "1m", "--min-rows", "5"]
    )  # fmt: skip
    return code, (json.loads(stdout) if stdout.strip() else {}), err


@pytest.mark.slow
def test_rules_rendered_from_the_reference_file_equal_those_from_the_data(project: Path) -> None:
    code, first, err = render(project, project / "train.csv", "from-data")
    assert code == 0, err
    document = json.loads(Path(first["reference"]).read_text())
    assert document["schema"] == "mlci.monitor-reference" and document["digest"].startswith("sha256:")
    assert document["model_digest"] == load_model(project / "churn").digest
    code, second, err = render(project, Path(first["reference"]), "from-file")
    assert code == 0, err
    assert Path(second["rules"]).read_text() == Path(first["rules"]).read_text()
    assert Path(second["reference"]).read_text() == Path(first["reference"]).read_text()
    changed = [a for a in first["alerts"] if a["name"] == "MlciReferenceChanged"]
    assert len(changed) == 1 and document["digest"] in changed[0]["expr"]


def test_a_reference_of_another_model_or_edited_by_hand_is_refused(project: Path, tmp_path: Path) -> None:
    other = compute_reference(load_model(project / "other"), pd.read_csv(project / "train.csv"), source="x")
    foreign = tmp_path / "foreign.json"
    foreign.write_text(other.to_json())
    code, _, err = render(project, foreign, "refused")
    assert code == 2 and "was computed for model digest" in err and len(err.strip().splitlines()) == 1, err
    own = compute_reference(load_model(project / "churn"), pd.read_csv(project / "train.csv"), source="x")
    edited = json.loads(own.to_json())
    edited["features"]["charges"]["mean"] = 0.0
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(edited))
    code, _, err = render(project, tampered, "refused")
    assert code == 2 and "do not match its digest" in err, err


def test_the_server_exports_the_reference_it_was_given(project: Path) -> None:
    reference = compute_reference(
        load_model(project / "churn"), pd.read_csv(project / "train.csv"), source="t"
    )
    with ModelServer(project / "churn", info={"reference": reference.to_dict()}) as server:
        server.wait_ready(60)
        with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        with urllib.request.urlopen(f"{server.url}/version", timeout=10) as response:
            version = json.loads(response.read())
    assert f'mlci_reference_info{{reference="{reference.digest}"}} 1.0' in text
    mean = reference.features["charges"]["mean"]
    assert f'mlci_reference_feature_mean{{feature="charges"}} {mean!r}' in text
    assert 'mlci_reference_class_share{class="churn"}' in text
    assert version["reference_digest"] == reference.digest


def _query(prometheus: PrometheusServer, query: str) -> list[Any]:
    url = f"{prometheus.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=30) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


@pytest.mark.slow
def test_prometheus_sees_a_server_with_another_reference_than_the_rules(
    project: Path, prometheus_server: PrometheusServer
) -> None:
    code, result, err = render(project, project / "train.csv", "live")
    assert code == 0, err
    rendered = read_reference(result["reference"])
    moved = pd.read_csv(project / "train.csv").assign(charges=lambda d: d.charges + 30)
    retrained = compute_reference(load_model(project / "churn"), moved, source="fresh data")
    (alert,) = [a for a in result["alerts"] if a["name"] == "MlciReferenceChanged"]
    with (
        ModelServer(project / "churn", info={"reference": rendered.to_dict()}) as same,
        ModelServer(project / "churn", info={"reference": retrained.to_dict()}) as other,
    ):
        same.wait_ready(60)
        other.wait_ready(60)
        targets = {
            "ref-churn": [same.url.removeprefix("http://")],
            "ref-other": [other.url.removeprefix("http://")],
        }
        prometheus_server.scrape(targets)
        prometheus_server.wait_up("ref-churn", 1)
        prometheus_server.wait_up("ref-other", 1)
        # the rules' job serves the reference they were rendered from: silent
        assert _query(prometheus_server, alert["expr"]) == []
        assert _query(prometheus_server, alert["signal"])[0]["value"][1] == "0"
        # the same rules pointed at the server of the retrained reference: they fire
        stale = alert["expr"].replace('job="ref-churn"', 'job="ref-other"')
        fired = _query(prometheus_server, stale)
        assert fired and fired[0]["value"][1] == "1", fired


@pytest.mark.docker
@pytest.mark.slow
def test_the_image_carries_the_reference_and_exports_it(
    project: Path, python_base_image: str, tmp_path: Path
) -> None:
    from mlci_lib.image import build_image

    context = tmp_path / "context"
    built = build_image(
        project / "churn",
        repository="mlci-test/churn-reference",
        base_image=python_base_image,
        python_version="3.11",
        reference_data=project / "train.csv",
        context_dir=context,
    )
    baked = read_reference(context / "bundle" / "reference.json")
    assert json.loads((context / "bundle" / "info.json").read_text())["reference"] == "reference.json"
    assert built.labels["io.mlci.reference.digest"] == baked.digest
    code, result, err = render(project, project / "train.csv", "image")
    assert code == 0, err
    assert read_reference(result["reference"]).digest == baked.digest  # one computation, one figure
    port = free_port()
    name = f"mlci-test-reference-{port}"
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "--read-only", "--tmpfs", "/tmp", "--network", "host",
         "-e", f"MLCI_SERVE_PORT={port}", built.image_id],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/health"), 90, "the serving container")
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        subprocess.run(["docker", "stop", "-t", "20", name], capture_output=True, timeout=60, check=False)
    assert f'mlci_reference_info{{reference="{baked.digest}"}} 1.0' in text
    rules = yaml.safe_load(Path(result["rules"]).read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert any(baked.digest in e for e in exprs)
