"""`mlci monitor check` with labels joined later, several model versions, rules, and bad input.

Logs are written by the real serving runtime for real scikit-learn models; labels files are what
a labelling process would write later (request id and row, or a customer id the model received).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlci_lib.models import save_model
from tests.helpers.monitoring import labels_frame, rule, run_check, serve_and_log

pytestmark = pytest.mark.slow


def simulate(rng: np.random.Generator, n: int, *, shift: float = 0.0) -> tuple[pd.DataFrame, Any]:
    x = rng.normal(shift, 1, n)
    z = rng.normal(0, 1, n)
    frame = pd.DataFrame({"customer": rng.permutation(n) + 10_000, "x": x.round(4), "z": z.round(4)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * x - z)))).astype(int)
    return frame, y


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("monitor-labels")
    rng = np.random.default_rng(3)
    train, y = simulate(rng, 3000)
    evaluation, y_eval = simulate(rng, 2000)
    train.assign(label=y).to_csv(root / "train.csv", index=False)
    evaluation.assign(label=y_eval).to_csv(root / "eval.csv", index=False)
    features = ["customer", "x", "z"]
    for version, seed in (("1", 0), ("2", 1)):
        model = LogisticRegression(C=1.0 if seed == 0 else 0.5).fit(train[features], y)
        save_model(
            model,
            root / f"v{version}",
            sample_input=train.head(),
            name="churn",
            extra_metadata={"version": version},
        )
    rows, labels = simulate(np.random.default_rng(9), 1200)
    ids = serve_and_log(root / "v1", rows, root / "logs-v1", batch=200)
    both_rows, both_labels = simulate(np.random.default_rng(10), 1200)
    both_ids = serve_and_log(root / "v1", both_rows.iloc[:600], root / "logs-both", prefix="a", batch=200)
    both_ids += serve_and_log(root / "v2", both_rows.iloc[600:], root / "logs-both", prefix="b", batch=200)
    return {
        "root": root,
        "rows": rows,
        "labels": labels,
        "ids": ids,
        "both_rows": both_rows,
        "both_labels": both_labels,
        "both_ids": both_ids,
    }


def check(
    setup: dict[str, Any], *extra: str, logs: str = "logs-v1", models: tuple[str, ...] = ("v1",)
) -> tuple[int, dict[str, Any], str]:
    root = setup["root"]
    argv = ["--logs", str(root / logs), "--reference", str(root / "train.csv")]
    for model in models:
        argv += ["--model", str(root / model)]
    return run_check(*argv, *extra)


def write(setup: dict[str, Any], name: str, frame: pd.DataFrame) -> str:
    path = setup["root"] / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def test_labels_join_on_request_id_and_row_and_give_the_gates_metrics(setup: dict[str, Any]) -> None:
    labels = write(setup, "labels.parquet", labels_frame(setup["ids"], setup["labels"], batch=200))
    code, verdict, err = check(
        setup, "--labels", labels, "--rule", "accuracy min=0.6", "--rule", "roc_auc min=0.6"
    )
    assert code == 0, err
    counts = verdict["labels"]
    assert counts["key"] == ["request_id", "row"]
    assert counts["joined_rows"] == counts["logged_rows"] == 1200 and counts["unmatched_labels"] == 0
    (version,) = verdict["versions"]
    assert version["version"] == "1" and version["labelled_rows"] == 1200
    accuracy = rule(version, "accuracy min")
    assert accuracy["outcome"] == "pass" and accuracy["method"] == "bootstrap"
    low, high = accuracy["interval"]
    assert low < version["realized"]["metrics"]["accuracy"] < high
    # The same figure the gate computes from the same labels and predictions.
    from mlci_lib.gate.predictions import compute_metrics

    logged = pd.concat(
        pd.read_json(f, lines=True) for f in sorted((setup["root"] / "logs-v1").glob("*.jsonl"))
    )
    keys = zip(setup["ids"], [i % 200 for i in range(1200)], strict=True)
    by_key = dict(zip(keys, setup["labels"], strict=True))
    truth = [by_key[(r, i)] for r, i in zip(logged.request_id, logged.row, strict=True)]
    expected = compute_metrics(truth, logged.prediction.to_numpy(), metrics=["accuracy"])
    assert version["realized"]["metrics"]["accuracy"] == pytest.approx(expected["accuracy"])


def test_a_partial_join_is_judged_on_the_joined_rows_and_counted(setup: dict[str, Any]) -> None:
    frame = labels_frame(setup["ids"], setup["labels"], batch=200).iloc[::3]  # a third arrived
    extra = pd.DataFrame({"request_id": ["elsewhere"] * 5, "row": range(5), "label": [1, 0, 1, 0, 1]})
    missing = pd.DataFrame({"request_id": ["r0"], "row": [199], "label": [None]})
    frame = pd.concat([frame[~((frame.request_id == "r0") & (frame.row == 199))], extra, missing])
    code, verdict, err = check(
        setup, "--labels", write(setup, "partial.csv", frame), "--rule", "accuracy min=0.6"
    )
    assert code == 0, err
    counts = verdict["labels"]
    assert counts["joined_rows"] == 400 and counts["logged_rows"] == 1200
    assert counts["unmatched_labels"] == 5 and counts["missing_labels"] == 1
    assert verdict["versions"][0]["labelled_rows"] == 400
    assert "400 of 1,200 logged rows joined" in err or "400 of 1,200" in _summary(setup, frame)


def _summary(setup: dict[str, Any], frame: pd.DataFrame) -> str:
    from mlci_lib.monitor.monitor import monitor_logs

    root = setup["root"]
    verdict = monitor_logs(
        [root / "logs-v1"], root / "train.csv", root / "v1", labels=write(setup, "partial.csv", frame)
    )
    return verdict.markdown()


def test_labels_join_on_a_customer_id_the_model_received(setup: dict[str, Any]) -> None:
    frame = pd.DataFrame({"customer": setup["rows"].customer, "churned": setup["labels"]}).sample(
        frac=1, random_state=0
    )
    code, verdict, err = check(
        setup,
        "--labels",
        write(setup, "by-customer.csv", frame),
        "--label-id-column",
        "customer",
        "--label-column",
        "churned",
        "--rule",
        "accuracy min=0.6",
    )
    assert code == 0, err
    assert verdict["labels"]["key"] == ["customer"] and verdict["labels"]["joined_rows"] == 1200


@pytest.mark.parametrize(
    ("frame", "extra", "message"),
    [
        (pd.DataFrame({"request_id": ["nope"], "row": [0], "label": [1]}), [], "none of its 1 labels joins"),
        (pd.DataFrame({"id": ["r0"], "label": [1]}), [], "has no request_id column"),
        (pd.DataFrame({"request_id": ["r0"], "label": [1]}), [], "several rows"),
        (
            pd.DataFrame({"request_id": ["r0", "r0"], "row": [0, 0], "label": [1, 0]}),
            [],
            "more than one label",
        ),
        (pd.DataFrame({"request_id": ["r0"], "row": [0], "y": [1]}), [], "has no column 'label'"),
        (pd.DataFrame({"user": [1], "label": [1]}), ["--label-id-column", "user"], "have no input 'user'"),
    ],
    ids=["joins-nothing", "no-key", "several-rows", "duplicate-key", "no-label", "id-not-an-input"],
)
def test_bad_labels_are_a_one_line_error(
    setup: dict[str, Any], frame: pd.DataFrame, extra: list[str], message: str
) -> None:
    code, _, err = check(setup, "--labels", write(setup, "bad.csv", frame), *extra)
    assert code == 2, err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_each_version_in_the_logs_is_judged_on_its_own(setup: dict[str, Any]) -> None:
    labels = write(setup, "both.csv", _both_labels(setup))
    code, verdict, err = check(
        setup, "--labels", labels, "--rule", "accuracy min=0.6", logs="logs-both", models=("v1", "v2")
    )
    assert code == 0, err
    versions = {v["version"]: v for v in verdict["versions"]}
    assert set(versions) == {"1", "2"} and versions["1"]["digest"] != versions["2"]["digest"]
    assert versions["1"]["rows"] == versions["2"]["rows"] == 600
    assert versions["1"]["labelled_rows"] == versions["2"]["labelled_rows"] == 600
    assert all(rule(v, "accuracy min")["outcome"] == "pass" for v in versions.values())


def _both_labels(setup: dict[str, Any]) -> pd.DataFrame:
    ids = setup["both_ids"]
    return pd.DataFrame(
        {"request_id": ids, "row": [i % 200 for i in range(len(ids))], "label": setup["both_labels"]}
    )


def test_logs_of_a_model_not_given_are_refused(setup: dict[str, Any]) -> None:
    code, _, err = check(setup, logs="logs-both", models=("v1",))
    assert code == 2
    assert "holds rows of another model" in err and "Traceback" not in err


def test_a_version_without_labels_has_an_undefined_realized_rule(setup: dict[str, Any]) -> None:
    only_v1 = _both_labels(setup).iloc[:600]
    code, verdict, _ = check(
        setup,
        "--labels",
        write(setup, "v1-only.csv", only_v1),
        "--rule",
        "accuracy min=0.6",
        logs="logs-both",
        models=("v1", "v2"),
    )
    assert code == 1
    versions = {v["version"]: v for v in verdict["versions"]}
    assert rule(versions["1"], "accuracy min")["outcome"] == "pass"
    assert rule(versions["2"], "accuracy min")["outcome"] == "undefined"


def test_without_labels_realized_rules_wait_and_do_not_pass_or_fail(setup: dict[str, Any]) -> None:
    code, verdict, err = check(setup, "--rule", "accuracy min=0.99")
    assert code == 0, err
    assert rule(verdict["versions"][0], "accuracy min")["outcome"] == "skipped"
    assert "realized performance (no --labels)" in verdict["not_checked"]


def test_an_undefined_metric_never_passes(setup: dict[str, Any]) -> None:
    frame = labels_frame(setup["ids"], np.ones(1200, dtype=int), batch=200)  # one class: no ROC AUC
    code, verdict, _ = check(
        setup, "--labels", write(setup, "one-class.csv", frame), "--rule", "roc_auc min=0.5"
    )
    assert code == 1
    outcome = rule(verdict["versions"][0], "roc_auc min")
    assert outcome["outcome"] == "undefined" and "one class" in outcome["message"]


@pytest.mark.parametrize(
    ("config", "code", "status"),
    [("", 1, "fail"), ("on-no-traffic: inconclusive\n", 1, "inconclusive")],
    ids=["fail", "inconclusive"],
)
def test_an_empty_window_never_passes(setup: dict[str, Any], config: str, code: int, status: str) -> None:
    path = setup["root"] / "no-traffic.yml"
    path.write_text(config or "{}\n")
    got, verdict, _ = check(setup, "--config", str(path), "--until", "2000-01-01T00:00:00Z", "--window", "1h")
    assert got == code
    assert verdict["passed"] is False and verdict["status"] == status and verdict["rows"] == 0


@pytest.mark.parametrize(
    ("policy", "code", "status"), [("fail", 1, "inconclusive"), ("warn", 0, "warn")], ids=["fail", "warn"]
)
def test_too_few_rows_is_inconclusive_and_the_policy_decides(
    setup: dict[str, Any], policy: str, code: int, status: str
) -> None:
    path = setup["root"] / f"min-rows-{policy}.yml"
    path.write_text(f"min-rows: 5000\non-inconclusive: {policy}\n")
    got, verdict, _ = check(setup, "--config", str(path))
    assert got == code and verdict["status"] == status
    assert rule(verdict["versions"][0], "min-rows")["outcome"] == "inconclusive"


def test_the_training_suite_runs_on_the_logged_inputs(setup: dict[str, Any]) -> None:
    suite = setup["root"] / "suite.yml"
    suite.write_text(
        "name: churn\ntable: {rows: {min: 2000}}\ncolumns:\n  x: {min: -1, max: 1, mostly: 0.99}\n"
        "  z: {nullable: false}\n  label: {allowed: [0, 1]}\n"
    )
    code, verdict, err = check(setup, "--suite", str(suite))
    assert code == 1, err
    (version,) = verdict["versions"]
    quality = version["data_quality"]
    assert quality["schema"] == "mlci.data-check" and quality["rows"] == 1200
    failed = [e for e in quality["expectations"] if not e["success"]]
    assert [e["column"] for e in failed] == ["x"]
    skipped = " ".join(version["data_quality_skipped"])
    assert "'label'" in skipped and "table-wide" in skipped
    assert rule(version, "data quality")["outcome"] == "fail"
    label_only = setup["root"] / "label-only.yml"
    label_only.write_text("name: labels\ncolumns:\n  label: {allowed: [0, 1]}\n")
    code, verdict, _ = check(setup, "--suite", str(label_only))
    assert code == 1  # a suite with nothing to check on the logs never passes them
    outcome = rule(verdict["versions"][0], "data quality")
    assert outcome["outcome"] == "undefined" and "no expectation on the model's inputs" in outcome["message"]
    advisory = setup["root"] / "advisory.yml"
    advisory.write_text("data-quality: warn\n")
    code, verdict, _ = check(setup, "--suite", str(suite), "--config", str(advisory))
    assert code == 0 and verdict["status"] == "warn"


@pytest.mark.parametrize(
    ("config", "extra", "message"),
    [
        ("metrics: {estimated_roc_auc: {min: 0.7}}\n", [], "only metrics of the confusion matrix"),
        ("data-quality: pass\n", [], "needs the training data's suite"),
        ("metrics: {accuracy: {max-drop: 0.05}}\n", [], "compares with the evaluation set"),
        ("alerts: 1\n", [], "alerts"),
        ("on-no-traffic: pass\n", [], "on-no-traffic"),
        ("metrics: {acuracy: {min: 0.5}}\n", [], "acuracy"),
        ("{}\n", ["--rule", "latency:p95_ms max=5"], "names a metric"),
    ],
    ids=[
        "estimated-auc",
        "quality-without-suite",
        "drop-without-evaluation",
        "unknown-key",
        "no-traffic-pass",
        "typo",
        "latency-rule",
    ],
)
def test_bad_config_is_a_one_line_error(
    setup: dict[str, Any], config: str, extra: list[str], message: str
) -> None:
    path = setup["root"] / "bad.yml"
    path.write_text(config)
    code, _, err = check(setup, "--config", str(path), *extra)
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_change_rules_compare_with_the_evaluation_set(setup: dict[str, Any]) -> None:
    labels = write(setup, "labels.parquet", labels_frame(setup["ids"], setup["labels"], batch=200))
    code, verdict, err = check(
        setup,
        "--labels",
        labels,
        "--evaluation",
        str(setup["root"] / "eval.csv"),
        "--rule",
        "accuracy max-drop=0.1",
        "--rule",
        "estimated_accuracy max-drop=0.1",
    )
    assert code == 0, err
    version = verdict["versions"][0]
    for name in ("accuracy max-drop", "estimated_accuracy max-drop"):
        outcome = rule(version, name)
        assert (
            outcome["outcome"] == "pass"
            and outcome["baseline"] is not None
            and outcome["statistic"] == "change"
        )
