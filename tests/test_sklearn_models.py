"""The scikit-learn models teams train load with no extra trust and predict as before saving."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from mlci_lib.models import load_model, save_model
from tests.sklearn_catalogue import CASES, fit, outputs

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", list(CASES))
def test_model_loads_without_trusted_types_and_predicts_the_same(name: str, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        # Small data makes some solvers stop early; that is not what this test is about.
        warnings.simplefilter("ignore")
        model, data = fit(name)
    save_model(model, tmp_path / "model", sample_input=data.head(5))
    loaded = load_model(tmp_path / "model")
    expected = outputs(model, data)
    got = outputs(loaded.estimator, data)
    assert len(got) == len(expected)
    for before, after in zip(expected, got, strict=True):
        np.testing.assert_array_equal(after, before)
