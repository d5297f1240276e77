"""The parts of the image commands that need no Docker engine: rendering, tags, names, bad input."""

from __future__ import annotations

import io
import re
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlci_lib.cli import main
from mlci_lib.errors import ConfigError, InputError
from mlci_lib.gitcontext import GitContext
from mlci_lib.image.build import tags_from_git
from mlci_lib.image.context import label_instruction, render_dockerfile, serving_requirements, template_path
from mlci_lib.image.engine import sanitize_tag, split_repository
from mlci_lib.image.smoke import latency_of, percentile
from mlci_lib.models import save_model
from mlci_lib.runner import CiRunner


def _git(branch: str | None, commit: str | None = "feedface" * 5) -> GitContext:
    return GitContext(commit, f"refs/heads/{branch}" if branch else None, branch, "main", "o/r", None, None)


@pytest.mark.parametrize(
    ("git", "version", "extra", "expected"),
    [
        (_git("main"), "4", (), ["feedfacefeed", "model-4", "latest"]),
        (_git("feature/x"), "4", (), ["feedfacefeed", "model-4"]),
        (_git("main"), None, ("rc1",), ["feedfacefeed", "latest", "rc1"]),
        (_git(None), "1.2+local", (), ["feedfacefeed", "model-1.2-local"]),
    ],
    ids=["default-branch", "other-branch", "extra-tag", "version-sanitized"],
)
def test_tags_from_git(
    git: GitContext, version: str | None, extra: tuple[str, ...], expected: list[str]
) -> None:
    assert tags_from_git(git, model_version=version, extra=extra) == expected


def test_no_tag_at_all_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no image tag"):
        tags_from_git(_git(None, commit=None))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("127.0.0.1:5000/team/model", ("127.0.0.1:5000", "team/model")),
        ("ghcr.io/acme/churn", ("ghcr.io", "acme/churn")),
        ("localhost/churn", ("localhost", "churn")),
        ("acme/churn", (None, "acme/churn")),
        ("churn", (None, "churn")),
    ],
)
def test_split_repository(name: str, expected: tuple[str | None, str]) -> None:
    assert split_repository(name) == expected


@pytest.mark.parametrize("name", ["Acme/Churn", "ghcr.io/acme/churn:tag", "a b", "x/$(id)", ""])
def test_bad_repository_names(name: str) -> None:
    with pytest.raises(InputError, match="not an image repository name"):
        split_repository(name)


def test_sanitize_tag() -> None:
    assert sanitize_tag("feature/new model") == "feature-new-model"
    assert sanitize_tag("-.x") == "x"


def test_the_template_renders_every_placeholder_and_refuses_unknown_ones() -> None:
    text = template_path().read_text()
    values = {
        "base_image": "python:3.12-slim@sha256:" + "a" * 64,
        "pip_options": "--no-index",
        "port": "8080",
        "user": "10001:10001",
        "entrypoint": '["serve"]',
        "labels": label_instruction({"a": "b"}),
        "system_packages": "libgomp1",
    }
    rendered = render_dockerfile(text, values)
    assert "{{" not in rendered
    assert rendered.count("FROM python:3.12-slim@sha256:" + "a" * 64) == 2  # a digest pin is kept as given
    assert re.search(r"^USER 10001:10001$", rendered, re.M)
    assert re.search(r"^HEALTHCHECK ", rendered, re.M)
    with pytest.raises(ConfigError, match="unknown placeholder"):
        render_dockerfile(text + "\nRUN {{ secret }}\n", values)


def test_labels_are_one_instruction_with_quotes_and_dollars_escaped() -> None:
    text = label_instruction({"b": 'say "hi"', "a": "$HOME\\x", "c": "two\nlines"})
    assert text.splitlines()[0] == '"a"="\\$HOME\\\\x" \\'
    assert '"b"="say \\"hi\\""' in text
    assert '"c"="two lines"' in text


def test_serving_requirements_pin_the_installed_versions() -> None:
    pins = serving_requirements(["xgboost==2.1.0"])
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in pins
    assert f"numpy=={metadata.version('numpy')}" in pins
    assert not any(p.startswith(("pyarrow", "mlflow", "great", "docker")) for p in pins)
    assert pins[-1] == "xgboost==2.1.0"


@pytest.mark.parametrize("spec", ["--index-url=http://evil", "pkg @ https://x/y.whl", "a; rm -rf /"])
def test_extra_requirements_must_be_plain_specifiers(spec: str) -> None:
    with pytest.raises(InputError, match="plain requirement"):
        serving_requirements([spec])


def test_percentiles_match_numpy() -> None:
    values = list(np.random.default_rng(0).exponential(3, 101))
    for q in (50, 95, 99):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-12)
    latency = latency_of([0.001, 0.002, 0.003], rows_per_request=4)
    assert (latency.p50_ms, latency.max_ms, latency.requests) == (2.0, 3.0, 3)
    assert latency.to_dict()["schema"] == "mlci.latency"


# -- the commands, failing before they touch an engine -----------------------------------------


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    data = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [1, 0, 1, 0]})
    return save_model(LogisticRegression().fit(data, [0, 0, 1, 1]), tmp_path / "model", sample_input=data)


BAD = [
    (["image", "build", "{model}", "--repository", "Bad/Name"], "not an image repository name"),
    (["image", "build", "{model}", "--repository", "r/m", "--tag", "a/b"], "not a valid image tag"),
    (["image", "build", "{model}", "--repository", "r/m", "--user", "0"], "non-root numeric"),
    (["image", "build", "{model}", "--repository", "r/m", "--user", "root"], "non-root numeric"),
    (["image", "build", "{tmp}/nope", "--repository", "r/m"], "does not exist"),
    (["image", "build", "{model}", "--repository", "r/m", "--wheelhouse", "maybe"], "must be true or false"),
    (["image", "build", "{model}", "--repository", "r/m", "--port", "0"], "from 1 to 65535"),
    (
        ["image", "build", "{model}", "--repository", "r/m", "--requirement", "x @ http://e"],
        "plain requirement",
    ),
    (["image", "build", "{model}"], "required: --repository"),
    (
        ["image", "smoke", "img", "--model", "{model}", "--sample-data", "s.csv", "--requests", "0"],
        "--requests must be a whole number above 0",
    ),
    (["image", "smoke", "img", "--model", "{model}", "--sample-data", "{tmp}/none.csv"], "does not exist"),
    (["image", "push", "img", "--smoke-file", "{tmp}/none.json"], "does not exist"),
    (["image", "push", "img", "--username", "bot"], "without a password"),
    (["image", "push", "img", "--require-smoke", "perhaps"], "must be true or false"),
]


@pytest.mark.parametrize(
    ("argv", "message"), BAD, ids=[f"{a[1]}-{m.split()[0]}-{i}" for i, (a, m) in enumerate(BAD)]
)
@pytest.mark.slow
def test_image_commands_fail_closed_on_bad_input(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    filled = [a.format(model=model_dir, tmp=tmp_path) for a in argv]
    err = io.StringIO()
    code = main(filled, runner=CiRunner({}, stdout=io.StringIO(), stderr=err))
    assert code == 2, err.getvalue()
    assert message in err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("received unexpected HTTP status: 503 Service Unavailable", True),
        ("toomanyrequests: too many requests", True),
        ("net/http: TLS handshake timeout", True),
        ("read: connection reset by peer", True),
        ("unauthorized: authentication required", False),
        ("denied: requested access to the resource is denied", False),
        ("name unknown: repository name not known to registry", False),
    ],
)
def test_push_failures_are_retried_only_when_a_later_attempt_can_succeed(
    message: str, transient: bool
) -> None:
    from mlci_lib.image.push import _TRANSIENT_WORDS, _classify, _PushFailed

    failure = _PushFailed(message, bool(_TRANSIENT_WORDS.search(message)))
    assert (_classify(failure) is not None) == transient


def test_registry_urls() -> None:
    from mlci_lib.image.push import registry_base_url

    assert registry_base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert registry_base_url("localhost:5000") == "http://localhost:5000"
    assert registry_base_url("ghcr.io") == "https://ghcr.io"
    assert registry_base_url(None) == "https://registry-1.docker.io"
