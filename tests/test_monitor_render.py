"""`mlci monitor render`: alert rules checked and unit-tested by promtool, and every alert and
dashboard query evaluated by a real Prometheus scraping a running server."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import io
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import Ridge

from mlci_lib.cli import main
from mlci_lib.models import save_model
from mlci_lib.runner import CiRunner
from mlci_lib.serving import ModelServer
from mlci_lib.serving.prediction_log import LogSettings
from tests.helpers.components import AlertmanagerServer, PrometheusServer, require, wait_until

pytestmark = pytest.mark.slow


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, runner=CiRunner({}, stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def promtool() -> str:
    binary = shutil.which("promtool")
    require(binary is not None, "promtool", "install Debian's prometheus (scripts/test does)")
    assert binary is not None
    return binary


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 600
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "charges": rng.normal(70, 20, n).round(2),
            "calls": rng.poisson(2, n),
            "constant": np.ones(n),
        }
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, train: pd.DataFrame) -> Path:
    folder = tmp_path_factory.mktemp("monitor")
    train.to_csv(folder / "train.csv", index=False)
    y = np.where(train.tenure < 12, "churn", np.where(train.calls > 3, "risk", "stay"))
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(train, y)
    save_model(model, folder / "churn", sample_input=train.head(), name="churn")
    reg = Ridge().fit(train, train.charges * 2 + train.calls)
    save_model(reg, folder / "bill", sample_input=train.head(), name="bill")
    (folder / "gate.yaml").write_text(
        "metrics:\n  accuracy: {min: 0.5}\nlatency:\n  p95_ms: {max: 250}\n  p99_ms: {max: 800}\n"
        "  mean_ms: {max: 100}\n  max_ms: {max: 2000}\n"
    )
    return folder


def render(workdir: Path, model: str, out: str, *extra: str) -> dict[str, Any]:
    code, stdout, err = run_cli(
        ["--json", "monitor", "render", "--model", str(workdir / model), "--reference",
         str(workdir / "train.csv"), "-o", str(workdir / out), *extra]
    )  # fmt: skip
    assert code == 0, err
    return dict(json.loads(stdout))


@pytest.mark.parametrize("model", ["churn", "bill"])
def test_rendered_rules_pass_promtool_check_and_their_unit_tests(workdir: Path, model: str) -> None:
    result = render(workdir, model, f"out-{model}", "--gate", str(workdir / "gate.yaml"))
    tool = promtool()
    check = subprocess.run([tool, "check", "rules", result["rules"]], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = subprocess.run(
        [tool, "test", "rules", Path(result["rules_test"]).name],
        capture_output=True,
        text=True,
        cwd=Path(result["rules_test"]).parent,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    names = {a["name"] for a in result["alerts"]}
    expected = {
        "MlciHighErrorRate", "MlciHighRejectRate", "MlciLatencyHigh", "MlciNoTraffic",
        "MlciFeatureMeanShift", "MlciFeatureVarianceShift", "MlciPredictionLogDropping",
        "MlciReferenceChanged",
    }  # fmt: skip
    expected.add("MlciPredictionShareShift" if model == "churn" else "MlciPredictionMeanShift")
    assert names == expected
    stats = {a["labels"].get("stat") for a in result["alerts"] if a["name"] == "MlciLatencyHigh"}
    assert stats == {"p95_ms", "p99_ms", "mean_ms"}  # max_ms: a histogram cannot follow it
    assert "feature constant" in result["skipped"]


def test_every_alert_fires_in_a_test_and_stays_silent_in_the_others(workdir: Path) -> None:
    result = render(workdir, "churn", "out-coverage")
    rules = yaml.safe_load(Path(result["rules"]).read_text())["groups"][0]["rules"]
    tests = yaml.safe_load(Path(result["rules_test"]).read_text())["tests"]
    by_rule = {(r["alert"], tuple(sorted(r["labels"].items()))) for r in rules}
    fired: dict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = {}
    for test in tests:
        checked = {case["alertname"] for case in test["alert_rule_test"]}
        assert checked == {r["alert"] for r in rules}, "every scenario checks every alert"
        for case in test["alert_rule_test"]:
            for alert in case["exp_alerts"]:
                fired.setdefault((case["alertname"], tuple(sorted(alert["exp_labels"].items()))), []).append(
                    test["name"]
                )
    assert set(fired) == by_rule, by_rule - set(fired)
    assert all(len(scenarios) == 1 for scenarios in fired.values()), fired
    reference = next(t for t in tests if t["name"] == "reference")
    assert all(not case["exp_alerts"] for case in reference["alert_rule_test"])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("> 0.25 and on (feature)", "> 25 and on (feature)"),
        ("== 0", "== 1"),
        ("> 0.1 and on ()", "> 0.9 and on ()"),
    ],
    ids=["mean-shift-scale", "no-traffic", "share-shift"],
)
def test_the_unit_tests_catch_a_wrong_rule(workdir: Path, old: str, new: str) -> None:
    result = render(workdir, "churn", f"out-mutant-{abs(hash(old))}")
    rules = Path(result["rules"])
    text = rules.read_text()
    assert old in text
    rules.write_text(text.replace(old, new, 1))
    tests = subprocess.run(
        [promtool(), "test", "rules", Path(result["rules_test"]).name],
        capture_output=True,
        text=True,
        cwd=rules.parent,
    )
    assert tests.returncode != 0
    assert "FAILED" in tests.stdout + tests.stderr


def test_the_dashboard_has_a_datasource_variable_and_queries_the_served_metrics(workdir: Path) -> None:
    result = render(workdir, "churn", "out-dashboard", "--job", "prod-churn")
    board = json.loads(Path(result["dashboard"]).read_text())
    assert [v["type"] for v in board["templating"]["list"]] == ["datasource"]
    targets = [t for p in board["panels"] for t in p["targets"]]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in board["panels"])
    assert all(t["datasource"]["uid"] == "${datasource}" for t in targets)
    served = [t["expr"] for t in targets if "mlci_" in t["expr"]]
    assert served and all('job="prod-churn"' in e for e in served)
    titles = " ".join(p["title"] for p in board["panels"])
    for feature in ("tenure", "charges", "calls"):
        assert f"Input {feature}" in titles
    reference = json.loads(Path(result["reference"]).read_text())
    train = pd.read_csv(workdir / "train.csv")
    assert reference["features"]["charges"]["mean"] == pytest.approx(train.charges.mean())
    assert reference["features"]["charges"]["std"] == pytest.approx(train.charges.std(ddof=0))
    assert sum(reference["class_shares"].values()) == pytest.approx(1)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gate", "GATE:latency:\n  p95_ms: {max: 20000}\n"], "outside the serving histogram"),
        (["--window", "an hour"], "--window"),
        (["--job", 'a"b'], "--job"),
        (["--reference", "REF:tenure,calls\n1,2\n"], "no column 'charges'"),
        (["--share-shift", "1.5"], "--share-shift"),
    ],
    ids=["latency-beyond-histogram", "window", "job", "reference-columns", "share"],
)
def test_bad_input_is_a_one_line_error(workdir: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    args = [
        "--model",
        str(workdir / "churn"),
        "--reference",
        str(workdir / "train.csv"),
        "-o",
        str(tmp_path / "o"),
    ]
    for i, value in enumerate(extra):
        for prefix, name in (("GATE:", "gate.yaml"), ("REF:", "ref.csv")):
            if value.startswith(prefix):
                (tmp_path / name).write_text(value.removeprefix(prefix))
                extra[i] = str(tmp_path / name)
    if "--reference" in extra:
        args = args[:2] + args[4:]
    code, _, err = run_cli(["monitor", "render", *args, *extra])
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# -- a real Prometheus scraping a running server ----------------------------------------------


def _api(prometheus: PrometheusServer, path: str, **params: str) -> Any:
    """``GET /api/v1/<path>``'s ``data``, or fail with Prometheus' error."""
    import urllib.error
    import urllib.parse
    import urllib.request

    url = f"{prometheus.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        answer = json.loads(exc.read() or b"{}")
    assert answer.get("status") == "success", f"Prometheus {path} {params}: {answer.get('error')}"
    return answer["data"]


def _post(url: str, rows: list[dict[str, Any]]) -> int:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", "/predict", json.dumps({"rows": rows}).encode())
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


class _Webhook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.slow
def test_a_real_prometheus_evaluates_every_alert_and_dashboard_query(
    workdir: Path,
    train: pd.DataFrame,
    prometheus_server: PrometheusServer,
    alertmanager_server: AlertmanagerServer,
    tmp_path: Path,
) -> None:
    # a short window and few rows, so that a few seconds of traffic can be judged
    result = render(workdir, "churn", "out-live", "--job", "live-churn", "--window", "1m", "--min-rows", "20")
    settings = LogSettings(directory=tmp_path / "logs", queue_rows=1)  # tiny: some rows are dropped
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    alertmanager_server.reload_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "hook",
                    "group_by": ["alertname"],
                    "group_wait": "1s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "hook",
                        "webhook_configs": [{"url": f"http://127.0.0.1:{hook.server_port}/hook"}],
                    }
                ],
            }
        )
    )
    alertmanager = alertmanager_server.url.removeprefix("http://")
    with hook_closed(hook), ModelServer(workdir / "churn", prediction_log=settings) as server:
        server.wait_ready(60)
        target = server.url.removeprefix("http://")
        prometheus_server.reload_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [result["rules"]],
                    "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
                    "scrape_configs": [{"job_name": "live-churn", "static_configs": [{"targets": [target]}]}],
                }
            )
        )
        # drifted traffic: every charge five reference standard deviations up
        moved = train.drop(columns=[]).assign(charges=train.charges + 5 * train.charges.std(ddof=0))
        records = moved.to_dict("records")
        deadline = time.monotonic() + 8
        i = 0
        while time.monotonic() < deadline:
            assert _post(server.url, records[i % 500 : i % 500 + 5]) == 200
            i += 5
            time.sleep(0.02)
        _post(server.url, [{"tenure": "not a number"}])  # one refused request: a 4xx series

        def scraped() -> bool:
            data = _api(prometheus_server, "query", query='count_over_time(up{job="live-churn"}[1m])')
            return bool(data["result"]) and float(data["result"][0]["value"][1]) >= 5

        wait_until(scraped, 30, "five scrapes of the server")
        for query in result["dashboard_queries"]:
            data = _api(prometheus_server, "query", query=query)
            assert data["result"], f"no series for the dashboard query {query}"
        for alert in result["alerts"]:
            data = _api(prometheus_server, "query", query=alert["signal"])
            assert data["result"], f"no series for {alert['name']} {alert['labels']}: {alert['signal']}"
            _api(prometheus_server, "query", query=alert["expr"])  # evaluates without error

        def evaluated() -> bool:
            groups = _api(prometheus_server, "rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return len(rules) == len(result["alerts"]) and all(
                r.get("lastEvaluation", "").startswith("20") for r in rules
            )

        wait_until(evaluated, 30, "the rules evaluated")
        rules = [r for g in _api(prometheus_server, "rules")["groups"] for r in g["rules"]]
        assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]

        def drift_alert() -> bool:
            alerts = _api(prometheus_server, "alerts")["alerts"]
            return any(
                a["labels"]["alertname"] == "MlciFeatureMeanShift" and a["labels"]["feature"] == "charges"
                for a in alerts
            )

        wait_until(drift_alert, 30, "the charges mean-shift alert")
        active = _api(prometheus_server, "alerts")["alerts"]
        assert not [a for a in active if a["labels"].get("feature") == "tenure"]
        assert "MlciPredictionLogDropping" in {a["labels"]["alertname"] for a in active}

        # a firing alert (no 'for') goes through Alertmanager to the webhook, with its labels
        def routed() -> list[dict[str, Any]]:
            return [
                a
                for message in _Webhook.received
                for a in message["alerts"]
                if a["labels"]["alertname"] == "MlciPredictionLogDropping"
            ]

        wait_until(lambda: bool(routed()), 60, "the webhook to receive the alert", alertmanager_server.log)
        alert = routed()[0]
        assert alert["status"] == "firing"
        assert alert["labels"]["job"] == "live-churn" and alert["labels"]["severity"] == "warning"
        assert "dropped rows" in alert["annotations"]["summary"]


@contextlib.contextmanager
def hook_closed(hook: http.server.ThreadingHTTPServer) -> Iterator[None]:
    try:
        yield
    finally:
        hook.shutdown()
        hook.server_close()
