"""The column options: one helper adds them to every command, one function turns them into Columns.

Each command that reads a predictions file gets the same options with the same destinations,
so an action's ``MLCI_INPUT_<NAME>`` reaches each of them; the gate receives the one parameter
object and computes on the columns it names.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest

from mlci_lib.cli import build_parser
from mlci_lib.cli.columns import columns_from, defaults
from mlci_lib.cli.framework import argv_from_action_inputs, find_command_parser
from mlci_lib.errors import UsageError
from mlci_lib.gate.predictions import Columns
from mlci_lib.gate.verdict import run_gate


def parse(command: list[str], argv: list[str]) -> argparse.Namespace:
    parser, _ = find_command_parser(build_parser(), command)
    return parser.parse_args(argv)


GATE = ["gate"]
BASELINE = ["model", "baseline"]
REPORT = ["report"]


@pytest.mark.parametrize(
    ("command", "argv", "expected"),
    [
        pytest.param(GATE, ["--candidate", "c.csv"], Columns(), id="gate-defaults"),
        pytest.param(
            GATE,
            ["--candidate", "c.csv", "--id-column", "row", "--label-column", "y", "--prediction-column", "p",
             "--score-column", "s", "--proba-prefix", "pr_"],
            Columns(id="row", label="y", prediction="p", score="s", proba_prefix="pr_", id_explicit=True),
            id="gate-all",
        ),
        pytest.param(GATE, ["--candidate", "c.csv", "--id-column", ""], Columns(), id="gate-empty-id"),
        pytest.param(BASELINE, ["m@champion", "--data", "d.csv", "--label-column", "y"], Columns(label="y"),
                     id="baseline-label"),
        pytest.param(REPORT, ["v.json", "--score-column", "p1"], Columns(score="p1"), id="report-score"),
    ],
)  # fmt: skip
def test_columns_from_the_options(command: list[str], argv: list[str], expected: Columns) -> None:
    assert columns_from(parse(command, argv)) == expected


def test_the_parser_defaults_are_the_columns_defaults() -> None:
    fields = Columns()
    shown = {"id": None, "label": fields.label, "prediction": fields.prediction, "score": fields.score}
    assert defaults() == {**shown, "proba-prefix": fields.proba_prefix}


def test_every_column_option_is_one_action_input() -> None:
    parser, _ = find_command_parser(build_parser(), GATE)
    env = {
        "MLCI_INPUT_ID_COLUMN": "row",
        "MLCI_INPUT_LABEL_COLUMN": "y",
        "MLCI_INPUT_PREDICTION_COLUMN": "p",
        "MLCI_INPUT_SCORE_COLUMN": "s",
        "MLCI_INPUT_PROBA_PREFIX": "pr_",
        "MLCI_INPUT_CANDIDATE": "c.csv",
    }
    columns = columns_from(parser.parse_args(argv_from_action_inputs(parser, env)))
    expected = Columns(id="row", label="y", prediction="p", score="s", proba_prefix="pr_", id_explicit=True)
    assert columns == expected


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200)
    score = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(0, 0.2, 200), 0, 1)
    return pd.DataFrame({"row": range(200), "y": y, "p": (score > 0.5).astype(int), "s": score})


def test_run_gate_reads_the_columns_the_object_names() -> None:
    columns = Columns(id="row", label="y", prediction="p", score="s", id_explicit=True)
    verdict = run_gate(_frame(), rule=["accuracy min=0.5", "roc_auc min=0.5"], columns=columns, resamples=0)
    single = run_gate(
        _frame(), rule=["accuracy min=0.5", "roc_auc min=0.5"], id_column="row", label_column="y",
        prediction_column="p", score_column="s", resamples=0,
    )  # fmt: skip
    assert verdict.passed and [r.candidate for r in verdict.rules] == [r.candidate for r in single.rules]


def test_run_gate_refuses_columns_twice() -> None:
    with pytest.raises(UsageError, match="not both"):
        run_gate(_frame(), rule=["accuracy min=0.5"], columns=Columns(label="y"), label_column="y")
