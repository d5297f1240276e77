"""The canary analysis' interval machinery, against published figures and PromQL's own rules."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mlci_lib.deploy.canary_stats import histogram_quantile, proportion_difference, resample_buckets, wilson
from mlci_lib.deploy.prometheus import Series


def test_newcombe_interval_matches_his_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10: 56/70 - 48/80.
    difference, (low, high) = proportion_difference(56, 70, 48, 80, 0.95)
    assert difference == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_wilson_interval_is_wide_at_zero_events() -> None:
    low, high = wilson(0, 20, 0.95)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)
    # So 0 errors in 20 canary requests cannot show an increase below 1 point: inconclusive.
    _, (_, upper) = proportion_difference(0, 20, 0, 5000, 0.95)
    assert upper > 0.1


BOUNDS = [0.001, 0.0025, 0.005, 0.01, math.inf]


@pytest.mark.parametrize(
    ("q", "counts", "expected"),
    [
        # rank 5 of 10 falls in the second bucket (2 below it, 4 inside): 0.001 + 0.0015 * 3/4.
        (0.5, [2, 4, 3, 1, 0], 0.001 + 0.0015 * 0.75),
        # the first bucket interpolates from 0.
        (0.1, [10, 0, 0, 0, 0], 0.0001),
        # a rank in the +Inf bucket gives the highest finite bound, as Prometheus does.
        (0.99, [1, 0, 0, 0, 9], 0.01),
        (0.5, [0, 0, 0, 0, 0], math.nan),
    ],
)
def test_histogram_quantile_interpolates_as_promql(q: float, counts: list[int], expected: float) -> None:
    got = float(histogram_quantile(q, BOUNDS, np.asarray([counts]))[0])
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_bucket_resamples_keep_the_total_and_centre_on_the_counts() -> None:
    draws = resample_buckets([100, 300, 500, 100, 0], 2000, np.random.default_rng(0))
    assert draws.shape == (2000, 5) and set(draws.sum(axis=1)) == {1000.0}
    assert draws.mean(axis=0) == pytest.approx([100, 300, 500, 100, 0], rel=0.02, abs=0.5)


def test_counter_increase_is_exact_and_survives_a_reset() -> None:
    assert Series({}, (5.0, 7.0, 7.0, 12.0)).counter_increase() == 7.0
    # The process restarted after 12: the 3 counted since are new requests.
    assert Series({}, (5.0, 12.0, 3.0)).counter_increase() == 10.0
    assert Series({}, (4.0,)).counter_increase() == 0.0


# -- rules on counts ---------------------------------------------------------------------------


def _traffic(
    requests: int, errors: int = 0, buckets: tuple = (), classes: dict | None = None, **more: object
) -> Any:
    from mlci_lib.deploy.analyze import Traffic

    fields: dict[str, Any] = {"selector": 'job="x"', "requests": requests, "server_errors": errors,
                              "client_errors": 0, "buckets": buckets, "classes": classes or {},
                              "value_sum": None, "value_count": 0}  # fmt: skip
    fields.update(more)
    return Traffic(**fields)


def _outcomes(results: list) -> dict[str, str]:
    return {r.rule: r.outcome for r in results}


BUCKETS = ((0.001, 100), (0.0025, 500), (0.005, 300), (math.inf, 100))


def test_no_canary_traffic_is_undefined_and_never_a_pass() -> None:
    from mlci_lib.deploy.analyze import CanaryRules, compare_traffic

    results = compare_traffic(CanaryRules(), _traffic(1000, buckets=BUCKETS), _traffic(0))
    outcomes = _outcomes(results)
    assert outcomes["errors max-increase"] == "undefined"
    assert outcomes["latency p95_ms max-relative-increase"] == "undefined"
    assert "no prediction request reached the canary" in results[0].message


def test_latency_max_needs_no_stable_histogram_and_mean_is_a_point_estimate() -> None:
    from mlci_lib.deploy.analyze import CanaryRules, compare_traffic
    from mlci_lib.gate.rules import LatencyRule

    rules = CanaryRules(latency=(LatencyRule("p95_ms", {"max": 100.0}), LatencyRule("max_ms", {"max": 1.0})))
    stable = _traffic(1000, value_sum=2000.0, value_count=1000)
    canary = _traffic(1000, buckets=BUCKETS, value_sum=2300.0, value_count=1000)
    by_rule = {r.rule: r for r in compare_traffic(rules, stable, canary)}
    assert (
        by_rule["latency p95_ms max"].outcome == "pass" and by_rule["latency p95_ms max"].interval is not None
    )
    assert by_rule["latency max_ms max"].outcome == "skipped"  # not a quantile a histogram gives
    mean = by_rule["predictions mean max-mean-relative-change"]
    assert mean.outcome == "fail" and mean.value == pytest.approx(0.15) and mean.method == "point"


def test_a_clear_error_increase_fails_and_a_small_sample_is_inconclusive_with_guidance() -> None:
    from mlci_lib.deploy.analyze import CanaryRules, compare_traffic

    rules = CanaryRules(client_errors=None, latency=(), share_change=None)
    clear = compare_traffic(rules, _traffic(5000, errors=10), _traffic(2000, errors=100))[0]
    assert clear.outcome == "fail" and clear.interval[0] > 0.01
    small = compare_traffic(rules, _traffic(5000, errors=10), _traffic(30, errors=0))[0]
    assert small.outcome == "inconclusive" and small.rows_needed and small.rows_needed > 30


def test_a_series_born_inside_the_window_counts_from_zero() -> None:
    series = Series({}, (3.0, 5.0, 9.0), (100.0, 101.0, 102.0))
    assert series.step() == 1.0
    assert series.counter_increase() == 6.0
    # A new pod's counter, or a status code answered for the first time, started at zero.
    assert series.counter_increase(born_inside=True) == 9.0


def test_rules_come_from_the_defaults_then_a_gate_file_then_a_rules_file_then_the_option(
    tmp_path: Any,
) -> None:
    from mlci_lib.deploy.analyze import CanaryRules, load_canary_rules
    from mlci_lib.errors import ConfigError

    gate = tmp_path / "gate.yml"
    gate.write_text(
        "metrics: {accuracy: {min: 0.8}}\nlatency: {p99_ms: {max-increase: 5}}\n"
        "bootstrap: {resamples: 500, seed: 7}\non-inconclusive: warn\n"
    )
    rules = tmp_path / "canary.yml"
    rules.write_text(
        "errors: {max-increase: 0.002}\nclient-errors: false\npredictions: {max-share-change: 0.1}\n"
    )
    assert load_canary_rules() == CanaryRules()
    from_gate = load_canary_rules(gate=str(gate))
    assert [(r.stat, dict(r.checks)) for r in from_gate.latency] == [("p99_ms", {"max-increase": 5.0})]
    assert (from_gate.resamples, from_gate.seed, from_gate.on_inconclusive) == (500, 7, "warn")
    both = load_canary_rules(gate=str(gate), rules=str(rules), on_inconclusive="pass")
    assert (both.server_errors, both.client_errors, both.share_change) == (0.002, None, 0.1)
    assert both.mean_relative_change == CanaryRules().mean_relative_change and both.on_inconclusive == "pass"
    rules.write_text("predictions: {max-share-change: -1}\n")
    with pytest.raises(ConfigError, match=r"predictions\.max-share-change must be a non-negative number"):
        load_canary_rules(rules=str(rules))


def test_the_canary_summary_names_the_decision_and_each_rule() -> None:
    from mlci_lib.deploy.analyze import CanaryRules, CanaryVerdict, compare_traffic

    stable, canary = _traffic(5000, errors=10), _traffic(2000, errors=100)
    rules = compare_traffic(CanaryRules(latency=(), share_change=None), stable, canary)
    verdict = CanaryVerdict(
        passed=False, status="fail", decision="rollback", on_inconclusive="fail", confidence=0.95,
        resamples=1000, seed=0, prometheus="http://prometheus:9090", window="10m", evaluated_at=0.0,
        stable=stable, canary=canary, rules=tuple(rules), counts={},
    )  # fmt: skip
    from mlci_lib.deploy.summary import canary_markdown

    markdown = canary_markdown(verdict)
    assert markdown.startswith("### mlci deploy analyze: ❌ roll back")
    assert "❌ errors max-increase" in markdown and "✅ client-errors max-increase" in markdown
    assert verdict.to_dict()["schema"] == "mlci.canary-verdict"


def test_a_sum_of_predicted_values_may_fall_without_a_reset() -> None:
    # Negative predictions lower the sum: last minus first, not a counter's increase.
    series = Series({}, (10.0, 4.0, -2.0), (0.0, 1.0, 2.0))
    assert series.change() == -12.0 and series.change(born_inside=True) == -2.0


def test_a_slower_canary_fails_the_relative_latency_rule_and_an_equal_one_passes() -> None:
    """The default p95 rule (at most 25% above the stable's) on bucket counts as Prometheus has them."""
    from mlci_lib.deploy.analyze import CanaryRules, compare_traffic

    bounds = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, math.inf)
    stable_counts = (2000, 4000, 2500, 1000, 400, 90, 10)
    # Every request one bucket slower: the p95 moves from the 0.05-0.1 s bucket into 0.1-0.25 s.
    slower_counts = (0, 2000, 4000, 2500, 1000, 400, 100)

    def traffic(counts: tuple[int, ...]) -> Any:  # requests per bucket, as Traffic holds them
        return _traffic(sum(counts), buckets=tuple(zip(bounds, counts, strict=True)))

    rule = "latency p95_ms max-relative-increase"
    equal = _outcomes(compare_traffic(CanaryRules(), traffic(stable_counts), traffic(stable_counts)))
    slower = {
        r.rule: r for r in compare_traffic(CanaryRules(), traffic(stable_counts), traffic(slower_counts))
    }
    assert equal[rule] == "pass"
    assert slower[rule].outcome == "fail" and slower[rule].interval[0] > 0.25, slower[rule]
