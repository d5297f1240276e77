"""Each action's own overhead in an act run (install when cached, start-up, writing outputs).

    .venv/bin/python bench/action_overhead.py [--repeat 3]

One workflow runs each action on tiny inputs once to warm the install cache, then --repeat times.
The median of those warm step times in act minus the median wall time of the same command run
directly (`python -m mlci_lib ...`, --repeat runs) is the action's overhead: the
composite action machinery, the Python check, the cached-install check, reading inputs from the
environment, and writing outputs and the summary. Target: under 3 s per action, warm.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from tests.helpers.act import run_workflow  # noqa: E402

EXAMPLE = ROOT / "mlci_lib" / "templates" / "example"

STORE = "sqlite:///mlflow.db"

#: action -> (with: inputs, the same command run directly)
ACTIONS: dict[str, tuple[dict[str, str], list[str]]] = {
    "mlci-dev/mlci@v1": ({}, ["--version"]),
    "mlci-dev/mlci/actions/metric-gate@v1": (
        {"candidate": "preds.csv", "rule": "accuracy min=0.5", "resamples": "0"},
        ["gate", "--candidate", "preds.csv", "--rule", "accuracy min=0.5", "--resamples", "0"],
    ),
    "mlci-dev/mlci/actions/drift-check@v1": (
        {"reference": "data/train.csv", "current": "data/eval.csv", "ignore": "id"},
        ["drift", "--reference", "data/train.csv", "--current", "data/eval.csv", "--ignore", "id"],
    ),
    "mlci-dev/mlci/actions/report@v1": (
        {"verdict": "gate.json", "comment": "false", "report-file": "report.md"},
        ["report", "gate.json", "--comment", "false", "--report-file", "report.md"],
    ),
    "mlci-dev/mlci/actions/data-check@v1": (
        {"data": "data/eval.csv", "suite": "data.suite.yaml"},
        ["data", "check", "data/eval.csv", "--suite", "data.suite.yaml"],
    ),
    # The warm run pushes the same model and verdict again: an idempotent push, like the direct runs.
    "mlci-dev/mlci/actions/model-push@v1": (
        {"model": "model", "name": "bench", "verdict": "gate.json", "tracking-uri": STORE},
        ["model", "push", "model", "--name", "bench", "--verdict", "gate.json", "--tracking-uri", STORE],
    ),
}


def files(work: Path) -> dict[str, Path | str]:
    out: dict[str, Path | str] = {
        "data/train.csv": EXAMPLE / "data" / "train.csv",
        "data/eval.csv": EXAMPLE / "data" / "eval.csv",
        "data.suite.yaml": EXAMPLE / "data.suite.yaml",
    }
    for path in _small_model(work / "model").iterdir():
        out[f"model/{path.name}"] = path
    rows = "".join(f"r{i},{i % 2},{i % 2},{0.9 if i % 2 else 0.1}\n" for i in range(500))
    out["preds.csv"] = "id,label,prediction,score\n" + rows
    out["gate.json"] = _gate_verdict(out["preds.csv"])
    return out


def _small_model(folder: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    from mlci_lib.models import save_model

    frame = pd.read_csv(EXAMPLE / "data" / "train.csv")
    features = frame[["age", "income", "debt_ratio", "years_employed"]]
    save_model(LogisticRegression(max_iter=500).fit(features, frame["approved"]), folder)
    return folder


def _gate_verdict(predictions: str) -> str:
    import io

    from mlci_lib.gate import run_gate

    table = pd.read_csv(io.StringIO(predictions))
    return run_gate(table, rule=["accuracy min=0.5"], resamples=0).to_json()


def workflow(warm_runs: int) -> dict[str, object]:
    steps: list[dict[str, object]] = [
        {
            "uses": "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065",
            "with": {"python-version": "3"},
        }
    ]
    for index, (action, (inputs, _argv)) in enumerate(ACTIONS.items()):
        for attempt in ["cold", *(f"warm{run}" for run in range(warm_runs))]:
            step: dict[str, object] = {"id": f"a{index}-{attempt}", "uses": action, "continue-on-error": True}
            if inputs:
                step["with"] = dict(inputs)
            steps.append(step)
    return {
        "on": "push",
        "permissions": {"contents": "read"},
        "jobs": {"bench": {"runs-on": "ubuntu-latest", "steps": [{"uses": "actions/checkout@v4"}, *steps]}},
    }


_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration(text: str) -> float:
    """Seconds in a Go duration string as act prints it (``1m2.5s``, ``247.4ms``)."""
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(h|ms|us|µs|ns|m|s)", text):
        total += float(number) * _UNITS[unit]
    return total


def step_durations(events: list[dict[str, object]]) -> dict[str, float]:
    """Each step's time as act reports it ("Success - Main ... [247ms]"), Pre+Main+Post.

    Keys are step ids, and ``<step>/<inner step>`` for the steps inside a composite action.
    """
    out: dict[str, float] = {}
    for event in events:
        step_ids = event.get("stepID")
        if not isinstance(step_ids, list) or not 1 <= len(step_ids) <= 2 or "stepResult" not in event:
            continue
        match = re.search(r"\[([0-9.hmsuµn]+)\]\s*$", str(event.get("msg", "")))
        if match:
            key = "/".join(str(s) for s in step_ids)
            out[key] = out.get(key, 0.0) + go_duration(match.group(1))
    return out


def direct(argv: list[str], cwd: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        command = [sys.executable, "-m", "mlci_lib", *argv]
        done = subprocess.run(command, cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
        if done.returncode not in (0, 1):  # 1 is a check that did not pass: still the full work
            raise SystemExit(f"direct run of mlci {' '.join(argv)} failed: {done.stderr.decode()[-300:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="direct runs per command (median)")
    args = parser.parse_args()
    act = subprocess.run(["which", "act"], capture_output=True, text=True).stdout.strip() or str(
        Path(sys.executable).parent / "act"
    )
    with tempfile.TemporaryDirectory(prefix="mlci-bench-") as tmp:
        work = Path(tmp)
        run = run_workflow(act, work / "act", workflow(args.repeat), files=files(work))
        durations = step_durations(run.events)
        repo = work / "act" / "repo"
        head = f"{'action':<42} {'in act (s)':>10} {'install (s)':>11} {'direct (s)':>10} {'overhead':>9}"
        print(head)
        for index, (action, (_inputs, argv)) in enumerate(ACTIONS.items()):
            warm_runs = [durations.get(f"a{index}-warm{r}") for r in range(args.repeat)]
            cold = durations.get(f"a{index}-cold")
            if None in warm_runs:
                print(f"{action:<42} step not found (act returned {run.returncode}): {sorted(durations)}")
                continue
            if any(run.outcome(f"a{index}-{attempt}", "bench") != "success" for attempt in ("cold", "warm0")):
                raise SystemExit(f"{action} failed in act:\n{run.log[-3000:]}")
            warm = statistics.median(w for w in warm_runs if w is not None)
            itself = direct(argv, repo, args.repeat)
            install = statistics.median(
                durations.get(f"a{index}-warm{r}/install", 0.0) for r in range(args.repeat)
            )
            first = f"   (first run in act {cold:.2f} s)" if cold is not None else ""
            print(f"{action:<42} {warm:>10.2f} {install:>11.2f} {itself:>10.2f} {warm - itself:>9.2f}{first}")


if __name__ == "__main__":
    main()
