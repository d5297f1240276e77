"""The gate's fast paths give exactly what the plain computation they replace gives.

Each fast path (sorting scores once, bin lookup through a grid, counting class codes, reading
Arrow columns straight into NumPy, skipping the join when ids already line up) is checked
against the straightforward NumPy or pandas computation on inputs chosen to break it: ties,
signed zeros, a single class, values on bin edges, tiny score ranges, bad values in Parquet.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from mlci_lib.errors import InputError
from mlci_lib.gate import run_gate
from mlci_lib.gate.bootstrap import _cell_covariance_factors, _score_bins, count_below
from mlci_lib.gate.metrics import (
    EncodedRows,
    ranking_from_groups,
    ranking_from_sorted,
    score_groups,
    sort_scores,
)
from mlci_lib.gate.predictions import _distinct, align_baseline, read_predictions
from mlci_lib.tables import read_table


def _scores(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "distinct":
        return rng.normal(size=n)
    if kind == "tied":
        return np.round(rng.random(n), 2)
    if kind == "signed-zeros":
        return rng.choice([-0.0, 0.0, 0.5, -1.0], size=n)
    if kind == "constant":
        return np.full(n, 0.3)
    if kind == "tiny-range":
        return 0.5 + rng.integers(0, 4, n) * np.finfo(float).eps
    if kind == "denormal":
        return rng.random(n) * 1e-310
    raise AssertionError(kind)


KINDS = ["distinct", "tied", "signed-zeros", "constant", "tiny-range", "denormal"]


@pytest.mark.parametrize("labels", ["mixed", "all-positive", "all-negative"])
@pytest.mark.parametrize("kind", KINDS)
def test_sorted_scores_count_like_unique(kind: str, labels: str) -> None:
    rng = np.random.default_rng(0)
    scores = _scores(kind, 5000, rng)
    positive = (
        rng.integers(0, 2, 5000).astype(bool)
        if labels == "mixed"
        else np.full(5000, labels == "all-positive")
    )
    _, pos, neg = score_groups(scores, positive)
    summary = sort_scores(scores, positive)
    assert np.array_equal(summary.values, np.sort(scores))
    assert np.array_equal(summary.distinct(), np.unique(scores))
    assert summary.distinct_count() == len(np.unique(scores))
    for name, sklearn_metric in (("roc_auc", roc_auc_score), ("pr_auc", average_precision_score)):
        from_groups = float(ranking_from_groups(name, pos, neg))
        got = ranking_from_sorted(name, summary)
        if labels != "mixed" and not (name == "pr_auc" and labels == "all-positive"):
            assert math.isnan(got) and math.isnan(from_groups)
            continue
        assert got == pytest.approx(from_groups, rel=1e-12, abs=1e-15)
        assert got == pytest.approx(sklearn_metric(positive, scores), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("bins", [2, 16, 128, 5000])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.slow
def test_count_below_equals_searchsorted(kind: str, bins: int) -> None:
    rng = np.random.default_rng(1)
    values = _scores(kind, 300_000, rng)
    ordered = np.sort(values)
    edges = ordered[-(-np.arange(1, bins) * len(values) // bins) - 1]
    got = count_below(edges, values, ordered[0], ordered[-1])
    assert np.array_equal(got, np.searchsorted(edges, values, side="left"))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.slow
def test_score_bins_follow_the_rank_definition(kind: str) -> None:
    """A row's bin is bins·r // n, r the number of rows with a smaller score (one bin per score when few)."""
    rng = np.random.default_rng(2)
    n, bins = 300_000, 128
    scores = _scores(kind, n, rng)
    labels = rng.integers(0, 2, n)
    rows = EncodedRows("binary", labels, labels, scores=scores, n_classes=2, pos_index=1)
    got, width = _score_bins(rows, bins)
    distinct, inverse, sizes = np.unique(scores, return_inverse=True, return_counts=True)
    if len(distinct) > bins:
        first_rank = np.cumsum(sizes) - sizes
        expected = (first_rank * bins // n)[inverse]
        assert width == bins
    else:
        expected, width_expected = inverse, len(distinct)
        assert width == width_expected
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("same_model", [False, True], ids=["two-models", "model-against-itself"])
def test_cell_draws_have_the_law_of_the_per_type_perturbation(same_model: bool) -> None:
    """L·Lᵀ equals M·Mᵀ, M the map of per-type normals sqrt(c)·Z onto the cells: the same Gaussian law."""
    rng = np.random.default_rng(3)
    n_types, width = 3000, 2 * (64 + 64)
    positive = rng.integers(0, 2, n_types)
    first = positive * 64 + rng.integers(0, 64, n_types)
    second = first if same_model else positive * 64 + rng.integers(0, 64, n_types)
    cells = [first, 128 + second]
    counts = rng.integers(1, 50, n_types)
    per_type = np.zeros((width, n_types))
    for c in cells:
        per_type[c, np.arange(n_types)] = np.sqrt(counts)
    law = np.zeros((width, width))
    covered = []
    for block, factor in _cell_covariance_factors(cells, counts, [64, 64]):
        law[np.ix_(block, block)] = factor @ factor.T
        covered.extend(block.tolist())
    np.testing.assert_allclose(law, per_type @ per_type.T, rtol=0, atol=1e-8 * counts.sum())
    assert sorted(covered) == sorted(set(np.concatenate(cells).tolist()))


@pytest.mark.parametrize(
    "values",
    [
        np.array([0.0, 1.0, 1.0, 0.0]),
        np.array([3.0, -2.0, 7.0, -2.0]),
        np.array([-0.0, 0.0, 2.0]),
        np.array([1e15, 1e15 + 2, 1e15]),
        np.array([0.0, 1e9]),
        np.array([0.5, 1.5, 0.5]),
        np.array(["b", "a", "b"], dtype=object),
    ],
    ids=["binary", "negative", "signed-zero", "large", "wide-span", "fractional", "text"],
)
def test_distinct_equals_unique(values: np.ndarray) -> None:
    uniq, inverse = _distinct(values)
    expected, expected_inverse = np.unique(values, return_inverse=True)
    assert uniq.tolist() == expected.tolist()
    assert np.array_equal(inverse, expected_inverse.reshape(-1))


def _frame(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "id": np.arange(n) * 2 + 5,
            "label": y,
            "prediction": rng.integers(0, 2, n).astype(bool),
            "score": rng.random(n).astype(np.float32),
            "proba_1": rng.random(n),
            "group": np.where(y == 1, "a", "b"),
        }
    )


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict(orient="records")))
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_arrow_read_equals_the_pandas_read(tmp_path: Path, suffix: str) -> None:
    """Parquet and CSV columns go straight from Arrow to NumPy: the same arrays as through pandas."""
    path = _write(_frame(), tmp_path / f"p{suffix}")
    fast = read_predictions(path, what="p", slice_columns=["group"])
    frame = read_table(path)
    # Integer and boolean class columns stay integers from Arrow (CSV's reader too).
    arrow_kind = np.int64
    expected = {
        "labels": frame["label"].to_numpy(dtype=arrow_kind),
        "predictions": frame["prediction"].to_numpy(dtype=arrow_kind),
        "ids": frame["id"].to_numpy(),
        "score": frame["score"].to_numpy(dtype=np.float64),
    }
    for name, values in expected.items():
        got = getattr(fast, name)
        assert got.dtype == values.dtype and np.array_equal(got, values), name
    assert list(fast.proba) == ["1"] and np.array_equal(fast.proba["1"], frame["proba_1"].to_numpy())
    assert list(fast.slices["group"]) == list(frame["group"])
    # JSON Lines has no Arrow reader: the pandas path, same values (float32 scores aside).
    slow = read_predictions(_write(_frame(), tmp_path / "p.jsonl"), what="p")
    assert np.array_equal(slow.labels, fast.labels) and np.array_equal(slow.ids, fast.ids)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("label", np.nan, "missing value at row 4"),
        ("label", np.inf, "infinite value at row 4"),
        ("score", np.nan, "missing or infinite value at row 4"),
        ("score", -np.inf, "missing or infinite value at row 4"),
        ("score", None, "missing or infinite value at row 4"),
        ("id", None, "is empty at row 4"),
    ],
    ids=["nan-label", "inf-label", "nan-score", "inf-score", "null-score", "null-id"],
)
def test_bad_values_in_parquet_fail_with_the_same_message(
    tmp_path: Path, column: str, value: object, message: str
) -> None:
    frame = _frame().astype({column: object if value is None else float})
    frame.loc[3, column] = value
    if value is None:
        frame[column] = frame[column].astype("Float64" if column == "score" else "Int64")
    path = _write(frame, tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=message):
        read_predictions(path, what="candidate predictions file")


def test_ids_in_the_same_order_join_like_shuffled_ids(tmp_path: Path) -> None:
    frame = _frame(2000)
    base = frame.assign(
        prediction=np.roll(frame["prediction"].to_numpy(), 5), score=np.roll(frame["score"], 9)
    )
    cand_path = _write(frame, tmp_path / "c.parquet")
    same_order = _write(base, tmp_path / "b.parquet")
    shuffled = _write(base.sample(frac=1.0, random_state=0), tmp_path / "s.parquet")
    rules = ["accuracy max-drop=0.01", "roc_auc max-drop=0.01"]
    first = run_gate(str(cand_path), str(same_order), rule=rules, resamples=200).to_dict()
    second = run_gate(str(cand_path), str(shuffled), rule=rules, resamples=200).to_dict()
    for verdict in (first, second):
        verdict["baseline"]["source"] = None
    assert first == second


def test_identical_duplicate_ids_are_still_refused(tmp_path: Path) -> None:
    frame = _frame(50).assign(id=lambda d: d.id.where(d.index != 7, d.id[6]))
    cand = read_predictions(_write(frame, tmp_path / "c.parquet"), what="c")
    base = read_predictions(_write(frame, tmp_path / "b.parquet"), what="b")
    with pytest.raises(InputError, match="appears twice"):
        align_baseline(cand, base)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_integer_class_columns_give_the_verdict_of_float_ones(tmp_path: Path, task: str) -> None:
    """Integer labels and predictions are read as integers: the same verdict as the same values as floats."""
    rng = np.random.default_rng(3)
    n = 3000
    if task == "regression":
        # Large enough that their squares overflow int64: the metrics must square floats.
        y = rng.integers(0, 10, n) * 4_000_000_000
        cand, base = y + rng.integers(-2, 3, n) * 4_000_000_000, y + rng.integers(-3, 4, n) * 4_000_000_000
        rules = ["rmse max-drop=0", "mae max-drop=0"]
    else:
        k = 2 if task == "binary" else 4
        y = rng.integers(0, k, n)
        flip = rng.random(n) < 0.2
        cand, base = np.where(flip, (y + 1) % k, y), np.where(rng.random(n) < 0.25, (y + 1) % k, y)
        rules = ["accuracy max-drop=0.01", "f1 max-drop=0.01" if k == 2 else "f1_macro max-drop=0.01"]
    verdicts = []
    for kind in (np.int64, np.float64):
        paths = [
            _write(
                pd.DataFrame({"id": np.arange(n), "label": y.astype(kind), "prediction": pred.astype(kind)}),
                tmp_path / f"{name}-{kind.__name__}.parquet",
            )
            for name, pred in (("c", cand), ("b", base))
        ]
        verdict = run_gate(str(paths[0]), str(paths[1]), rule=rules, resamples=200, task=task).to_dict()
        for side in ("candidate", "baseline"):  # the files differ; what was computed on them may not
            verdict[side].pop("source", None)
            verdict[side].pop("fingerprint", None)
        verdicts.append(verdict)
    assert verdicts[0]["rules"] == verdicts[1]["rules"]
    assert verdicts[0]["candidate"] == verdicts[1]["candidate"]
    if task == "regression":
        rmse = verdicts[0]["rules"][0]
        assert rmse["candidate"] == pytest.approx(float(np.sqrt(np.mean((cand - y).astype(float) ** 2))))
