"""Report speed: rendering, plots against scikit-learn's display plots, and the PR comment round trip.

Run from the repository root: ``.venv/bin/python bench/report.py``. It prints, side by side in
one process on the same data:

- ``render_report`` of a pipeline verdict with a gate (bootstrap, slices), a data check and drift;
- the four PNG plots (confusion matrix, ROC, precision-recall, calibration) from 100,000 rows:
  mlci's ``write_plots`` against scikit-learn's ``*Display.from_predictions`` through pyplot
  (the baseline a user would write), both saving PNGs at the same size;
- post_pr_comment against the local stand-in GitHub API: first run (create) and rerun (update)
  with 250 other comments on the pull request (3 pages to search), and the requests each took.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlci_lib.drift import detect_drift
from mlci_lib.gate import run_gate
from mlci_lib.report import post_pr_comment, render_report
from mlci_lib.report.plots import write_plots
from tests.helpers.github_api import GitHubStandIn


def timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_inputs(folder: Path, rows: int) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    out = {}
    for name, noise in (("candidate", 0.25), ("baseline", 0.3)):
        score = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, noise, rows), 0, 1)
        frame = pd.DataFrame({"id": np.arange(rows), "label": y, "prediction": (score > 0.5).astype(int)})
        frame.assign(score=score, region=region).to_parquet(folder / f"{name}.parquet")
        out[name] = folder / f"{name}.parquet"
    gate = run_gate(
        out["candidate"],
        out["baseline"],
        rule=["accuracy max-drop=0.01", "roc_auc max-drop=0.01", "slice:recall min=0.5"],
        slice_column=["region"],
        resamples=200,
    )
    (folder / "gate.json").write_text(gate.to_json())
    ref = pd.DataFrame({f"f{i}": rng.normal(0, 1, 5000) for i in range(30)})
    cur = pd.DataFrame({f"f{i}": rng.normal(0.1 * (i % 5), 1, 5000) for i in range(30)})
    (folder / "drift.json").write_text(detect_drift(ref, cur).to_json())
    pipeline = {
        "schema": "mlci.pipeline-verdict", "schema_version": 1, "passed": False, "failed_stage": "gate",
        "git": {"commit": "a" * 40, "ref": "refs/heads/x", "branch": "x", "repository": "o/r",
                "run_url": "https://github.com/o/r/actions/runs/1"},
        "data_fingerprint": "sha256:" + "b" * 64,
        "stages": [
            {"name": "gate", "status": "failed", "message": "", "duration_s": 1.0, "verdict_file": None,
             "verdict": json.loads((folder / "gate.json").read_text())},
            {"name": "drift", "status": "passed", "message": "", "duration_s": 1.0, "verdict_file": None,
             "verdict": json.loads((folder / "drift.json").read_text())},
        ],
        "model": {"name": "m", "version": "3"}, "image": None,
    }  # fmt: skip
    (folder / "pipeline.json").write_text(json.dumps(pipeline))
    out["pipeline"] = folder / "pipeline.json"
    return out


def sklearn_plots(path: Path, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    frame = pd.read_parquet(path, columns=["label", "prediction", "score"])
    y, p, s = frame["label"].to_numpy(), frame["prediction"].to_numpy(), frame["score"].to_numpy()
    folder.mkdir(parents=True, exist_ok=True)
    for name, draw in (
        ("confusion_matrix", lambda ax: ConfusionMatrixDisplay.from_predictions(y, p, ax=ax)),
        ("roc_curve", lambda ax: RocCurveDisplay.from_predictions(y, s, ax=ax)),
        ("precision_recall_curve", lambda ax: PrecisionRecallDisplay.from_predictions(y, s, ax=ax)),
        ("calibration", lambda ax: CalibrationDisplay.from_predictions(y, s, n_bins=10, ax=ax)),
    ):
        fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
        draw(ax)
        fig.savefig(folder / f"{name}.png")
        plt.close(fig)


def main_bench() -> None:
    rows = 100_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = make_inputs(folder, rows)
        render = timed(lambda: render_report(inputs["pipeline"]), 20)
        size = len(render_report(inputs["pipeline"]).markdown)
        print(
            f"render_report (pipeline: gate with slices, 30-feature drift): {render * 1000:.1f} ms, "
            f"{size:,} chars"
        )

        # warm both (imports, font cache) before timing
        write_plots(inputs["candidate"], folder / "warm")
        sklearn_plots(inputs["candidate"], folder / "warm-sk")
        ours = timed(lambda: write_plots(inputs["candidate"], folder / "mlci"), 3)
        theirs = timed(lambda: sklearn_plots(inputs["candidate"], folder / "sk"), 3)
        print(
            f"4 PNG plots from {rows:,} rows: mlci {ours:.2f} s, "
            f"scikit-learn displays via pyplot {theirs:.2f} s (ratio {theirs / ours:.2f}x)"
        )

        with GitHubStandIn() as api:
            for i in range(250):
                api.add_comment("o/r", 1, f"comment {i}")
            report = render_report(inputs["pipeline"])

            def comment() -> None:
                post_pr_comment(report, token="t0k3n-bench", repository="o/r", pr_number=1, api_url=api.url)

            start = time.perf_counter()
            comment()
            create = time.perf_counter() - start
            first_requests = len(api.requests)
            update = timed(comment, 5)
            per_update = (len(api.requests) - first_requests) / 5
            print(
                f"PR comment with 250 other comments: create {create * 1000:.1f} ms "
                f"({first_requests} requests), update {update * 1000:.1f} ms ({per_update:.0f} requests)"
            )


if __name__ == "__main__":
    main_bench()
