"""What the serving runtime's numeric fast path hands the model, decided once when it loads.

A request of plain JSON numbers for a model whose inputs are all numeric becomes a float64
matrix in signature order (:meth:`ModelService.numeric_matrix`). Two costs remained per request:

- **the DataFrame**: a scikit-learn estimator fitted on a DataFrame checks the feature names of
  every frame it is given, and turning the frame back into the array it already was costs more
  than a 100-tree ensemble's prediction. :func:`matrix_view` is the estimator without its
  recorded names (a shallow copy: the fitted trees and coefficients are shared), so it takes the
  matrix itself without a warning; the names and their order are compared with the signature
  here, once, instead of on every request;
- **the second pass**: for a classifier whose ``predict`` is the class of the largest score,
  ``predict`` after ``predict_proba`` computes everything twice. :func:`argmax_predicts` names
  those families; :func:`labels_from_probabilities` takes the labels from the probabilities.

Both are checked on rows at load (:func:`verify`): a view or a family whose answers differ in
the last bit from the model's own on a DataFrame is not used, and every request takes the
general path as before.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

#: Estimators whose ``predict`` is ``classes_[argmax(s)]`` for a score ``s`` of which
#: ``predict_proba`` is a per-row non-decreasing function (the identity, a division by the row's
#: sum, the logistic function, a softmax), with a binary ``s > 0`` where 0 maps to probability
#: 1/2. Where a row's largest probability is unique, its position is then the position of the
#: largest score, so the labels follow from the probabilities; where two probabilities tie (a
#: score rounded onto 1/2, trees that split their votes), :func:`labels_from_probabilities` asks
#: ``predict``. Not here: anything that applies a threshold or a cost of its own
#: (``FixedThresholdClassifier``, ``TunedThresholdClassifierCV``, XGBoost's and CatBoost's own
#: decisions), SVC (Platt scaling disagrees with its ``decision_function``), and anything unknown.
ARGMAX_FAMILIES = frozenset(
    {
        "HistGradientBoostingClassifier",
        "RandomForestClassifier",
        "ExtraTreesClassifier",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "LogisticRegression",
    }
)

#: Rows of pseudo-random numbers :func:`verify` adds to the warm-up rows.
VERIFY_ROWS = 64


def final_estimator(estimator: Any) -> Any:
    """The last step of a scikit-learn pipeline (recursively), or the estimator itself."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps and type(estimator).__name__ == "Pipeline":
        return final_estimator(steps[-1][1])
    return estimator


def argmax_predicts(estimator: Any) -> bool:
    """Whether ``estimator.predict`` is the class of the largest probability (ties aside)."""
    from mlci_lib.models.native_adapter import NativeModel

    last = final_estimator(estimator)
    if isinstance(last, NativeModel):
        # The adapter's own predict is the argmax unless the format decides by itself.
        return type(last)._class_indices is NativeModel._class_indices
    return type(last).__name__ in ARGMAX_FAMILIES and type(last).__module__.startswith("sklearn.")


def labels_from_probabilities(estimator: Any, ready: Any, probabilities: Any) -> Any:
    """``estimator.predict(ready)`` from its ``probabilities``, calling ``predict`` only on ties."""
    import numpy as np

    if probabilities.ndim != 2 or probabilities.shape[1] != len(estimator.classes_):
        return estimator.predict(ready)
    top = probabilities.max(axis=1)
    if ((probabilities == top[:, None]).sum(axis=1) != 1).any():
        return estimator.predict(ready)  # a tie: only the model's own decision is exact
    return estimator.classes_[np.argmax(probabilities, axis=1)]


def matrix_view(estimator: Any, names: Sequence[str]) -> Any | None:
    """The estimator as it predicts on a float64 matrix whose columns are ``names``, or None.

    A scikit-learn estimator (or a pipeline's first step) fitted on a DataFrame records the
    column names; when they are ``names`` in the same order, a copy without them predicts on the
    bare matrix exactly as the original does on the frame. A model fitted on an array takes the
    matrix as it is. Anything else (other names, another order, a pipeline that selects columns
    by name) gets None: it needs the DataFrame.
    """
    recorded = getattr(estimator, "feature_names_in_", None)
    if recorded is None:
        width = getattr(estimator, "n_features_in_", None)
        return estimator if width is None or int(width) == len(names) else None
    if [str(n) for n in recorded] != list(names):
        return None
    return _without_names(estimator)


def _without_names(estimator: Any) -> Any | None:
    if type(estimator).__name__ == "Pipeline" and isinstance(getattr(estimator, "steps", None), list):
        name, first = estimator.steps[0]
        stripped = _without_names(first) if not isinstance(first, str) else None
        if stripped is None:
            return None
        view = copy.copy(estimator)
        view.steps = [(name, stripped), *estimator.steps[1:]]
        return view
    if "feature_names_in_" not in vars(estimator):
        return None  # names held somewhere else (a wrapper, a meta-estimator): keep the frame
    view = copy.copy(estimator)
    del view.feature_names_in_
    return view


def check_rows(frame: Any, names: Sequence[str], integers: Sequence[int], seed: int = 0) -> Any:
    """A float64 matrix to compare the paths on: ``frame``'s rows and pseudo-random ones."""
    import numpy as np

    rng = np.random.default_rng(seed)
    extra = rng.normal(0.0, 3.0, size=(VERIFY_ROWS, len(names)))
    if integers:
        extra[:, list(integers)] = np.round(extra[:, list(integers)])
    given = frame[list(names)].to_numpy(dtype=np.float64)
    return np.asfortranarray(np.concatenate([given, extra]))


def same_outputs(left: Any, right: Any) -> bool:
    """Equal to the last bit (NaN where NaN), and of the same dtype."""
    import numpy as np

    a, b = np.asarray(left), np.asarray(right)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def verify(original: Any, view: Any, frame: Any, matrix: Any, *, classifier: bool) -> bool:
    """Whether ``view`` on ``matrix`` answers as ``original`` on ``frame``, without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning here would repeat on every request
        expected: tuple[Any, ...]
        got: tuple[Any, ...]
        try:
            if classifier:
                expected = (original.predict(frame), original.predict_proba(frame))
                proba = view.predict_proba(matrix)
                got = (view.predict(matrix), proba)
            else:
                expected = (original.predict(frame),)
                got = (view.predict(matrix),)
        except Exception:
            return False
    return all(same_outputs(a, b) for a, b in zip(expected, got, strict=True))


def verify_labels(estimator: Any, frame: Any) -> bool:
    """Whether the labels from the probabilities equal ``predict`` on ``frame``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            probabilities = estimator.predict_proba(frame)
            derived = labels_from_probabilities(estimator, frame, probabilities)
            own = estimator.predict(frame)
        except Exception:
            return False
    return same_outputs(derived, own)
