"""Bounds checks on the node arrays of scikit-learn's tree models, before any prediction.

skops loads a model without running code from the file, but it can only check an object's type,
not its content. scikit-learn's tree storage (``sklearn.tree._tree.Tree`` for decision trees,
random forests, extra trees and gradient boosting, ``TreePredictor`` for histogram gradient
boosting) keeps raw child and feature indices that prediction follows without bounds checks, so a
crafted file with an index out of range crashes the process or reads memory outside the arrays the
first time it predicts, and one whose child points back up the tree never stops. Refusing tree
models would leave out the most used tabular models; instead every tree in a loaded model is
checked here: each split's children lie after it and inside the tree (so a walk always ends at a
leaf), and each split's feature is one the model's input has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: How deep the object graph of an estimator is walked (pipelines of ensembles of trees stay far
#: below); deeper nesting is refused rather than left unchecked.
MAX_DEPTH = 64


class TreeStructureError(ValueError):
    """A tree's node arrays would make prediction read outside them or loop."""


def check_tree_structures(estimator: Any) -> int:
    """Check every tree inside ``estimator``; return how many were checked.

    Raises :class:`TreeStructureError` naming the first bad node.
    """
    checked: set[int] = set()
    predictors: list[tuple[Any, int | None]] = []
    for obj, n_features in _walk(estimator):
        kind = _tree_kind(obj)
        if kind == "tree":
            _check_sklearn_tree(obj, n_features)
            checked.add(id(obj))
        elif kind == "predictor":
            predictors.append((obj, n_features))
        elif hasattr(obj, "_predictors") and hasattr(obj, "_bin_mapper"):
            # Histogram gradient boosting: its categorical splits also index the bin mapper's
            # category sets, so its trees are checked together with it.
            checked.update(_check_hist_estimator(obj, n_features))
    for predictor, n_features in predictors:
        if id(predictor) not in checked:
            _check_hist_predictor(predictor, n_features, categorical_features=None)
            checked.add(id(predictor))
    return len(checked)


def _tree_kind(obj: Any) -> str | None:
    cls = type(obj)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if name == "sklearn.tree._tree.Tree":
        return "tree"
    if name == "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor":
        return "predictor"
    return None


def _walk(root: Any) -> Iterator[tuple[Any, int | None]]:
    """Every object reachable from ``root``, with the fewest input features any owner accepts.

    An ensemble validates the input width against its own ``n_features_in_`` and then hands the
    rows to its trees, so a tree may only use features below the smallest width on its way down.
    """
    import numpy as np

    seen: set[int] = set()
    stack: list[tuple[Any, int | None, int]] = [(root, None, 0)]
    while stack:
        obj, bound, depth = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
            continue
        seen.add(id(obj))
        if depth > MAX_DEPTH:
            raise TreeStructureError(f"the model nests objects deeper than {MAX_DEPTH} levels")
        width = getattr(obj, "n_features_in_", None) if not isinstance(obj, np.ndarray) else None
        if isinstance(width, (int, np.integer)) and not isinstance(width, bool):
            bound = int(width) if bound is None else min(bound, int(width))
        yield obj, bound
        children: Any
        if isinstance(obj, dict):
            children = obj.values()
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children = obj
        elif isinstance(obj, np.ndarray):
            children = obj.ravel() if obj.dtype == object else ()
        elif hasattr(obj, "__dict__"):
            children = vars(obj).values()
        else:
            children = ()
        stack.extend((child, bound, depth + 1) for child in children)


def _check_children(left: Any, right: Any, internal: Any, node_count: int, what: str) -> None:
    import numpy as np

    index = np.arange(node_count)
    for side, child in (("left", left), ("right", right)):
        bad = internal & ((child <= index) | (child >= node_count))
        if bad.any():
            node = int(np.flatnonzero(bad)[0])
            raise TreeStructureError(
                f"{what}: node {node} has {side} child {int(child[node])}, outside nodes "
                f"{node + 1}..{node_count - 1}"
            )


def _check_features(feature: Any, internal: Any, n_features: int, what: str) -> None:
    import numpy as np

    bad = internal & ((feature < 0) | (feature >= n_features))
    if bad.any():
        node = int(np.flatnonzero(bad)[0])
        raise TreeStructureError(
            f"{what}: node {node} splits on feature {int(feature[node])}, but the input has {n_features}"
        )


def _check_sklearn_tree(tree: Any, bound: int | None) -> None:
    left, right = tree.children_left, tree.children_right
    node_count = int(tree.node_count)
    what = f"decision tree of {node_count} nodes"
    if len(left) != node_count or len(right) != node_count or len(tree.feature) != node_count:
        raise TreeStructureError(f"{what}: its node arrays do not have {node_count} entries")
    # scikit-learn marks a leaf with both children -1; any other node is a split it follows.
    internal = (left != -1) | (right != -1)
    _check_children(left, right, internal, node_count, what)
    n_features = int(tree.n_features) if bound is None else min(int(tree.n_features), bound)
    _check_features(tree.feature, internal, n_features, what)


def _check_hist_estimator(estimator: Any, bound: int | None) -> list[int]:
    import numpy as np

    what = f"{type(estimator).__name__}"
    if bound is None:
        raise TreeStructureError(f"{what}: it does not state its input width (n_features_in_)")
    mapper = estimator._bin_mapper
    flags = getattr(mapper, "is_categorical_", None)
    categorical = np.zeros(bound, dtype=bool) if flags is None else np.asarray(flags).astype(bool)
    if categorical.shape != (bound,):
        raise TreeStructureError(f"{what}: its bin mapper describes {categorical.size} features, not {bound}")
    thresholds = getattr(mapper, "bin_thresholds_", None)
    for feature in np.flatnonzero(categorical):
        # Known categories are bit positions in a 256-bit set per feature.
        known = np.asarray(thresholds[feature]) if thresholds is not None else np.zeros(0)
        if known.size and ((known < 0) | (known >= 256)).any():
            raise TreeStructureError(f"{what}: feature {int(feature)} has a category outside 0..255")
    checked = []
    for iteration in estimator._predictors:
        for predictor in iteration:
            _check_hist_predictor(predictor, bound, categorical_features=categorical)
            checked.append(id(predictor))
    return checked


def _check_hist_predictor(predictor: Any, bound: int | None, *, categorical_features: Any) -> None:
    nodes = predictor.nodes
    node_count = len(nodes)
    what = f"histogram gradient boosting tree of {node_count} nodes"
    if node_count == 0:
        raise TreeStructureError(f"{what}: it has no nodes")
    if bound is None:
        raise TreeStructureError(f"{what}: it is not inside an estimator that states its input width")
    internal = nodes["is_leaf"] == 0
    _check_children(nodes["left"], nodes["right"], internal, node_count, what)
    _check_features(nodes["feature_idx"], internal, bound, what)
    categorical = internal & (nodes["is_categorical"] != 0)
    if not categorical.any():
        return
    bitsets = len(predictor.raw_left_cat_bitsets)
    bad = categorical & (nodes["bitset_idx"] >= bitsets)
    if bad.any() or len(predictor.binned_left_cat_bitsets) != bitsets:
        raise TreeStructureError(f"{what}: a categorical split points outside its {bitsets} category sets")
    split_features = nodes["feature_idx"][categorical]
    if categorical_features is None or not categorical_features[split_features].all():
        raise TreeStructureError(f"{what}: a categorical split is on a feature not known as categorical")
