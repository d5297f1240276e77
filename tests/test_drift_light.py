"""Drift's p-values without scipy.stats on the large-data path: the same numbers, to the bit.

``chi_square`` and the large-sample KS p-value use ``scipy.special`` directly; these tests hold
them to what the previous implementation returned (``scipy.stats.chi2_contingency`` and
``scipy.stats.kstwobign.sf``) with exact equality, and check that a drift run on large data does
not import ``scipy.stats`` at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlci_lib.drift import stats as drift_stats


@pytest.mark.parametrize("seed", range(40))
def test_chi_square_equals_scipys_chi2_contingency_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 40))
    scale = float(rng.choice([5, 1000, 1e6]))
    ref = rng.poisson(rng.random(k) * scale)
    cur = rng.poisson(rng.random(k) * scale * rng.uniform(0.2, 3))
    ref[rng.random(k) < 0.1] = 0  # some buckets empty on one side, or both
    binned = drift_stats.Binned(tuple(str(i) for i in range(k)), ref, cur)
    table = np.vstack([ref, cur]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        pytest.skip("degenerate table: handled before any test statistic")
    expected = stats.chi2_contingency(table, correction=False)
    assert drift_stats.chi_square(binned) == (float(expected.statistic), float(expected.pvalue))


@pytest.mark.parametrize("seed", range(6))
def test_large_sample_ks_p_value_equals_kstwobign_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n1, n2 = 250_000 + 1000 * seed, 210_000
    a = np.sort(rng.normal(size=n1))
    b = np.sort(rng.normal(0.003 * seed, 1, size=n2))
    statistic, pvalue = drift_stats.ks_two_sample(a, b)
    effective = (n1 * n2 / (n1 + n2)) ** 0.5
    previous = min(max(float(stats.kstwobign.sf(effective * statistic)), 0.0), 1.0)
    assert pvalue == previous


@pytest.mark.slow
def test_drift_on_large_data_does_not_import_scipy_stats(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = drift_stats.EXACT_KS_ROWS + 10
    for name, shift in (("ref", 0.0), ("cur", 1.0)):
        pd.DataFrame({"x": rng.normal(shift, 1, n), "plan": rng.choice(["a", "b", "c"], n)}).to_parquet(
            tmp_path / f"{name}.parquet"
        )
    script = tmp_path / "run.py"
    script.write_text(
        "import json, sys\n"
        "from mlci_lib.drift import detect_drift\n"
        f"verdict = detect_drift({str(tmp_path / 'ref.parquet')!r}, {str(tmp_path / 'cur.parquet')!r})\n"
        "print(json.dumps({'stats': 'scipy.stats' in sys.modules, 'drifted': verdict.drifted_features}))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {"stats": False, "drifted": ["x"]}


def test_a_parquet_file_gives_the_verdict_of_the_same_data_frame(tmp_path: Path) -> None:
    """Parquet columns are read one at a time, text through the file's dictionary: same verdict."""
    from mlci_lib.drift import detect_drift

    rng = np.random.default_rng(7)

    def table(n: int, shift: float, levels: list[str]) -> pd.DataFrame:
        text = rng.choice(np.array(levels, dtype=object), n)
        text[rng.random(n) < 0.05] = None
        values = rng.normal(shift, 1, n)
        values[rng.random(n) < 0.03] = np.nan
        return pd.DataFrame(
            {
                "x": values,
                "count": pd.array(rng.integers(0, 9, n), dtype="Int64"),
                "plan": pd.Series(text, dtype="string"),
                "word": pd.Series(rng.choice(["é", "b c", "", "$(x)"], n), dtype=object),
                "flag": rng.random(n) < 0.3,
                "when": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
            }
        )

    ref = table(4000, 0.0, ["a", "b", "c"])
    cur = table(3000, 0.4, ["a", "b", "d", "e"])  # d and e unseen
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    from_files = detect_drift(tmp_path / "ref.parquet", tmp_path / "cur.parquet").to_dict()
    from_frames = detect_drift(
        pd.read_parquet(tmp_path / "ref.parquet"), pd.read_parquet(tmp_path / "cur.parquet")
    ).to_dict()
    for verdict in (from_files, from_frames):
        verdict.pop("reference"), verdict.pop("current")
    assert from_files == from_frames
    plan = next(f for f in from_files["features"] if f["name"] == "plan")
    assert set(plan["unseen_levels"]) == {"d", "e"} and plan["unseen_share"] > 0.4


def test_categories_without_rows_are_not_levels_of_the_data(tmp_path: Path) -> None:
    """A pandas categorical keeps categories no row has: they are neither unseen nor kept levels."""
    from mlci_lib.drift import detect_drift

    ref = pd.DataFrame({"plan": pd.Categorical(["a", "b"] * 50, categories=["a", "b", "z"])})
    cur = pd.DataFrame(
        {"plan": pd.Categorical(["a", "b"] * 45 + ["e"] * 10, categories=["a", "b", "d", "e"])}
    )
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    for verdict in (detect_drift(ref, cur), detect_drift(tmp_path / "ref.parquet", tmp_path / "cur.parquet")):
        (plan,) = verdict.to_dict()["features"]
        assert plan["unseen_levels"] == ["e"] and plan["unseen_share"] == pytest.approx(10 / 100)


@pytest.mark.parametrize(
    "categories",
    [list("abcdefgh"), [3, 1, 2, 10, 20, 30, 40, 50], [f"level {i}" for i in range(300)]],
    ids=["text", "integers", "300-levels"],
)
def test_categoricals_count_on_codes_as_text_levels_count(categories: list) -> None:
    """A categorical's counts from its codes equal the counts of the same values as plain
    objects: missing values apart, categories no row has left out, levels as text."""
    from mlci_lib.drift.gate import _level_counts

    rng = np.random.default_rng(7)
    values = rng.choice(np.array(categories[:-2], dtype=object), 5_000)
    values[rng.random(5_000) < 0.1] = None
    categorical = pd.Series(pd.Categorical(values, categories=categories))
    counts, missing = _level_counts(categorical)
    expected, expected_missing = _level_counts(pd.Series(values, dtype=object))
    assert missing == expected_missing == int(pd.isna(values).sum()) > 0
    assert dict(counts.items()) == dict(expected.items())
    assert all(isinstance(level, str) for level in counts.index)
    assert str(categories[-1]) not in counts.index
