"""`mlci deploy render` + validation, and `mlci deploy analyze` over 10 minutes of two targets.

    .venv/bin/python bench/deploy.py [--repeat 3]

Render: the CLI as a user runs it (a fresh process: start-up, reading mlci.yaml, rendering a
Rollout, AnalysisTemplate, Service, HPA, PDB, NetworkPolicy and ServiceMonitor, validating each
strictly against Kubernetes 1.31, writing deploy/base atomically). Target: under 2 s.

Analyze: a real Prometheus (Debian's) holding the last 10 minutes of a stable and a canary
target scraped every second. Waiting 10 minutes for a scrape is no benchmark, so the series are
written as OpenMetrics — counters of 20 requests a second per target, the runtime's metric names
and labels — and backfilled with ``promtool tsdb create-blocks-from openmetrics`` before the
server starts on that database. The CLI runs as a fresh process (start-up, 10 queries, 2 x 1000
bootstrap resamples, the verdict). Target: under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mlci_lib.deploy import serving_metrics as names  # noqa: E402
from tests.helpers.components import free_port, wait_until  # noqa: E402

IMAGE = "registry.example:5000/team/churn@sha256:" + "a" * 64
BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The share of requests in each bucket (the last is +Inf), the same for both targets.
SHARES = (0.0, 0.05, 0.45, 0.35, 0.1, 0.04, 0.01, 0, 0, 0, 0, 0, 0, 0, 0)


def _timed(command: list[str], repeat: int, ok: tuple[int, ...] = (0,)) -> list[float]:
    times = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(repeat):
        began = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        times.append(time.perf_counter() - began)
        if done.returncode not in ok:
            raise SystemExit(f"{' '.join(command[:4])} exited {done.returncode}: {done.stderr.strip()}")
    return times


def bench_render(folder: Path, repeat: int) -> list[float]:
    import yaml

    config = folder / "mlci.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "model": {"name": "churn"},
                "stages": {"gate": {"rules": "gate.yaml"}},
                "deploy": {
                    "namespace": "ml",
                    "autoscaling": {"min-replicas": 2, "max-replicas": 6},
                    "rollout": {"steps": [10, 50], "pause": "5m", "prometheus": "http://prometheus:9090"},
                },
            }
        )
    )
    return _timed(
        [
            sys.executable,
            "-m",
            "mlci_lib",
            "deploy",
            "render",
            "--image",
            IMAGE,
            "--model-name",
            "churn",
            "--config",
            str(config),
            "--output",
            str(folder / "deploy"),
        ],
        repeat,
    )


def _openmetrics(end: float, seconds: int = 600, rate: int = 20) -> str:
    lines = []
    families = {
        "mlci_requests": "counter",
        "mlci_request_duration_seconds": "histogram",
        "mlci_predicted_rows": "counter",
        "mlci_predictions": "counter",
    }
    start = int(end) - seconds
    series: dict[str, list[str]] = {f: [] for f in families}
    for job in ("stable", "canary"):
        errors = 0.01 if job == "canary" else 0.005
        for t in range(seconds + 1):
            ts = start + t
            n = rate * t
            base = f'job="{job}",instance="{job}:8080"'
            predict = f'{base},endpoint="/predict"'
            ok, failed = round(n * (1 - errors)), round(n * errors)
            series["mlci_requests"].append(f'{names.REQUESTS}{{{predict},code="200"}} {ok} {ts}')
            series["mlci_requests"].append(f'{names.REQUESTS}{{{predict},code="500"}} {failed} {ts}')
            cumulative = 0.0
            for bound, share in zip((*BOUNDS, "+Inf"), SHARES, strict=True):
                cumulative += share
                series["mlci_request_duration_seconds"].append(
                    f'{names.DURATION_BUCKET}{{{base},le="{bound}"}} {round(n * cumulative)} {ts}'
                )
            series["mlci_request_duration_seconds"].append(f"{names.DURATION_COUNT}{{{base}}} {n} {ts}")
            series["mlci_request_duration_seconds"].append(
                f"mlci_request_duration_seconds_sum{{{base}}} {n * 0.003} {ts}"
            )
            series["mlci_predicted_rows"].append(f"{names.PREDICTED_ROWS}{{{base}}} {2 * n} {ts}")
            series["mlci_predictions"].append(
                f'{names.PREDICTIONS}{{{base},class="churn"}} {round(0.6 * n)} {ts}'
            )
            series["mlci_predictions"].append(
                f'{names.PREDICTIONS}{{{base},class="stay"}} {round(1.4 * n)} {ts}'
            )
    for family, kind in families.items():
        lines.append(f"# TYPE {family} {kind}")
        # OpenMetrics wants each series' samples together and in time order.
        lines.extend(
            sorted(series[family], key=lambda line: (line.rsplit(" ", 2)[0], int(line.rsplit(" ", 1)[1])))
        )
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def bench_analyze(folder: Path, repeat: int) -> tuple[list[float], dict]:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        raise SystemExit("bench/deploy.py needs Debian's prometheus (scripts/test installs it)")
    end = time.time()
    data = folder / "tsdb"
    source = folder / "series.om"
    source.write_text(_openmetrics(end))
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
    )
    config = folder / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1s}\nscrape_configs: []\n")
    port = free_port()
    with open(folder / "prometheus.log", "wb") as log:
        server = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200, 60, "prometheus"
        )
        verdict = folder / "canary.json"
        command = [
            sys.executable,
            "-m",
            "mlci_lib",
            "deploy",
            "analyze",
            "--prometheus",
            url,
            "--stable",
            'job="stable"',
            "--canary",
            'job="canary"',
            "--window",
            "10m",
            "--verdict-file",
            str(verdict),
        ]
        times = _timed(command, repeat, ok=(0, 1))
        return times, json.loads(verdict.read_text())
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlci-bench-deploy-") as tmp:
        folder = Path(tmp)
        render = bench_render(folder, args.repeat)
        analyze, verdict = bench_analyze(folder, args.repeat)
    print(
        f"deploy render + validation (CLI, fresh process): median {statistics.median(render):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in render)}); target < 2 s"
    )
    print(
        f"deploy analyze, 10m window, 2 targets (CLI, fresh process): "
        f"median {statistics.median(analyze):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in analyze)}); target < 1 s"
    )
    print(
        f"  decision {verdict['decision']}: {verdict['stable']['requests']:,} stable and "
        f"{verdict['canary']['requests']:,} canary requests; "
        + ", ".join(f"{r['rule']} {r['outcome']}" for r in verdict["rules"])
    )


if __name__ == "__main__":
    main()
