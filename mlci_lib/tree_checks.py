"""Bounds checks on the arrays scikit-learn's compiled code follows unchecked, before any prediction.

skops loads a model without running code from the file, but it can only check an object's type,
not its content. scikit-learn's tree storage (``sklearn.tree._tree.Tree`` for decision trees,
random forests, extra trees and gradient boosting, ``TreePredictor`` for histogram gradient
boosting) keeps raw child and feature indices that prediction follows without bounds checks, so a
crafted file with an index out of range crashes the process or reads memory outside the arrays the
first time it predicts, and one whose child points back up the tree never stops. Refusing tree
models would leave out the most used tabular models; instead every tree in a loaded model is
checked here: each split's children lie after it and inside the tree (so a walk always ends at a
leaf), and each split's feature is one the tree's input has. The same holds for the neighbour
search trees (``KDTree``, ``BallTree``) and the B-splines of ``SplineTransformer``.

Which width a tree's input has follows the data flow, not the object graph: an estimator validates
its input width against its own ``n_features_in_`` when it is called through its public methods,
but ensembles call their trees with ``check_input=False`` or read ``tree_`` directly, so there the
owner's validated width is what bounds the trees. Containers that transform the rows before handing
them on (a Pipeline's steps, a ColumnTransformer's transformers, a stacking ensemble's final
estimator...) call their children through those public methods; their children are bounded by
their own validated width instead. Beneath a type mlci does not know, nothing is bounded: its
trees are refused, which can refuse a sound model but never accepts a tree that reads past its
input.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

#: How deep the object graph of an estimator is walked (pipelines of ensembles of trees stay far
#: below); deeper nesting is refused rather than left unchecked.
MAX_DEPTH = 64

#: Containers that hand rows to their children only through the children's public, validating
#: methods (predict, transform, ...), often after transforming them: each child is bounded by the
#: width it validates itself. Read from scikit-learn's code: none of these calls a child with
#: ``check_input=False`` or reads a child's tree directly.
_VALIDATING_CONTAINERS = frozenset(
    {
        "sklearn.pipeline.Pipeline",
        "sklearn.pipeline.FeatureUnion",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.compose._target.TransformedTargetRegressor",
        "sklearn.ensemble._stacking.StackingClassifier",
        "sklearn.ensemble._stacking.StackingRegressor",
        "sklearn.ensemble._voting.VotingClassifier",
        "sklearn.ensemble._voting.VotingRegressor",
        "sklearn.calibration.CalibratedClassifierCV",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.multioutput.ClassifierChain",
        "sklearn.multioutput.RegressorChain",
        "sklearn.multioutput.MultiOutputClassifier",
        "sklearn.multioutput.MultiOutputRegressor",
        "sklearn.multiclass.OneVsRestClassifier",
        "sklearn.multiclass.OneVsOneClassifier",
        "sklearn.multiclass.OutputCodeClassifier",
        "sklearn.feature_selection._rfe.RFE",
        "sklearn.feature_selection._rfe.RFECV",
        "sklearn.feature_selection._from_model.SelectFromModel",
        "sklearn.feature_selection._sequential.SequentialFeatureSelector",
        "sklearn.model_selection._search.GridSearchCV",
        "sklearn.model_selection._search.RandomizedSearchCV",
        "sklearn.model_selection._classification_threshold.FixedThresholdClassifier",
        "sklearn.model_selection._classification_threshold.TunedThresholdClassifierCV",
        "sklearn.semi_supervised._self_training.SelfTrainingClassifier",
        "sklearn.frozen._frozen.FrozenEstimator",
        "sklearn.linear_model._ransac.RANSACRegressor",
        "sklearn.impute._iterative.IterativeImputer",
        "sklearn.model_selection._search_successive_halving.HalvingGridSearchCV",
        "sklearn.model_selection._search_successive_halving.HalvingRandomSearchCV",
    }
)

#: Estimators that hand their own (validated) rows to their trees or members unvalidated:
#: forests call trees with ``check_input=False``, gradient boosting reads ``tree_`` directly, a
#: decision tree is the owner of its ``tree_``. Their width bounds everything beneath them.
_SAME_ROWS_OWNERS = frozenset(
    {
        *(
            f"sklearn.tree._classes.{name}"
            for name in (
                "DecisionTreeClassifier",
                "DecisionTreeRegressor",
                "ExtraTreeClassifier",
                "ExtraTreeRegressor",
            )
        ),
        *(
            f"sklearn.ensemble._forest.{name}"
            for name in (
                "RandomForestClassifier",
                "RandomForestRegressor",
                "ExtraTreesClassifier",
                "ExtraTreesRegressor",
                "RandomTreesEmbedding",
            )
        ),
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.ensemble._gb.GradientBoostingRegressor",
        "sklearn.ensemble._weight_boosting.AdaBoostClassifier",
        "sklearn.ensemble._weight_boosting.AdaBoostRegressor",
    }
)

#: Bagging ensembles give member ``i`` the columns ``estimators_features_[i]`` of their input;
#: IsolationForest then calls its trees with ``check_input=False``, so each member is bounded by
#: the width of its own column subset.
_FEATURE_SUBSET_ENSEMBLES = frozenset(
    {
        "sklearn.ensemble._bagging.BaggingClassifier",
        "sklearn.ensemble._bagging.BaggingRegressor",
        "sklearn.ensemble._iforest.IsolationForest",
    }
)

#: Histogram gradient boosting: the predictors read the output of ``_preprocessor`` (when there are
#: categorical features) without validating its width.
_HIST_GRADIENT_BOOSTING = frozenset(
    {
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    }
)

#: Gradient boosting adds tree k of each stage into column k of its initial predictions, unchecked.
_GRADIENT_BOOSTING = frozenset(
    {
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.ensemble._gb.GradientBoostingRegressor",
    }
)

#: Support vector machines: libsvm sizes its model from these arrays and reads them unchecked.
_LIBSVM = frozenset(
    f"sklearn.svm._classes.{name}" for name in ("SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM")
)

_SKLEARN_TREE = "sklearn.tree._tree.Tree"
_HIST_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"
_BINARY_TREES = frozenset({"sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree"})
_BSPLINE = "scipy.interpolate._bsplines.BSpline"
#: Sparse matrices (support vectors fitted on one-hot rows, sparse coefficients): scipy's
#: compiled products follow their index arrays unchecked.
SPARSE_MATRIX_TYPES = (
    "scipy.sparse._csr.csr_matrix",
    "scipy.sparse._csc.csc_matrix",
    "scipy.sparse._csr.csr_array",
    "scipy.sparse._csc.csc_array",
)

#: Distance metrics a neighbour search tree may use: none holds arrays that the distance loop
#: indexes, except Minkowski's optional weights, whose length is checked. (The search validates
#: the query's width against its data itself.)
_SEARCH_TREE_METRICS = frozenset(
    {
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    }
)


class TreeStructureError(ValueError):
    """A tree's node arrays would make prediction read outside them or loop.

    ``foreign`` names the types outside scikit-learn, numpy and scipy the model holds: mlci does
    not know how they pass rows on, so the width it checked a tree against may be too narrow.
    """

    foreign: tuple[str, ...] = ()


_KNOWN_PACKAGES = frozenset({"sklearn", "numpy", "scipy", "builtins", "collections", "functools"})


def type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def check_tree_structures(estimator: Any) -> int:
    """Check every tree inside ``estimator``; return how many were checked.

    Raises :class:`TreeStructureError` naming the first bad node.
    """
    # One object may be reached along several paths (skops keeps shared references); it is checked
    # against the narrowest width any path gives it, an unknown width being the narrowest of all.
    found: dict[int, tuple[Any, int | None]] = {}
    hist_owners: list[tuple[Any, int | None]] = []
    foreign: set[str] = set()
    try:
        for obj, bound in _walk(estimator):
            name = type_name(obj)
            if name.split(".", 1)[0] not in _KNOWN_PACKAGES:
                foreign.add(name)
            if name in _CHECKED_TYPES:
                previous = found.get(id(obj))
                found[id(obj)] = (obj, bound if previous is None else _narrower(previous[1], bound))
            elif name in _HIST_GRADIENT_BOOSTING:
                hist_owners.append((obj, bound))
            elif name in _GRADIENT_BOOSTING:
                _check_stage_outputs(obj)
            elif name in _LIBSVM:
                _check_libsvm(obj)
        _check_found(found, hist_owners)
    except TreeStructureError as exc:
        exc.foreign = tuple(sorted(foreign))
        raise
    except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
        # Arrays of the wrong kind (a missing field, a wrong dtype) are crafted as surely.
        raise TreeStructureError(f"the model's arrays are malformed ({type(exc).__name__}: {exc})") from None
    return len(found)


def _check_found(found: dict[int, tuple[Any, int | None]], hist_owners: list[tuple[Any, int | None]]) -> None:
    owned: set[int] = set()
    # Categorical splits index the owner's category sets: checked once per owner.
    for owner, bound in hist_owners:
        owned.update(_check_hist_categories(owner, bound))
    for obj, bound in found.values():
        _CHECKED_TYPES[type_name(obj)](obj, bound)
        if type_name(obj) == _HIST_PREDICTOR and id(obj) not in owned and _has_categorical_splits(obj):
            raise TreeStructureError(
                "histogram gradient boosting tree: a categorical split outside the estimator "
                "that knows its categories"
            )


def _narrower(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else min(a, b)


def _stated_width(obj: Any) -> int | None:
    """The input width ``obj`` validates its rows against, if it states one."""
    try:
        width = getattr(obj, "n_features_in_", None)
    except Exception:  # a property over crafted state may fail any way; then it states nothing
        return None
    if isinstance(width, bool):
        return None
    try:
        import numpy as np

        # A negative width matches no input (and must not pass for the unbounded marker).
        if isinstance(width, (int, np.integer)) and width >= 0:
            return int(width)
    except ImportError:  # pragma: no cover - numpy comes with scikit-learn
        pass
    return None


#: The bound of what lies beneath a validating container, before any estimator: the next estimator
#: reached is bounded by the width it validates itself.
_UNBOUNDED = -1


def _walk(root: Any) -> Iterator[tuple[Any, int | None]]:
    """Every object reachable from ``root``, with the input width bounding it.

    The width is None when nothing bounds it: an estimator that states no width of its own, or
    one fed by an owner that states none (its trees are then refused).
    """
    import sys

    import numpy as np

    plain = (np.ndarray, dict, list, tuple, set, frozenset)
    # id -> the narrowest bound an object was walked with; a narrower one walks it again.
    seen: dict[int, int] = {}
    stack: list[tuple[Any, int | None, int]] = [(root, _UNBOUNDED, 0)]
    while stack:
        obj, passed, depth = stack.pop()
        if obj is None or isinstance(obj, (str, bytes, int, float, bool, np.generic)):
            continue
        if isinstance(obj, plain):
            bound = passed
        elif passed == _UNBOUNDED:
            bound = _stated_width(obj)
        else:
            # Fed by an owner: its own stated width only narrows (the owner may skip validating it).
            own = _stated_width(obj)
            bound = passed if own is None or passed is None else min(passed, own)
        rank = sys.maxsize if bound == _UNBOUNDED else -1 if bound is None else bound
        if id(obj) in seen and seen[id(obj)] <= rank:
            continue
        seen[id(obj)] = rank
        if depth > MAX_DEPTH:
            raise TreeStructureError(f"the model nests objects deeper than {MAX_DEPTH} levels")
        yield obj, bound
        stack.extend((child, child_bound, depth + 1) for child, child_bound in _children(obj, bound))


def _children(obj: Any, bound: int | None) -> Iterator[tuple[Any, int | None]]:
    import numpy as np

    if isinstance(obj, dict):
        yield from ((child, bound) for child in obj.values())
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        yield from ((child, bound) for child in obj)
        return
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            yield from ((child, bound) for child in obj.ravel())
        return
    attrs = getattr(obj, "__dict__", None)
    if not isinstance(attrs, dict):
        return
    name = type_name(obj)
    if name in _VALIDATING_CONTAINERS:
        yield from ((child, _UNBOUNDED) for child in attrs.values())
        return
    if name in _FEATURE_SUBSET_ENSEMBLES:
        members = attrs.get("estimators_")
        if isinstance(members, list) and members:
            subsets = attrs.get("estimators_features_")
            if not isinstance(subsets, list) or len(subsets) != len(members):
                raise TreeStructureError(
                    f"{_short(name)}: its members and their column subsets do not pair up"
                )
            for index, (member, columns) in enumerate(zip(members, subsets, strict=True)):
                width = _selection_width(columns, bound)
                if width is None:
                    raise TreeStructureError(f"{_short(name)}: member {index} has no plain column subset")
                # Unknown outer width: the member's trees get None, and are refused.
                yield member, None if bound is None else min(bound, width)
        yield from ((child, bound) for key, child in attrs.items() if key != "estimators_")
        return
    if name in _HIST_GRADIENT_BOOSTING:
        # The predictors read what the preprocessor outputs, unvalidated.
        preprocessor = attrs.get("_preprocessor")
        width = bound if preprocessor is None else _output_width(preprocessor, bound)
        if width is None and bound is not None:
            raise TreeStructureError(
                f"{_short(name)}: its categorical preprocessor is not the one scikit-learn "
                "builds, so the width its trees read cannot be known"
            )
        yield attrs.get("_predictors"), _narrower(bound, width)
        yield from ((child, bound) for key, child in attrs.items() if key != "_predictors")
        return
    if name in _SAME_ROWS_OWNERS:
        yield from ((child, bound) for child in attrs.values())
        return
    # Any other type: how it passes rows on is not known, so nothing beneath it is bounded (a
    # validating container beneath it bounds its own children again).
    yield from ((child, None) for child in attrs.values())


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _selection_width(columns: Any, width: int | None) -> int | None:
    """How many columns ``X[:, columns]`` has (None when that is not a plain column selection)."""
    import numpy as np

    if isinstance(columns, slice):
        return None if width is None else len(range(width)[columns])
    if isinstance(columns, (int, np.integer)) and not isinstance(columns, bool):
        return 1
    selected = np.asarray(columns)
    if selected.ndim != 1:
        return None
    if selected.dtype == bool:
        return int(selected.sum()) if width is None or selected.size == width else None
    if selected.dtype.kind in "iu" or selected.size == 0 or selected.dtype.kind in "UO":
        # Integer positions or column names: one output column each (numpy or pandas refuse
        # positions or names the input does not have).
        return int(selected.size)
    return None


def _output_width(preprocessor: Any, width: int | None) -> int | None:
    """The width histogram gradient boosting's categorical ColumnTransformer outputs.

    scikit-learn builds it from an OrdinalEncoder on the categorical columns and a
    FunctionTransformer of ``check_array`` on the others, each giving one column per column it
    takes; anything else is not known to keep the width.
    """
    if type_name(preprocessor) != "sklearn.compose._column_transformer.ColumnTransformer":
        return None
    steps = getattr(preprocessor, "transformers_", None)
    if not isinstance(steps, list):
        return None
    total = 0
    for step in steps:
        if not isinstance(step, tuple) or len(step) != 3:
            return None
        _, transformer, columns = step
        count = _selection_width(columns, width)
        if count is None:
            return None
        if transformer == "drop" if isinstance(transformer, str) else False:
            continue
        if not (isinstance(transformer, str) and transformer == "passthrough") and not _keeps_width(
            transformer
        ):
            return None
        total += count
    return total


def _keeps_width(transformer: Any) -> bool:
    name = type_name(transformer)
    if name == "sklearn.preprocessing._encoders.OrdinalEncoder":
        return True
    if name != "sklearn.preprocessing._function_transformer.FunctionTransformer":
        return False
    func = getattr(transformer, "func", None)
    if func is None:
        return True
    if isinstance(func, functools.partial):
        # Positional arguments would make check_array return them instead of the rows.
        if func.args:
            return False
        func = func.func
    return f"{getattr(func, '__module__', '')}.{getattr(func, '__name__', '')}" == (
        "sklearn.utils.validation.check_array"
    )


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
    if bound is None:
        raise TreeStructureError(f"{what}: it is not inside an estimator that states its input width")
    # scikit-learn marks a leaf with both children -1; any other node is a split it follows.
    internal = (left != -1) | (right != -1)
    _check_children(left, right, internal, node_count, what)
    # The tree's own width sizes its feature importances, which index it by split feature too.
    _check_features(tree.feature, internal, min(int(tree.n_features), bound), what)


def _check_hist_predictor(predictor: Any, bound: int | None) -> None:
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
    if categorical.any():
        bitsets = len(predictor.raw_left_cat_bitsets)
        bad = categorical & (nodes["bitset_idx"] >= bitsets)
        if bad.any() or len(predictor.binned_left_cat_bitsets) != bitsets:
            raise TreeStructureError(
                f"{what}: a categorical split points outside its {bitsets} category sets"
            )


def _check_hist_categories(estimator: Any, bound: int | None) -> list[int]:
    """Categorical splits also index the owner's bin mapper: check them against it."""
    import numpy as np

    what = type(estimator).__name__
    predictors = [p for iteration in getattr(estimator, "_predictors", None) or [] for p in iteration]
    if not predictors:
        return []
    if bound is None:
        raise TreeStructureError(f"{what}: it does not state its input width (n_features_in_)")
    mapper = getattr(estimator, "_bin_mapper", None)
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
    for predictor in predictors:
        nodes = predictor.nodes
        split = nodes["feature_idx"][(nodes["is_leaf"] == 0) & (nodes["is_categorical"] != 0)]
        # A split past the width is reported by the predictor's own check, with its node.
        split = split[(split >= 0) & (split < bound)]
        if not categorical[split].all():
            raise TreeStructureError(f"{what}: a categorical split is on a feature not known as categorical")
    return [id(p) for p in predictors]


def _check_stage_outputs(estimator: Any) -> None:
    """Gradient boosting: each stage's K trees write columns 0..K-1 of the initial predictions.

    Those come from ``init_``: zeros of ``n_trees_per_iteration_`` columns, or the predictions of
    the dummy estimator scikit-learn fits by default (one column for regression and binary
    classification, one per class for multiclass). Another init estimator's width cannot be told
    before it predicts.
    """
    import numpy as np

    what = type(estimator).__name__
    if not hasattr(estimator, "estimators_"):
        return  # not fitted (a template inside a meta-estimator): it cannot predict
    stages = estimator.estimators_
    if not isinstance(stages, np.ndarray) or stages.ndim != 2:
        raise TreeStructureError(f"{what}: its stages are not a table of trees")
    trees_per_stage = stages.shape[1]
    init = getattr(estimator, "init_", None)
    multiclass = bool(getattr(getattr(estimator, "_loss", None), "is_multiclass", False))
    if isinstance(init, str) and init == "zero":
        width = _stated_int(estimator, "n_trees_per_iteration_")
    elif not multiclass and type_name(init) in (
        "sklearn.dummy.DummyClassifier",
        "sklearn.dummy.DummyRegressor",
    ):
        # A binary classifier takes the positive class's probability; a regressor's single output.
        width = (
            1
            if type_name(init) == "sklearn.dummy.DummyClassifier" or _stated_int(init, "n_outputs_") == 1
            else 0
        )
    elif multiclass and type_name(init) == "sklearn.dummy.DummyClassifier":
        classes = _stated_int(init, "n_classes_")
        prior = getattr(init, "class_prior_", None)
        same = isinstance(prior, np.ndarray) and prior.shape == (classes,)
        width = classes if same and _stated_int(init, "n_outputs_") == 1 else 0
    else:
        raise TreeStructureError(
            f"{what}: its init estimator {type_name(init)} is not one whose output width mlci can "
            "tell before it predicts (mlci checks the default init, or init='zero')"
        )
    if trees_per_stage > width:
        raise TreeStructureError(
            f"{what}: each stage has {trees_per_stage} trees, but its initial predictions have "
            f"{width} columns"
        )


def _check_libsvm(estimator: Any) -> None:
    """The arrays libsvm builds its model from must agree on the number of support vectors.

    libsvm takes the class count from ``_n_support``, the support vector count from ``support_``,
    and reads that many coefficients, intercepts, probability parameters and vectors.
    """
    import numpy as np

    if not hasattr(estimator, "support_"):
        return  # not fitted: it cannot predict
    what = f"{type(estimator).__name__}"
    n_support = np.asarray(estimator._n_support)
    support = np.asarray(estimator.support_)
    classes, count = n_support.size, support.size
    pairs = classes * (classes - 1) // 2
    vectors = estimator.support_vectors_  # sparse ones: their indices are checked as sparse matrices
    if n_support.ndim != 1 or classes < 2 or support.ndim != 1:
        raise TreeStructureError(f"{what}: its support vector counts are malformed")
    if estimator.kernel == "precomputed":
        if count and ((support < 0) | (support >= int(estimator.shape_fit_[0]))).any():
            raise TreeStructureError(
                f"{what}: a support index lies outside its {estimator.shape_fit_[0]} samples"
            )
    elif vectors.shape[0] != count:
        raise TreeStructureError(f"{what}: it has {vectors.shape[0]} support vectors but {count} indices")
    if estimator._impl in ("c_svc", "nu_svc") and ((n_support < 0).any() or int(n_support.sum()) != count):
        raise TreeStructureError(f"{what}: its per-class counts do not add up to {count} support vectors")
    if np.shape(estimator._dual_coef_) != (classes - 1, count):
        raise TreeStructureError(f"{what}: its dual coefficients are not {classes - 1} x {count}")
    if np.size(estimator._intercept_) < pairs:
        raise TreeStructureError(f"{what}: it has fewer than {pairs} intercepts")
    for name in ("_probA", "_probB"):
        if np.size(getattr(estimator, name)) not in (0, pairs):
            raise TreeStructureError(f"{what}: its probability calibration does not have {pairs} entries")


def _stated_int(obj: Any, attribute: str) -> int:
    import numpy as np

    value = getattr(obj, attribute, None)
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else 0


def _check_search_tree(tree: Any, bound: int | None) -> None:
    """KDTree and BallTree: the query follows node ranges and sample indices unchecked."""
    import numpy as np

    what = f"{type(tree).__name__} of a neighbours model"
    data, idx_array, node_data, node_bounds, *_, metric, _ = tree.__getstate__()
    data, idx_array, node_data, node_bounds = (
        np.asarray(a) for a in (data, idx_array, node_data, node_bounds)
    )
    if data.ndim != 2 or idx_array.ndim != 1 or node_data.ndim != 1 or node_bounds.ndim != 3:
        raise TreeStructureError(f"{what}: its arrays do not have the shapes of a search tree")
    n_samples, n_features = data.shape
    n_nodes = len(node_data)
    if int(tree.__getstate__()[6]) != n_nodes or node_bounds.shape[1:] != (n_nodes, n_features):
        raise TreeStructureError(
            f"{what}: its node arrays disagree on {n_nodes} nodes of {n_features} features"
        )
    if idx_array.size and ((idx_array < 0) | (idx_array >= n_samples)).any():
        raise TreeStructureError(f"{what}: a sample index lies outside its {n_samples} samples")
    start, end = node_data["idx_start"], node_data["idx_end"]
    if ((start < 0) | (start > end) | (end > idx_array.size)).any():
        raise TreeStructureError(f"{what}: a node's sample range lies outside its {idx_array.size} indices")
    # A node that is not a leaf has children 2i+1 and 2i+2.
    internal = np.flatnonzero(node_data["is_leaf"] == 0)
    if internal.size and 2 * int(internal.max()) + 2 >= n_nodes:
        raise TreeStructureError(
            f"{what}: node {int(internal.max())} has children outside its {n_nodes} nodes"
        )
    weights_of_samples = tree.__getstate__()[12]
    if weights_of_samples is not None and np.asarray(weights_of_samples).shape != (n_samples,):
        raise TreeStructureError(f"{what}: its sample weights do not match its {n_samples} samples")
    metric_name = type_name(metric)
    if metric_name not in _SEARCH_TREE_METRICS:
        raise TreeStructureError(f"{what}: its distance metric {metric_name} is not one mlci checks")
    # Only Minkowski reads its weight vector (the others keep an unused placeholder).
    weights = np.asarray(metric.__getstate__()[1])
    if metric_name.endswith(".MinkowskiDistance64") and weights.size not in (0, n_features):
        raise TreeStructureError(f"{what}: its metric has {weights.size} weights for {n_features} features")


def _check_bspline(spline: Any, bound: int | None) -> None:
    """SplineTransformer's B-splines: evaluation trusts knots, coefficients and degree to agree."""
    from scipy.interpolate import BSpline

    try:
        BSpline(spline.t, spline.c, spline.k, extrapolate=spline.extrapolate)
    except (TypeError, ValueError, AttributeError) as exc:
        raise TreeStructureError(f"a B-spline of a SplineTransformer is inconsistent: {exc}") from None


def _check_sparse_matrix(matrix: Any, bound: int | None) -> None:
    try:
        matrix.check_format(full_check=True)
    except ValueError as exc:
        raise TreeStructureError(f"a sparse matrix of the model is malformed: {exc}") from None


def _has_categorical_splits(predictor: Any) -> bool:
    nodes = predictor.nodes
    return bool(((nodes["is_leaf"] == 0) & (nodes["is_categorical"] != 0)).any())


#: What checks each kind of tree (the width does not bound search trees and splines: their
#: queries check the width themselves).
_CHECKED_TYPES: dict[str, Callable[[Any, int | None], None]] = {
    _SKLEARN_TREE: _check_sklearn_tree,
    _HIST_PREDICTOR: _check_hist_predictor,
    _BSPLINE: _check_bspline,
    **{name: _check_search_tree for name in _BINARY_TREES},
    **{name: _check_sparse_matrix for name in SPARSE_MATRIX_TYPES},
}
