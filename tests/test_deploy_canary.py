"""`mlci deploy analyze` against a real Prometheus scraping a stable and a canary `mlci serve`.

Two in-process serving runtimes on loopback, a bounded load generator sending to both, Debian's
Prometheus scraping their /metrics every second; the command reads Prometheus' HTTP API and
decides. A worse canary (a model whose predictions shifted, and a share of its requests refused
with 400) is rolled back, an equally good one promoted, one with too little traffic inconclusive.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from mlci_lib.cli import main
from mlci_lib.deploy import serving_metrics
from mlci_lib.models import save_model
from mlci_lib.serving.server import ModelServer
from tests.helpers.components import PrometheusServer, wait_until
from tests.helpers.load import send_load

pytestmark = pytest.mark.slow


def _features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "charges": rng.normal(70, 20, n).round(2),
            "calls": rng.poisson(2, n),
        }
    )


def _save(folder: Path, labels: np.ndarray, data: pd.DataFrame, version: str) -> Path:
    model = HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(data, labels)
    return save_model(model, folder, sample_input=data.head(), name=f"churn-v{version}")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    frame = _features(400, seed=1)
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in frame.to_dict("records")
    ]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    data = _features(600, seed=0)
    good = np.where(data.tenure < 12, "churn", "stay")
    # The worse version learnt from shifted labels: it predicts churn for twice the customers.
    shifted = np.where(data.tenure < 30, "churn", "stay")
    root = tmp_path_factory.mktemp("canary-models")
    return {
        "good": _save(root / "good", good, data, "1"),
        "worse": _save(root / "worse", shifted, data, "2"),
    }


@pytest.fixture()
def pair(
    request: pytest.FixtureRequest, models: dict[str, Path]
) -> Iterator[tuple[ModelServer, ModelServer]]:
    stable_model, canary_model = request.param
    with ModelServer(models[stable_model]) as stable, ModelServer(models[canary_model]) as canary:
        stable.wait_ready(60)
        canary.wait_ready(60)
        yield stable, canary


def _query(prometheus: PrometheusServer, expression: str) -> list[dict[str, object]]:
    query = urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(f"{prometheus.url}/api/v1/query?{query}", timeout=5) as response:
        return list(json.load(response)["data"]["result"])


def _watch(
    prometheus: PrometheusServer, name: str, stable: ModelServer, canary: ModelServer, rows: list
) -> None:
    """Scrape both under jobs of this test's, and prime each with one request Prometheus has seen.

    ``increase()`` counts from a series' first sample: a request answered before Prometheus first
    saw the series would be lost, so each server's counter exists before the measured load.
    """
    prometheus.scrape(
        {
            f"{name}-stable": [stable.url.removeprefix("http://")],
            f"{name}-canary": [canary.url.removeprefix("http://")],
        }
    )
    for server in (stable, canary):
        send_load(server.url, lambda i: {"rows": rows[:1]}, requests=1, threads=1)
    for side in ("stable", "canary"):
        wait_until(
            lambda side=side: bool(
                _query(prometheus, f'{serving_metrics.REQUESTS}{{job="{name}-{side}",code="200"}}')
            ),
            30,
            f"Prometheus scraping {name}-{side}",
        )


def _load_both(stable: ModelServer, canary: ModelServer, stable_body, canary_body, **kwargs: object) -> tuple:
    """Load both at once, as a traffic split does: both see the same machine at the same time."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(send_load, s.url, body, **kwargs)
            for s, body in ((stable, stable_body), (canary, canary_body))
        ]
        return tuple(f.result() for f in futures)


def _settle() -> None:
    time.sleep(2.5)  # two more scrapes: the last requests are in Prometheus


def _analyze(prometheus: PrometheusServer, name: str, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    verdict = tmp_path / "canary-verdict.json"
    code = main([
        "deploy", "analyze", "--prometheus", prometheus.url,
        "--stable", f'job="{name}-stable"', "--canary", f'{{job="{name}-canary"}}',
        "--window", "2m", "--verdict-file", str(verdict), *extra,
    ])  # fmt: skip
    return code, json.loads(verdict.read_text())


def _by_rule(verdict: dict) -> dict[str, dict]:
    return {rule["rule"]: rule for rule in verdict["rules"]}


@pytest.mark.parametrize("pair", [("good", "worse")], indirect=True)
def test_a_worse_canary_is_rolled_back(
    prometheus_server: PrometheusServer, pair: tuple[ModelServer, ModelServer], rows: list, tmp_path: Path
) -> None:
    stable, canary = pair
    _watch(prometheus_server, "worse", stable, canary, rows)
    bad = {"rows": [{"tenure": "n/a", "charges": 1.0, "calls": 1}]}  # refused with 400
    got_stable, got_canary = _load_both(
        stable,
        canary,
        lambda i: {"rows": rows[i % 400 : i % 400 + 2]},
        lambda i: bad if i % 10 == 0 else {"rows": rows[i % 400 : i % 400 + 2]},
        requests=400,
        pause=0.005,
    )
    assert got_stable == {200: 400} and got_canary == {200: 360, 400: 40}
    _settle()
    code, verdict = _analyze(prometheus_server, "worse", tmp_path)
    assert code == 1
    assert verdict["schema"] == "mlci.canary-verdict" and verdict["decision"] == "rollback"
    rules = _by_rule(verdict)
    client = rules["client-errors max-increase"]
    assert client["outcome"] == "fail" and client["interval"][0] > 0.01, client
    assert rules["errors max-increase"]["outcome"] != "fail"  # no 5xx on either side
    # The shifted model predicts churn far more often: its share's interval is above the 0.05 band.
    churn = rules["predictions class churn max-share-change"]
    assert churn["outcome"] == "fail" and churn["interval"][0] > 0.05, churn
    # The 400s' series began with the first refusal, inside the window: counted from zero, all 40.
    assert verdict["canary"]["client_errors"] == 40 and verdict["canary"]["requests"] == 401


@pytest.mark.parametrize("pair", [("good", "good")], indirect=True)
def test_an_equally_good_canary_is_promoted(
    prometheus_server: PrometheusServer, pair: tuple[ModelServer, ModelServer], rows: list, tmp_path: Path
) -> None:
    stable, canary = pair
    _watch(prometheus_server, "equal", stable, canary, rows)

    # Both at once: one after the other, a change in the machine's load between the two would
    # show as a latency difference between two equal servers.
    def body(i: int) -> dict:
        return {"rows": rows[i % 400 : i % 400 + 2]}

    assert _load_both(stable, canary, body, body, requests=600, pause=0.005) == ({200: 600}, {200: 600})
    _settle()
    # The default allows the canary's p95 25% above the stable's. On two cores shared with the
    # rest of the suite, one server's threads can lose the CPU for a few requests more than the
    # other's, and two equal servers' p95 then differ by more than that; the latency rule is
    # still decided here, with room for the machine's noise.
    rules = tmp_path / "rules.yaml"
    rules.write_text("latency: {p95_ms: {max-relative-increase: 1.0}}\n")
    code, verdict = _analyze(prometheus_server, "equal", tmp_path, "--rules", str(rules))
    assert code == 0, json.dumps(verdict["rules"], indent=1)
    assert verdict["decision"] == "promote" and verdict["status"] == "pass"
    # Counted exactly, without increase()'s extrapolation: the load and the one priming request.
    assert verdict["stable"]["requests"] == verdict["canary"]["requests"] == 601
    assert {rule["outcome"] for rule in verdict["rules"]} == {"pass"}
    assert any(rule["kind"] == "canary-latency" for rule in verdict["rules"])


@pytest.mark.parametrize("pair", [("good", "good")], indirect=True)
def test_too_little_canary_traffic_is_inconclusive(
    prometheus_server: PrometheusServer, pair: tuple[ModelServer, ModelServer], rows: list, tmp_path: Path
) -> None:
    stable, canary = pair
    _watch(prometheus_server, "little", stable, canary, rows)
    send_load(stable.url, lambda i: {"rows": rows[i % 400 : i % 400 + 2]}, requests=500, pause=0.005)
    send_load(canary.url, lambda i: {"rows": rows[i : i + 2]}, requests=12, threads=1, pause=0.1)
    _settle()
    # Latency is left out here: a dozen canary requests on a busy machine can look slow by chance,
    # and this test is about how little traffic the error and prediction rules can decide on.
    rules = tmp_path / "rules.yaml"
    rules.write_text("latency: {}\n")
    code, verdict = _analyze(prometheus_server, "little", tmp_path, "--rules", str(rules))
    assert code == 1 and verdict["decision"] == "rollback"  # on-inconclusive: fail, the default
    errors = _by_rule(verdict)["errors max-increase"]
    assert errors["outcome"] == "inconclusive", errors
    assert errors["rows_needed"] > verdict["canary"]["requests"]
    assert "too little traffic" in errors["message"]
    assert not [r for r in verdict["rules"] if r["outcome"] in ("fail", "undefined")]
    # The same counts under on-inconclusive: pass promote, and say so.
    code, verdict = _analyze(
        prometheus_server, "little", tmp_path, "--rules", str(rules), "--on-inconclusive", "pass"
    )
    assert code == 0 and verdict["decision"] == "promote"
    assert any("inconclusive" in note for note in verdict["notes"])


def test_every_metric_name_the_analysis_queries_is_served(
    models: dict[str, Path], rows: list, tmp_path: Path
) -> None:
    """The names in deploy/serving_metrics.py are those a real runtime's /metrics exposes."""
    from sklearn.linear_model import LinearRegression

    data = _features(200, seed=3)
    regressor = save_model(
        LinearRegression().fit(data, data.charges * 2),
        tmp_path / "reg",
        sample_input=data.head(),
        name="bill",
    )
    exposed: set[str] = set()
    for model in (models["good"], regressor):
        with ModelServer(model) as server:
            server.wait_ready(60)
            send_load(server.url, lambda i: {"rows": rows[:3]}, requests=2, threads=1)
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
                text = response.read().decode()
        for line in text.splitlines():
            if line and not line.startswith("#"):
                exposed.add(line.split("{")[0].split(" ")[0])
                if f'{serving_metrics.ENDPOINT_LABEL}="/predict"' in line:
                    assert f'{serving_metrics.CODE_LABEL}="200"' in line
    assert set(serving_metrics.QUERIED) <= exposed, set(serving_metrics.QUERIED) - exposed
    bucket_lines = [line for line in text.splitlines() if line.startswith(serving_metrics.DURATION_BUCKET)]
    assert bucket_lines and all(f'{serving_metrics.BUCKET_LABEL}="' in line for line in bucket_lines)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--stable", "stable", "--canary", 'job="c"'],
            "option --stable: 'stable' is not a series selector",
            id="bare-word",
        ),
        pytest.param(
            ["--stable", 'job="s"', "--canary", 'job="c"', "--window", "ten"], "option --window", id="window"
        ),
        pytest.param(["--stable", 'job="s"', "--canary", 'job="s"'], "select the same series", id="same"),
    ],
)
def test_bad_options_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["deploy", "analyze", "--prometheus", "http://127.0.0.1:9", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_unreachable_prometheus_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers.components import free_port

    url = f"http://127.0.0.1:{free_port()}"
    code = main(["deploy", "analyze", "--prometheus", url, "--stable", 'job="s"', "--canary", 'job="c"'])
    err = capsys.readouterr().err
    assert code == 2 and f"Prometheus at {url} does not answer" in err and len(err.strip().splitlines()) == 1


def test_no_series_for_a_selector_is_one_line_exit_2(
    prometheus_server: PrometheusServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([
        "deploy", "analyze", "--prometheus", prometheus_server.url,
        "--stable", 'job="nobody-stable"', "--canary", 'job="nobody-canary"',
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert (
        "option --stable: Prometheus at" in err
        and 'no mlci_requests_total series for {job="nobody-stable"}' in err
    )


def test_a_refused_query_and_a_bad_rules_file_are_one_line_exit_2(
    prometheus_server: PrometheusServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([
        "deploy", "analyze", "--prometheus", prometheus_server.url,
        "--stable", 'job=~"("', "--canary", 'job="c"',
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "refused the query" in err and len(err.strip().splitlines()) == 1, err
    rules = tmp_path / "canary.yml"
    rules.write_text("errors: {max_increase: 0.01}\n")
    code = main([
        "deploy", "analyze", "--prometheus", prometheus_server.url, "--rules", str(rules),
        "--stable", 'job="s"', "--canary", 'job="c"',
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "max_increase" in err and "max-increase" in err, err


@pytest.fixture()
def regressors(tmp_path: Path) -> Iterator[tuple[ModelServer, ModelServer]]:
    from sklearn.linear_model import LinearRegression

    data = _features(300, seed=4)
    target = data.charges * 2 + data.calls
    stable = save_model(
        LinearRegression().fit(data, target), tmp_path / "s", sample_input=data.head(), name="bill"
    )
    # The canary's predictions shifted up by a fifth.
    shifted = LinearRegression().fit(data, target * 1.2)
    canary = save_model(shifted, tmp_path / "c", sample_input=data.head(), name="bill")
    with ModelServer(stable) as s, ModelServer(canary) as c:
        s.wait_ready(60)
        c.wait_ready(60)
        yield s, c


def test_a_regressor_whose_predictions_shifted_is_rolled_back(
    prometheus_server: PrometheusServer,
    regressors: tuple[ModelServer, ModelServer],
    rows: list,
    tmp_path: Path,
) -> None:
    stable, canary = regressors
    _watch(prometheus_server, "shifted", stable, canary, rows)

    def body(i: int) -> dict:
        return {"rows": rows[i % 400 : i % 400 + 2]}

    assert _load_both(stable, canary, body, body, requests=200, pause=0.005) == ({200: 200}, {200: 200})
    _settle()
    code, verdict = _analyze(prometheus_server, "shifted", tmp_path)
    assert code == 1
    mean = _by_rule(verdict)["predictions mean max-mean-relative-change"]
    assert mean["outcome"] == "fail" and mean["value"] == pytest.approx(0.2, abs=0.01), mean
    assert (
        verdict["canary"]["value_count"] == verdict["stable"]["value_count"] == 401
    )  # 2 rows a request, 1 primed
