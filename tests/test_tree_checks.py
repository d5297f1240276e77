"""Tree models load and predict; crafted node arrays are refused before any prediction."""

from __future__ import annotations

import functools
import subprocess
import sys
import warnings
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
from sklearn.preprocessing import PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlci_lib.errors import UnsafeModelError
from mlci_lib.models import load_model, save_model
from mlci_lib.tree_checks import TreeStructureError, check_tree_structures
from tests.helpers.components import free_port
from tests.sklearn_catalogue import fit as fit_case


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


def fitted(name: str) -> Any:
    frame, labels = training_data()
    return MODELS[name]().fit(frame, labels)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.slow
def test_tree_models_load_by_default_and_predict_the_same(name: str, tmp_path: Path) -> None:
    model = fitted(name)
    save_model(model, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
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


def fitted_case(name: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_case(name)[0]


def crafted_forest_after_encoding() -> Any:
    # The forest receives the encoded width (8 columns from 4): a split on column 8 reads past it.
    model = fitted_case("random forest")
    tree = model[-1].estimators_[4].tree_
    set_tree_nodes(tree, "feature", first_split(tree), model[-1].n_features_in_)
    return model


def crafted_hist_loop_in_pipeline() -> Any:
    model = fitted_case("hist gradient boosting")
    nodes = model[-1]._predictors[2][0].nodes
    split = int(np.flatnonzero(nodes["is_leaf"] == 0)[-1])
    nodes["right"][split] = 0
    return model


def crafted_after_polynomial_features() -> Any:
    # PolynomialFeatures widens the rows to 45 columns; a tree split on column 45 is out of them.
    model = fitted_case("polynomial features then a forest")
    tree = model[-1].estimators_[0].tree_
    set_tree_nodes(tree, "feature", first_split(tree), model[-1].n_features_in_)
    return model


def crafted_stacking_final_estimator() -> Any:
    # The final forest sees the stacked predictions plus the encoded rows: 14 columns.
    model = fitted_case("stacking classifier")
    tree = model[-1].final_estimator_.estimators_[1].tree_
    set_tree_nodes(tree, "feature", first_split(tree), 20)
    return model


def crafted_width_removed() -> Any:
    # Without n_features_in_ scikit-learn skips the width check, so nothing bounds the trees.
    model = fitted_case("random forest")
    del model[-1].n_features_in_
    return model


def crafted_isolation_subset() -> Any:
    # Each isolation tree reads only its own column subset (2 of 3), unvalidated.
    model = fitted_case("isolation forest")
    model.estimators_features_[3] = model.estimators_features_[3][:1]
    return model


def crafted_hist_preprocessor() -> Any:
    # The categorical preprocessor outputs one column fewer than the trees read.
    model = fitted_case("hist gradient boosting, native categoricals")
    name, transformer, columns = model._preprocessor.transformers_[1]
    narrowed = columns.copy()
    narrowed[np.flatnonzero(narrowed)[-1]] = False
    model._preprocessor.transformers_[1] = (name, transformer, narrowed)
    return model


def crafted_hist_preprocessor_replaced() -> Any:
    # A transformer whose output width mlci cannot tell (PolynomialFeatures widens, others narrow).
    model = fitted_case("hist gradient boosting, native categoricals")
    name, _, columns = model._preprocessor.transformers_[1]
    model._preprocessor.transformers_[1] = (name, PolynomialFeatures().fit(np.zeros((2, 3))), columns)
    return model


def crafted_hist_check_array_argument() -> Any:
    # partial(check_array, rows) returns the rows from the file, of any width, instead of the input.
    model = fitted_case("hist gradient boosting, native categoricals")
    transformer = model._preprocessor.transformers_[1][1]
    transformer.func = functools.partial(transformer.func.func, np.zeros((1, 1)), **transformer.func.keywords)
    return model


def crafted_negative_width() -> Any:
    model = fitted_case("random forest")
    model[-1].n_features_in_ = -1
    return model


def crafted_boosting_stage_width() -> Any:
    # Three trees per stage add into columns 0..2 of a binary model's single column of predictions.
    model = fitted("gradient boosting")
    model.estimators_ = np.repeat(model.estimators_, 3, axis=1)
    return model


def crafted_support_vectors(field: str) -> Any:
    model = fitted_case("svc with probabilities")
    svc = model[-1]
    if field == "support_":
        svc.support_ = np.concatenate([svc.support_, svc.support_[:5]])
    elif field == "_n_support":
        svc._n_support = svc._n_support + np.array([0, 0, 50], dtype=svc._n_support.dtype)
    else:
        svc._intercept_ = svc._intercept_[:1]
    return model


def crafted_sparse_support_vectors() -> Any:
    model = fitted_case("svc on sparse rows")
    vectors = model[-1].support_vectors_
    vectors.indices[3] = 10**6
    return model


def crafted_search_tree() -> Any:
    model = fitted_case("k neighbours classifier")
    search = model[-1]._tree
    state = list(search.__getstate__())
    state[1] = state[1].copy()
    state[1][0] = 10**6
    search.__setstate__(tuple(state))
    return model


def crafted_spline() -> Any:
    model = fitted_case("spline transformer")
    spline = model[0].named_transformers_["numbers"][-1].bsplines_[1]
    spline.k = 40
    return model


CRAFTED.update(
    {
        "forest after a ColumnTransformer": (
            crafted_forest_after_encoding,
            r"splits on feature 8, but the input has 8",
        ),
        "hist child loop inside a pipeline": (crafted_hist_loop_in_pipeline, r"right child 0, outside nodes"),
        "forest after PolynomialFeatures": (
            crafted_after_polynomial_features,
            r"splits on feature 45, but the input has 45",
        ),
        "stacking's final forest": (
            crafted_stacking_final_estimator,
            r"splits on feature 20, but the input has 14",
        ),
        "forest that states no width": (
            crafted_width_removed,
            r"not inside an estimator that states its input width",
        ),
        "isolation tree past its column subset": (crafted_isolation_subset, r"but the input has 1"),
        "hist categorical preprocessor narrowed": (
            crafted_hist_preprocessor,
            r"histogram gradient boosting tree .* splits on feature 3, but the input has 3",
        ),
        "hist categorical preprocessor replaced": (
            crafted_hist_preprocessor_replaced,
            r"categorical preprocessor is not the one scikit-learn builds",
        ),
        "hist preprocessor returning rows of its own": (
            crafted_hist_check_array_argument,
            r"categorical preprocessor is not the one scikit-learn builds",
        ),
        "forest with a negative width": (
            crafted_negative_width,
            r"not inside an estimator that states its input width",
        ),
        "boosting stage wider than its predictions": (
            crafted_boosting_stage_width,
            r"each stage has 3 trees, but its initial predictions have 1 columns",
        ),
        "svc with more indices than vectors": (
            lambda: crafted_support_vectors("support_"),
            r"SVC: it has \d+ support vectors but \d+ indices",
        ),
        "svc class counts past its vectors": (
            lambda: crafted_support_vectors("_n_support"),
            r"SVC: its per-class counts do not add up",
        ),
        "svc short of intercepts": (
            lambda: crafted_support_vectors("_intercept_"),
            r"SVC: it has fewer than 3 intercepts",
        ),
        "sparse support vectors": (
            crafted_sparse_support_vectors,
            r"a sparse matrix of the model is malformed: indices must be < \d+",
        ),
        "neighbour search tree": (crafted_search_tree, r"KDTree .*sample index lies outside"),
        "spline degree past its knots": (crafted_spline, r"B-spline of a SplineTransformer is inconsistent"),
    }
)


@pytest.mark.parametrize("case", list(CRAFTED))
@pytest.mark.slow
def test_crafted_trees_are_refused_on_load(case: str, tmp_path: Path) -> None:
    make, message = CRAFTED[case]
    model = make()
    with pytest.raises(TreeStructureError, match=message):
        check_tree_structures(model)
    save_model(model, tmp_path / "model")
    with pytest.raises(UnsafeModelError, match=message) as refused:
        load_model(tmp_path / "model")
    assert "\n" not in str(refused.value)
    assert "damaged or crafted" in (refused.value.hint or "")


@pytest.mark.slow
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


class WideningWrapper:
    """A container mlci does not know: it widens the rows before its forest sees them."""

    def fit(self, frame: pd.DataFrame, labels: np.ndarray) -> WideningWrapper:
        self.n_features_in_ = frame.shape[1]
        self.expand = PolynomialFeatures(2).fit(frame)
        self.forest = ExtraTreesClassifier(n_estimators=5, random_state=0).fit(
            self.expand.transform(frame), labels
        )
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.forest.predict(self.expand.transform(frame)))


def test_trees_inside_an_unknown_container_stay_bounded_and_the_hint_says_why(tmp_path: Path) -> None:
    # mlci cannot know what the wrapper feeds its forest: the trees are unbounded and refused.
    frame, labels = training_data()
    model = WideningWrapper().fit(frame, labels)
    with pytest.raises(
        TreeStructureError, match=r"not inside an estimator that states its input width"
    ) as refused:
        check_tree_structures(model)
    assert refused.value.foreign == ("tests.test_tree_checks.WideningWrapper",)
    save_model(model, tmp_path / "model")
    with pytest.raises(UnsafeModelError) as on_load:
        load_model(tmp_path / "model", trusted_types=["tests.test_tree_checks.WideningWrapper"])
    assert "inside tests.test_tree_checks.WideningWrapper, whose data flow mlci does not know" in str(
        on_load.value
    )
