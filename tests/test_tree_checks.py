"""Tree models load and predict; crafted node arrays are refused before any prediction."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlci_lib.errors import UnsafeModelError
from mlci_lib.models import load_model, save_model
from mlci_lib.tree_checks import TreeStructureError, check_tree_structures
from tests.helpers.components import free_port


def training_data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=300),
            "b": rng.normal(size=300),
            "c": rng.integers(0, 4, 300),
        }
    )
    labels = ((frame["a"] + 0.5 * frame["c"]) > 0.8).astype(int).to_numpy()
    return frame, labels


MODELS: dict[str, Callable[[], Any]] = {
    "decision tree": lambda: DecisionTreeClassifier(max_depth=4, random_state=0),
    "random forest regressor": lambda: RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0),
    "extra trees": lambda: ExtraTreesClassifier(n_estimators=5, random_state=0),
    "gradient boosting": lambda: GradientBoostingClassifier(n_estimators=5, random_state=0),
    "hist gradient boosting, categorical": lambda: HistGradientBoostingClassifier(
        max_iter=5, categorical_features=[2], random_state=0
    ),
    "pipeline of scaler and forest": lambda: make_pipeline(
        StandardScaler(), ExtraTreesClassifier(n_estimators=3, random_state=0)
    ),
}


# A histogram gradient boosting model with categorical features keeps a partial of check_array:
# two types beyond the defaults, which its users grant with --trust-type.
EXTRA_TRUST = ("functools.partial", "sklearn.utils.validation.check_array")


def fitted(name: str) -> Any:
    frame, labels = training_data()
    return MODELS[name]().fit(frame, labels)


@pytest.mark.parametrize("name", list(MODELS))
def test_tree_models_load_by_default_and_predict_the_same(name: str, tmp_path: Path) -> None:
    model = fitted(name)
    save_model(model, tmp_path / "model")
    loaded = load_model(tmp_path / "model", trusted_types=EXTRA_TRUST)
    frame, _ = training_data()
    np.testing.assert_array_equal(loaded.estimator.predict(frame), model.predict(frame))
    assert check_tree_structures(loaded.estimator) >= 1


def set_tree_nodes(tree: Any, field: str, node: int, value: int) -> None:
    # The node arrays are read-only views; a crafted file is what __setstate__ would receive.
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    nodes[field][node] = value
    state["nodes"] = nodes
    tree.__setstate__(state)


def first_split(tree: Any) -> int:
    return int(np.flatnonzero(tree.children_left != -1)[0])


def crafted_decision_tree(field: str, value: Callable[[Any, int], int]) -> Any:
    model = fitted("decision tree")
    node = first_split(model.tree_)
    set_tree_nodes(model.tree_, field, node, value(model.tree_, node))
    return model


CRAFTED: dict[str, tuple[Callable[[], Any], str]] = {
    "left child past the end": (
        lambda: crafted_decision_tree("left_child", lambda tree, node: tree.node_count + 1000),
        r"node 0 has left child \d+, outside nodes",
    ),
    "right child points back (a loop)": (
        lambda: crafted_decision_tree("right_child", lambda tree, node: node),
        r"node 0 has right child 0",
    ),
    "negative child of a split": (
        lambda: crafted_decision_tree("left_child", lambda tree, node: -7),
        r"left child -7",
    ),
    "feature past the input": (
        lambda: crafted_decision_tree("feature", lambda tree, node: 50),
        r"splits on feature 50, but the input has 3",
    ),
}


def crafted_forest_member() -> Any:
    model = fitted("extra trees")
    tree = model.estimators_[2].tree_
    set_tree_nodes(tree, "left_child", first_split(tree), 10**6)
    return model


def crafted_boosting_stage() -> Any:
    model = fitted("gradient boosting")
    tree = model.estimators_[3, 0].tree_
    set_tree_nodes(tree, "feature", first_split(tree), 3)
    return model


def crafted_hist_predictor(field: str, value: int) -> Any:
    model = fitted("hist gradient boosting, categorical")
    nodes = model._predictors[1][0].nodes
    split = int(np.flatnonzero(nodes["is_leaf"] == 0)[0])
    nodes[field][split] = value
    return model


def crafted_hist_categorical_bitset() -> Any:
    model = fitted("hist gradient boosting, categorical")
    for iteration in model._predictors:
        nodes = iteration[0].nodes
        categorical = np.flatnonzero((nodes["is_leaf"] == 0) & (nodes["is_categorical"] != 0))
        if categorical.size:
            nodes["bitset_idx"][categorical[0]] = 1000
            return model
    raise AssertionError("the example model has no categorical split to tamper with")


def crafted_hist_categories() -> Any:
    model = fitted("hist gradient boosting, categorical")
    # The model moves categorical features to the front of its binned input.
    feature = int(np.flatnonzero(model._bin_mapper.is_categorical_)[0])
    model._bin_mapper.bin_thresholds_[feature] = np.array([0.0, 1.0, 4096.0])
    return model


CRAFTED.update(
    {
        "one forest member": (crafted_forest_member, r"left child 1000000"),
        "one boosting stage": (crafted_boosting_stage, r"splits on feature 3, but the input has 3"),
        "hist predictor child": (
            lambda: crafted_hist_predictor("left", 5000),
            r"histogram gradient boosting tree .* left child 5000",
        ),
        "hist predictor feature": (
            lambda: crafted_hist_predictor("feature_idx", 9),
            r"splits on feature 9, but the input has 3",
        ),
        "hist categorical set": (crafted_hist_categorical_bitset, r"outside its \d+ category sets"),
        "hist category out of a set's range": (
            crafted_hist_categories,
            r"feature \d has a category outside 0..255",
        ),
    }
)


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_trees_are_refused_on_load(case: str, tmp_path: Path) -> None:
    make, message = CRAFTED[case]
    model = make()
    with pytest.raises(TreeStructureError, match=message):
        check_tree_structures(model)
    save_model(model, tmp_path / "model")
    with pytest.raises(UnsafeModelError, match=message) as refused:
        load_model(tmp_path / "model", trusted_types=EXTRA_TRUST)
    assert "\n" not in str(refused.value)


def test_refused_model_is_a_one_line_exit_2_from_the_cli(tmp_path: Path) -> None:
    save_model(CRAFTED["left child past the end"][0](), tmp_path / "model")
    done = subprocess.run(
        [sys.executable, "-m", "mlci_lib", "serve", str(tmp_path / "model"), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("mlci: error:")]
    assert len(errors) == 1 and "left child" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
