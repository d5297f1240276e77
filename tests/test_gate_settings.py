"""The gate's settings merge once, in one order: option, then gate file, then default."""

from __future__ import annotations

import pytest

from mlci_lib.errors import ConfigError, UsageError
from mlci_lib.gate.rules import parse_rules
from mlci_lib.gate.settings import DEFAULT_SLICE_MIN_SIZE, GateSettings

FILE = {
    "metrics": {"accuracy": {"min": 0.5}},
    "slices": {"columns": ["region"], "min-size": 50, "metrics": {"recall": {"min": 0.4}}},
    "bootstrap": {"resamples": 500, "confidence": 0.9, "seed": 7},
    "on-inconclusive": "warn",
}


def test_the_gate_file_beats_the_defaults() -> None:
    s = GateSettings.resolve(parse_rules(FILE, source="gate.yaml"))
    assert (s.bootstrap.resamples, s.bootstrap.confidence, s.bootstrap.seed) == (500, 0.9, 7)
    assert (s.on_inconclusive, s.slice_columns, s.slice_min_size) == ("warn", ("region",), 50)


def test_options_beat_the_gate_file() -> None:
    s = GateSettings.resolve(
        parse_rules(FILE, source="gate.yaml"),
        resamples=200,
        confidence=0.99,
        seed=0,
        on_inconclusive="PASS",
        slice_column=["plan"],
        slice_min_size=10,
    )
    # seed=0 is an option given, not "unset": it beats the file's 7.
    assert (s.bootstrap.resamples, s.bootstrap.confidence, s.bootstrap.seed) == (200, 0.99, 0)
    assert (s.on_inconclusive, s.slice_columns, s.slice_min_size) == ("pass", ("region", "plan"), 10)


def test_defaults_when_neither_says() -> None:
    s = GateSettings.resolve(parse_rules({"metrics": {"accuracy": {"min": 0.5}}}, source="g"))
    assert (s.bootstrap.resamples, s.bootstrap.confidence, s.bootstrap.seed) == (1000, 0.95, 0)
    assert (s.on_inconclusive, s.slice_columns, s.slice_min_size) == ("fail", (), DEFAULT_SLICE_MIN_SIZE)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"on_inconclusive": "maybe"},
            ConfigError,
            "option --on-inconclusive must be one of fail, warn, pass",
        ),
        ({"confidence": 1.5}, ConfigError, "option --confidence"),
        ({"resamples": 5}, ConfigError, "option --resamples"),
        ({"slice_min_size": 0}, ConfigError, "option --slice-min-size"),
    ],
)
def test_a_bad_option_is_named(options: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        GateSettings.resolve(parse_rules({"metrics": {"accuracy": {"min": 0.5}}}, source="g"), **options)  # type: ignore[arg-type]


def test_slice_rules_without_slice_columns_are_refused() -> None:
    rules = parse_rules({"slices": {"metrics": {"recall": {"min": 0.4}}}}, source="g")
    with pytest.raises(UsageError, match="slice rules need slice columns"):
        GateSettings.resolve(rules)
