"""An inconclusive rule is actionable: the verdict gives the minimum detectable effect and the rows
that would decide, and both are right (checked by simulation: with that many rows, the same
effect is decided)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from mlci_lib.gate import run_gate
from mlci_lib.gate.checks import POWER, detectable_multiplier
from mlci_lib.gate.render import verdict_markdown, verdict_text

N = 300
MAX_DROP = 0.02


def _equally_good_retrain(n: int = N, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Candidate and champion with exactly the same accuracy (85%) but different errors."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    wrong = int(0.15 * n)
    cand_wrong = rng.choice(n, wrong, replace=False)
    # A third of the champion's errors are the candidate's; the rest fall on other rows.
    others = rng.choice(np.setdiff1d(np.arange(n), cand_wrong), wrong - wrong // 3, replace=False)
    base_wrong = np.concatenate((cand_wrong[: wrong // 3], others))
    cand, base = y.copy(), y.copy()
    cand[cand_wrong] ^= 1
    base[base_wrong] ^= 1
    ids = np.arange(n)
    return (
        pd.DataFrame({"id": ids, "label": y, "prediction": cand}),
        pd.DataFrame({"id": ids, "label": y, "prediction": base}),
    )


def _gate(cand: pd.DataFrame, base: pd.DataFrame, seed: int = 0, resamples: int = 1000):  # type: ignore[no-untyped-def]
    return run_gate(cand, base, rule=[f"accuracy max-drop={MAX_DROP}"], resamples=resamples, seed=seed)


def test_equally_good_retrain_on_a_small_set_is_inconclusive_with_mde_and_rows_needed() -> None:
    cand, base = _equally_good_retrain()
    v = _gate(cand, base)
    rule = v.rules[0]
    assert rule.outcome == "inconclusive" and rule.value == 0.0
    # The paired difference of accuracies has SE sqrt(var(d) / n), d_i = correct_cand - correct_base.
    d = (cand["prediction"] == cand["label"]).astype(float) - (base["prediction"] == base["label"]).astype(
        float
    )
    se = math.sqrt(d.var(ddof=0) / N)
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(POWER)
    assert detectable_multiplier(0.95) == pytest.approx(z)
    assert rule.mde == pytest.approx(z * se, rel=0.1)
    assert rule.rows_needed == pytest.approx(N * (rule.mde / MAX_DROP) ** 2, rel=1e-6, abs=1)
    assert rule.rows_needed > N
    assert f"about {rule.rows_needed:,} rows would decide" in rule.message
    data = v.to_dict()
    assert data["rules"][0]["mde"] == rule.mde and data["rules"][0]["rows_needed"] == rule.rows_needed
    json.dumps(data, allow_nan=False)
    assert f"{rule.rows_needed:,}" in verdict_markdown(v) and "detectable" in verdict_markdown(v)
    assert "detectable ±" in verdict_text(v) and "z_{1-α/2}" in verdict_text(v)


def test_with_the_rows_needed_the_same_effect_is_decided() -> None:
    cand, base = _equally_good_retrain()
    needed = _gate(cand, base).rules[0].rows_needed
    assert needed is not None

    # The same effect at more rows: the same rows repeated (the same empirical distribution).
    def tiled(copies: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        frames = [
            pd.concat([f] * copies, ignore_index=True).assign(id=lambda t: np.arange(len(t)))
            for f in (cand, base)
        ]
        return frames[0], frames[1]

    enough = math.ceil(needed / N)
    assert _gate(*tiled(enough)).rules[0].outcome == "pass"
    assert _gate(*tiled(max(1, enough // 4))).rules[0].outcome == "inconclusive"


@pytest.mark.slow
def test_rows_needed_gives_about_its_power_on_fresh_samples() -> None:
    # Fresh samples of the rows-needed size from the same population (the small set's rows):
    # the gate should decide in about 80% of them, and rarely at the original size.
    cand, base = _equally_good_retrain()
    needed = _gate(cand, base).rules[0].rows_needed
    assert needed is not None
    rng = np.random.default_rng(1)

    def decided(size: int, runs: int = 20) -> float:
        hits = 0
        for run in range(runs):
            pick = rng.integers(0, N, size)
            c = cand.iloc[pick].assign(id=np.arange(size))
            b = base.iloc[pick].assign(id=np.arange(size))
            hits += _gate(c, b, seed=run, resamples=400).rules[0].outcome == "pass"
        return hits / runs

    assert decided(needed) >= 0.6
    assert decided(N) <= 0.3


def test_point_estimates_have_no_mde() -> None:
    cand, base = _equally_good_retrain()
    rule = _gate(cand, base, resamples=0).rules[0]
    assert rule.mde is None and rule.rows_needed is None


def test_init_gate_explains_on_inconclusive(tmp_path: Path) -> None:
    import io

    from mlci_lib.cli import main
    from mlci_lib.gate.rules import load_gate_rules
    from mlci_lib.runner import CiRunner

    runner = CiRunner({}, stdout=io.StringIO(), stderr=io.StringIO())
    assert main(["init", "--dir", str(tmp_path), "--model-name", "m"], runner=runner) == 0
    gate = (tmp_path / "gate.yaml").read_text()
    assert "on-inconclusive: what a rule does when its interval straddles" in gate
    assert "how many rows would decide" in gate
    assert load_gate_rules(tmp_path / "gate.yaml").on_inconclusive == "fail"
