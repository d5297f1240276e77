"""Loading scikit-learn models from skops files, with mlci's allow-list of types.

The types a skops file may instantiate come from mlci's own allow-list plus what the user
configured, never from the file itself; every tree inside is bounds-checked before anything can
predict with it (:mod:`mlci_lib.tree_checks`).

skops' own ``trusted=`` list is flat: a type trusted for one estimator would be trusted anywhere in
the file. Some estimators need a type that should not be trusted anywhere else (histogram gradient
boosting keeps a ``functools.partial`` inside its categorical preprocessor), so mlci audits the
file itself first: it walks the object tree of the file's schema keeping the chain of objects
that enclose each node, and accepts a type skops does not trust by default only if it is in the
global allow-list, in the user's trusted types, or in the scope of an enclosing owner type
(:data:`SCOPED_TRUSTED_TYPES`). Only then does skops load the file, trusting exactly what was
audited.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci_lib.errors import ModelLoadError, UnsafeModelError

#: Types mlci trusts in skops files beyond skops' own defaults (scikit-learn estimators, numpy,
#: builtins), anywhere in a file. Each is a plain data holder inside a scikit-learn estimator,
#: with no code of its own. The tree storages (decision trees, histogram gradient boosting's
#: predictors, the neighbour search trees) hold raw indices that prediction follows unchecked;
#: every model that contains them is bounds-checked on load (mlci_lib.tree_checks), which is what
#: makes them safe.
DEFAULT_TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.loss.AbsoluteError",
    "sklearn._loss.loss.HalfPoissonLoss",
    "sklearn.utils._bunch.Bunch",
    "collections.OrderedDict",
    "builtins.slice",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.int64",
    "numpy.random.mtrand.RandomState",
    # Neighbour models: the search tree (checked like the decision trees) and its distance
    # metric; only metrics whose state is a number and an optional weight vector (checked).
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.ChebyshevDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    # MLPClassifier/MLPRegressor keep their optimizer's moments (used only to continue fitting).
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    # CalibratedClassifierCV's fitted parts: an estimator, its calibrators, the classes.
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # Sparse matrices (support vectors fitted on one-hot rows): their index arrays are checked on
    # load like the trees.
    "scipy.sparse._csr.csr_matrix",
    "scipy.sparse._csc.csc_matrix",
    "scipy.sparse._csr.csr_array",
    "scipy.sparse._csc.csc_array",
    # IterativeImputer is a public estimator behind sklearn.experimental; a triplet is a namedtuple
    # of two index arrays and an estimator.
    "sklearn.impute._iterative.IterativeImputer",
    "sklearn.impute._iterative._ImputerTriplet",
    # What searches and threshold tuning keep of their set-up: scorers (their score function is a
    # separate, scoped type), cross-validation splitters, metadata routing requests. All are used
    # only when fitting.
    "sklearn.metrics._scorer._PassthroughScorer",
    "sklearn.metrics._scorer._Scorer",
    "sklearn.metrics._scorer._CurveScorer",
    *(
        f"sklearn.model_selection._split.{name}"
        for name in (
            "KFold",
            "StratifiedKFold",
            "GroupKFold",
            "StratifiedGroupKFold",
            "RepeatedKFold",
            "RepeatedStratifiedKFold",
            "ShuffleSplit",
            "StratifiedShuffleSplit",
            "TimeSeriesSplit",
            "PredefinedSplit",
        )
    ),
    "sklearn.utils._metadata_requests.MetadataRequest",
    "sklearn.utils._metadata_requests.MethodMetadataRequest",
)

_HIST_SCOPE = ("functools.partial", "sklearn.utils.validation.check_array")
_SCORE_FUNCTIONS = tuple(
    f"sklearn.feature_selection.{name}"
    for name in (
        "_univariate_selection.f_classif",
        "_univariate_selection.f_regression",
        "_univariate_selection.r_regression",
        "_univariate_selection.chi2",
        "_mutual_info.mutual_info_classif",
        "_mutual_info.mutual_info_regression",
    )
)

_METRICS = tuple(
    f"sklearn.metrics.{name}"
    for name in (
        *(
            f"_classification.{metric}"
            for metric in (
                "accuracy_score",
                "balanced_accuracy_score",
                "f1_score",
                "fbeta_score",
                "precision_score",
                "recall_score",
                "jaccard_score",
                "log_loss",
                "brier_score_loss",
                "matthews_corrcoef",
            )
        ),
        "_ranking.roc_auc_score",
        "_ranking.average_precision_score",
        *(
            f"_regression.{metric}"
            for metric in (
                "r2_score",
                "mean_squared_error",
                "root_mean_squared_error",
                "mean_absolute_error",
                "median_absolute_error",
                "mean_absolute_percentage_error",
                "explained_variance_score",
                "max_error",
                "mean_pinball_loss",
            )
        ),
    )
)

#: Types trusted only beneath an object of the owner type, where that estimator puts them: code
#: (a function, a partial) that is harmless where scikit-learn calls it, and that a crafted file
#: must not be able to place anywhere else (a partial at the top level or in a FunctionTransformer
#: would be called on the rows). The single place for such grants, framework wrappers included.
SCOPED_TRUSTED_TYPES: dict[str, tuple[str, ...]] = {
    # Histogram gradient boosting with categorical features validates its numeric columns with
    # FunctionTransformer(partial(check_array, ...)) inside its own ColumnTransformer.
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier": _HIST_SCOPE,
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor": _HIST_SCOPE,
    # SplineTransformer keeps one scipy BSpline per feature (checked on load like the trees),
    # which keeps the array namespace's asarray it was built with.
    "sklearn.preprocessing._polynomial.SplineTransformer": ("scipy.interpolate._bsplines.BSpline",),
    "scipy.interpolate._bsplines.BSpline": ("scipy._lib.array_api_compat.numpy._aliases.asarray",),
    # A scorer keeps the metric it computes (called only when fitting or scoring).
    "sklearn.metrics._scorer._Scorer": _METRICS,
    "sklearn.metrics._scorer._CurveScorer": _METRICS,
    # Univariate feature selection keeps its score function (called only when fitting).
    **{
        f"sklearn.feature_selection._univariate_selection.{name}": _SCORE_FUNCTIONS
        for name in (
            "SelectKBest",
            "SelectPercentile",
            "SelectFpr",
            "SelectFdr",
            "SelectFwe",
            "GenericUnivariateSelect",
        )
    },
}


@dataclass(frozen=True)
class _Placement:
    """Where a type skops does not trust by default was found, and why it was refused."""

    type_name: str
    path: str
    owners: tuple[str, ...]


def load_skops(file: Path, allowed: set[str]) -> Any:
    """Load ``file`` after auditing every type in it against ``allowed`` and the scoped grants.

    ``allowed`` is mlci's global allow-list plus the user's trusted types.
    """
    import skops.io as sio

    try:
        data = file.read_bytes()
        untrusted = set(sio.get_untrusted_types(data=data))
        schema = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("schema.json"))
    except OSError as exc:
        raise ModelLoadError(f"model {file} could not be read: {exc}") from None
    except Exception as exc:  # skops and zipfile raise many types for a damaged file; one message
        raise ModelLoadError(
            f"model {file} is truncated or not a valid skops file ({type(exc).__name__}: {exc})",
            hint="save the model again",
        ) from None
    needed = untrusted - allowed
    if needed:
        _audit(file, schema, needed, allowed)
    try:
        estimator = sio.loads(data, trusted=sorted(untrusted))
    except Exception as exc:  # skops raises many types for damaged content; report them as one
        raise ModelLoadError(
            f"model {file} could not be loaded: {type(exc).__name__}: {exc}",
            hint="save the model again with the installed scikit-learn",
        ) from None
    from mlci_lib.tree_checks import TreeStructureError, check_tree_structures

    try:
        check_tree_structures(estimator)
    except TreeStructureError as exc:
        hint = "the file was damaged or crafted; save the model again from its training code"
        if exc.foreign:
            # Outside scikit-learn's own containers mlci cannot tell the width trees receive.
            hint = (
                f"the file was damaged or crafted, or its trees sit inside {', '.join(exc.foreign)}, "
                "whose data flow mlci does not know: put tree models inside scikit-learn's own "
                "containers (Pipeline, ColumnTransformer)"
            )
        raise UnsafeModelError(f"model {file} was refused: {exc}", hint=hint) from None
    return estimator


def _audit(file: Path, schema: dict[str, Any], needed: set[str], allowed: set[str]) -> None:
    """Refuse ``file`` unless every type in ``needed`` is found only where a scope grants it."""
    refused: list[_Placement] = []
    placed: set[str] = set()
    try:
        for node, path, owners, granted in _placements(schema):
            for name in _type_names(node):
                if name not in needed:
                    continue
                placed.add(name)
                if name not in granted:
                    refused.append(_Placement(name, path, owners))
    except (TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise ModelLoadError(
            f"model {file} has a malformed skops schema ({type(exc).__name__}: {exc})",
            hint="the file was damaged or crafted; save the model again",
        ) from None
    # Where each refused type was first found; a type skops reports that the walk did not find
    # (a node kind it does not model) is refused too, with no place.
    first: dict[str, _Placement] = {}
    for placement in refused:
        first.setdefault(placement.type_name, placement)
    scoped = {t for scope in SCOPED_TRUSTED_TYPES.values() for t in scope}
    plain = sorted({name for name in first if name not in scoped} | (needed - placed))
    parts = []
    if plain:
        listed = ", ".join(f"{name} (at {_where(first[name])})" if name in first else name for name in plain)
        parts.append(f"needs types outside the allowed list: {listed}")
    for name in sorted(set(first) - set(plain)):
        scopes = sorted(_short(owner) for owner, scope in SCOPED_TRUSTED_TYPES.items() if name in scope)
        parts.append(
            f"holds {name} at {_where(first[name])}, where mlci does not trust it "
            f"(only inside {', '.join(scopes)})"
        )
    if parts:
        names = ", ".join(plain) if plain else ", ".join(sorted(first))
        raise UnsafeModelError(
            f"model {file} {'; '.join(parts)}",
            hint=f"if you trust this file, add {names} to model.trusted-types in mlci.yaml "
            "or pass --trust-type",
        )


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _where(placement: _Placement) -> str:
    inside = f" inside {_short(placement.owners[-1])}" if placement.owners else ""
    return f"{placement.path or 'the top level'}{inside}"


def _type_names(node: dict[str, Any]) -> Iterator[str]:
    """The names skops audits for ``node``, as get_untrusted_types reports them."""
    loader = node.get("__loader__")
    if loader in ("JsonNode", "SliceNode", "CachedNode"):
        return
    yield f"{node['__module__']}.{node['__class__']}"
    if loader == "MethodNode":
        owner = node["content"]["obj"]
        yield f"{owner['__module__']}.{owner['__class__']}.{node['content']['func']}"


def _is_node(value: Any) -> bool:
    return isinstance(value, dict) and "__loader__" in value


def _child_nodes(value: Any, path: str) -> Iterator[tuple[dict[str, Any], str]]:
    """The nodes directly beneath ``value`` (a node's state or part of it), with their paths."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.startswith("__"):
                continue
            # "content" is the node format's own wrapper; other keys are attributes or parts.
            sub = path if key == "content" else f"{path}.{key}" if path else str(key)
            if _is_node(item):
                yield item, sub
            else:
                yield from _child_nodes(item, sub)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            sub = f"{path}[{index}]"
            if _is_node(item):
                yield item, sub
            else:
                yield from _child_nodes(item, sub)


def _placements(
    schema: dict[str, Any],
) -> Iterator[tuple[dict[str, Any], str, tuple[str, ...], frozenset[str]]]:
    """Every node skops could construct, with its path, its enclosing owners and the types granted there.

    skops builds one object per ``__id__``: a later node with the same id, or a ``CachedNode``,
    becomes the object of the first one, wherever it sits. So at each node with an id, every node
    that carries that id is audited as if it were there (a crafted file cannot define a type
    inside a scope and use it outside).
    """
    by_id: dict[Any, list[tuple[dict[str, Any], str]]] = {}
    stack: list[tuple[dict[str, Any], str]] = [(schema, "")]
    while stack:
        node, path = stack.pop()
        if node.get("__loader__") != "CachedNode" and "__id__" in node:
            by_id.setdefault(node["__id__"], []).append((node, path))
        stack.extend(_child_nodes(node, path))

    # An id is audited once per set of granted types, all its nodes together (ids of interned
    # values, such as small integers, are shared by hundreds of nodes).
    done: set[tuple[Any, frozenset[str]]] = set()
    work: list[tuple[dict[str, Any], str, tuple[str, ...], frozenset[str]]] = [(schema, "", (), frozenset())]
    while work:
        node, path, owners, granted = work.pop()
        if "__id__" in node:
            key: tuple[Any, frozenset[str]] = (("id", node["__id__"]), granted)
            variants = [variant for variant, _ in by_id.get(node["__id__"], [])]
            if not variants:
                raise KeyError(f"a cached node refers to unknown object {node['__id__']!r}")
        else:
            key, variants = (("node", id(node)), granted), [node]
        if key in done:
            continue
        done.add(key)
        for variant in variants:
            yield variant, path, owners, granted
            inner_owners, inner_granted = owners, granted
            if variant.get("__loader__") not in ("JsonNode", "CachedNode"):
                name = f"{variant['__module__']}.{variant['__class__']}"
                if name in SCOPED_TRUSTED_TYPES:
                    inner_owners = (*owners, name)
                    inner_granted = granted | frozenset(SCOPED_TRUSTED_TYPES[name])
            for child, child_path in _child_nodes(variant, path):
                work.append((child, child_path, inner_owners, inner_granted))
