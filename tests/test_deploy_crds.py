"""Custom resources validated against their operators' CRD schemas (KServe, Prometheus Operator, Flagger)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from mlci_lib.deploy import make_release, parse_deploy_config
from mlci_lib.deploy.crds import SCHEMA_FILES, validate_custom
from mlci_lib.deploy.manifests import manifests
from mlci_lib.deploy.validate import validate_manifest
from mlci_lib.errors import ConfigError, InputError

SCHEMAS = Path(__file__).resolve().parents[1] / "mlci_lib" / "schemas" / "crds"


def _release():  # type: ignore[no-untyped-def]
    return make_release(
        image="registry.example:5000/team/churn@sha256:" + "a" * 64,
        model_name="churn",
        model_version="3",
        model_digest=None,
        verdict_digest=None,
        user="10001:10001",
    )


def _bodies(**deploy: object) -> dict[str, dict]:
    return manifests(parse_deploy_config({"namespace": "ml", **deploy}, default_name="churn"), _release())


def test_every_vendored_schema_is_present_and_its_source_noted() -> None:
    readme = (SCHEMAS / "README.md").read_text()
    for (api_version, kind), name in SCHEMA_FILES.items():
        assert (SCHEMAS / name).is_file()
        line = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`"))
        assert kind in line and api_version in line and " v" in line  # the operator's release


@pytest.mark.parametrize(
    "deploy, name",
    [
        ({"target": "kserve"}, "inferenceservice.yaml"),
        ({}, "servicemonitor.yaml"),
        ({"flagger": {"prometheus": "http://prometheus:9090"}}, "metrictemplate.yaml"),
        ({"rollout": {"prometheus": "http://prometheus:9090"}}, "rollout.yaml"),
        ({"rollout": {"prometheus": "http://prometheus:9090"}}, "analysistemplate.yaml"),
    ],
    ids=["inferenceservice", "servicemonitor", "metrictemplate", "rollout", "analysistemplate"],
)
def test_rendered_custom_resources_validate_against_their_crd(deploy: dict, name: str) -> None:
    body = _bodies(**deploy)[name]
    assert validate_manifest(body, "1.31", where=name)


@pytest.mark.parametrize(
    "name, deploy, break_it, message",
    [
        (
            "inferenceservice.yaml",
            {"target": "kserve"},
            lambda b: b["spec"]["predictor"].update(replicas=2),  # KServe says minReplicas
            r"at spec\.predictor: Additional properties are not allowed \('replicas' was unexpected\)",
        ),
        (
            "inferenceservice.yaml",
            {"target": "kserve"},
            lambda b: b["spec"]["predictor"]["containers"][0]["ports"][0].update(containerPort="8080"),
            r"at spec\.predictor\.containers\.0\.ports\.0\.containerPort: '8080' is not of type 'integer'",
        ),
        (
            "servicemonitor.yaml",
            {},
            lambda b: b["spec"]["endpoints"][0].update(interval="30 seconds"),
            r"at spec\.endpoints\.0\.interval: '30 seconds' does not match",
        ),
        (
            "servicemonitor.yaml",
            {},
            lambda b: b["spec"].pop("selector"),
            r"ServiceMonitor does not validate against its monitoring\.coreos\.com/v1 CRD schema at spec: "
            r"'selector' is a required property",
        ),
        (
            "metrictemplate.yaml",
            {"flagger": {"prometheus": "http://prometheus:9090"}},
            lambda b: b["spec"]["provider"].update(type="prom"),
            r"at spec\.provider\.type: 'prom' is not one of",
        ),
        (
            "rollout.yaml",
            {"rollout": {"analysis": False}},
            lambda b: b["spec"]["strategy"]["canary"]["steps"][0].update(setWeight="10%"),
            r"Rollout does not validate .* at spec\.strategy\.canary\.steps\.0\.setWeight: '10%' is not of",
        ),
        (
            "analysistemplate.yaml",
            {"rollout": {"prometheus": "http://prometheus:9090"}},
            lambda b: b["spec"]["metrics"][0].update(failureLimt=0),
            r"at spec\.metrics\.0: Additional properties are not allowed \('failureLimt' was unexpected\)",
        ),
    ],
    ids=[
        "isvc-unknown-field",
        "isvc-wrong-type",
        "sm-duration",
        "sm-no-selector",
        "mt-provider",
        "rollout-weight",
        "analysis-typo",
    ],
)
def test_a_broken_custom_resource_is_refused_naming_the_field(
    name: str, deploy: dict, break_it: object, message: str
) -> None:
    body = copy.deepcopy(_bodies(**deploy)[name])
    break_it(body)  # type: ignore[operator]
    with pytest.raises(InputError, match=message):
        validate_manifest(body, "1.31", where=name)


def test_status_keeps_whatever_the_operator_writes_there() -> None:
    # x-kubernetes-preserve-unknown-fields: the InferenceService's status is the controller's.
    body = copy.deepcopy(_bodies(target="kserve")["inferenceservice.yaml"])
    body["status"] = {"anything": {"the": "controller writes"}}
    validate_custom(body, where="inferenceservice.yaml")


def test_flagger_metric_template_queries_the_canary_pods_error_share() -> None:
    body = _bodies(flagger={"prometheus": "http://prometheus:9090"})["metrictemplate.yaml"]
    assert body["spec"]["provider"] == {"type": "prometheus", "address": "http://prometheus:9090"}
    query = body["spec"]["query"]
    assert 'pod=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"' in query and 'code=~"5.."' in query
    assert query.count("[{{ interval }}]") == 2 and 'namespace="{{ namespace }}"' in query


@pytest.mark.parametrize(
    "deploy, message",
    [
        ({"flagger": {"prometheus": "prometheus:9090"}}, "deploy.flagger.prometheus must be"),
        ({"flagger": {"prometheus": "http://p:9090", "interval": "1m"}}, "unknown key 'interval'"),
        ({"target": "kserve", "flagger": {"prometheus": "http://p:9090"}}, "which drives a Deployment"),
        (
            {"flagger": {"prometheus": "http://p:9090"}, "rollout": {"analysis": False}},
            "Argo Rollouts or Flagger, not both",
        ),
    ],
    ids=["no-scheme", "unknown-key", "kserve", "with-rollout"],
)
def test_bad_flagger_settings_are_config_errors(deploy: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_deploy_config({"namespace": "ml", **deploy}, default_name="churn")


def test_strictness_walks_each_schema_once_however_deep() -> None:
    import time

    from mlci_lib.deploy.crds import _strict

    schema: dict = {"type": "string"}
    for _ in range(24):  # walking "properties" twice a level would mean 2**24 visits here
        schema = {"type": "object", "properties": {"child": schema, "description": {"type": "string"}}}
    began = time.perf_counter()
    strict = _strict(schema)
    assert time.perf_counter() - began < 1.0
    for _ in range(24):
        assert strict["additionalProperties"] is False
        assert strict["properties"]["description"] == {"type": "string"}  # a field, kept
        strict = strict["properties"]["child"]
    assert strict == {"type": "string"}
