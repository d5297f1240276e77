"""The model frameworks mlci loads besides scikit-learn: importing them, and finding them in a model.

XGBoost, LightGBM and CatBoost are optional dependencies: each is imported only when a model of
that kind is loaded, and a missing one is a :class:`ModelLoadError` that says what to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from mlci_lib.errors import ModelLoadError

#: framework -> (module to import, distribution to install, name people know it by)
FRAMEWORKS: dict[str, tuple[str, str, str]] = {
    "xgboost": ("xgboost", "xgboost", "XGBoost"),
    "lightgbm": ("lightgbm", "lightgbm", "LightGBM"),
    "catboost": ("catboost", "catboost", "CatBoost"),
}

#: The frameworks' scikit-learn wrappers and their boosters, as skops needs them trusted inside a
#: pipeline. Safe because of how each restores itself: skops rebuilds the object with
#: ``__new__`` and ``__setstate__`` from a state whose every value is itself a type skops checks
#: (numbers, strings, arrays, dicts), and the boosters' ``__setstate__`` hands their raw model to
#: the framework's own parser: ``xgboost.core.Booster`` calls ``XGBoosterUnserializeFromBuffer``
#: on a bytearray, ``lightgbm.basic.Booster`` calls ``LGBM_BoosterLoadModelFromString`` on the
#: model text, ``CatBoost*`` call ``_load_from_string`` (the .cbm bytes). None of them unpickles.
#: Their trees are bounds-checked after loading (and LightGBM's text before it, see
#: :func:`mlci_lib.models.lightgbm_format.check_skops_boosters`), as scikit-learn's are.
FRAMEWORK_TRUSTED_TYPES: tuple[str, ...] = (
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
    "xgboost.sklearn.XGBRFClassifier",
    "xgboost.sklearn.XGBRFRegressor",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "catboost.core.CatBoostClassifier",
    "catboost.core.CatBoostRegressor",
)


def install_hint(framework: str) -> str:
    distribution = FRAMEWORKS[framework][1]
    return f"install it: pip install 'mlci[{framework}]' (or pip install {distribution})"


def import_framework(framework: str, source: Path) -> ModuleType:
    """Import ``framework`` for the model at ``source``, or say which package to install."""
    module, _, display = FRAMEWORKS[framework]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelLoadError(
            f"model {source} is a {display} model, but {module} cannot be imported ({exc})",
            hint=install_hint(framework),
        ) from None


def framework_version(framework: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(FRAMEWORKS[framework][1])
    except importlib.metadata.PackageNotFoundError:
        return None


def framework_of(obj: Any) -> str | None:
    """The framework an object belongs to, by the module its class is defined in."""
    root = type(obj).__module__.split(".", 1)[0]
    return root if root in FRAMEWORKS else None


def framework_objects(estimator: Any, max_depth: int = 64) -> Iterator[tuple[str, Any]]:
    """Every framework object (wrapper or booster) reachable from ``estimator``.

    Walks attributes, lists, tuples and dicts (a Pipeline's steps, a ColumnTransformer's
    transformers, an ensemble's estimators); it does not descend into framework objects.
    """
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(estimator, 0)]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > max_depth or obj is None or isinstance(obj, (str, bytes, int, float)):
            continue
        seen.add(id(obj))
        framework = framework_of(obj)
        if framework is not None:
            yield framework, obj
            continue
        if isinstance(obj, dict):
            children: Any = obj.values()
        elif isinstance(obj, (list, tuple)):
            children = obj
        elif hasattr(obj, "__dict__") and type(obj).__module__.split(".", 1)[0] == "sklearn":
            children = vars(obj).values()
        else:
            children = ()
        stack.extend((child, depth + 1) for child in children)


def frameworks_in(estimator: Any) -> tuple[str, ...]:
    """The frameworks a (scikit-learn) model uses inside it, sorted."""
    return tuple(sorted({name for name, _ in framework_objects(estimator)}))
