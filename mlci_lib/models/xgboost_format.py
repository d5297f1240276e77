"""XGBoost models: its JSON and UBJSON model files, loaded with XGBoost's own loader.

XGBoost parses the file but does not check the trees in it (a split on a feature beyond the
input crashes the first prediction), so every loaded booster's trees are bounds-checked on its
own JSON form before anything predicts with it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlci_lib.errors import ModelLoadError, UnsafeModelError
from mlci_lib.models.frameworks import framework_version, import_framework
from mlci_lib.models.native_adapter import NativeModel, check_classes
from mlci_lib.models.node_checks import NodeArrayError, check_tree_nodes, int_list

FILE_NAME = "model.json"
_CLASSIFIER_OBJECTIVES = ("binary:", "multi:")


def looks_like_xgboost(head: bytes) -> bool:
    """JSON or UBJSON whose first key is XGBoost's ``learner`` (the way XGBoost writes its files)."""
    text = head.lstrip()
    return text[:1] == b"{" and b"learner" in text[:32]


class XGBoostModel(NativeModel):
    """An XGBoost scikit-learn wrapper (``XGBClassifier``/``XGBRegressor``) with the real labels."""

    framework = "xgboost"

    def _probabilities(self, frame: Any) -> Any:
        return self.native.predict_proba(frame)

    def _class_indices(self, frame: Any) -> Any:
        # XGBoost's own decision (its threshold for binary:logistic), as indices 0..K-1.
        return self.native.predict(frame).astype("int64")

    def _values(self, frame: Any) -> Any:
        return self.native.predict(frame)


def load_xgboost(
    file: Path, *, classes: Sequence[Any] | None = None, feature_names: Sequence[str] | None = None
) -> XGBoostModel:
    """Load an XGBoost model file as a checked :class:`XGBoostModel`."""
    xgb = import_framework("xgboost", file)
    raw = bytearray(file.read_bytes())
    booster = xgb.Booster()
    try:
        booster.load_model(raw)
    except Exception as exc:  # XGBoostError, ValueError, TypeError for damaged content
        raise _unreadable(file, raw, exc) from None
    # Checked before anything predicts; the wrapper below parses the same bytes again.
    check_booster(booster, f"model {file}")
    objective = str(json.loads(booster.save_config())["learner"]["objective"]["name"])
    task = "classification" if objective.startswith(_CLASSIFIER_OBJECTIVES) else "regression"
    wrapper = xgb.XGBClassifier() if task == "classification" else xgb.XGBRegressor()
    wrapper.load_model(raw)
    booster = wrapper.get_booster()
    names = feature_names if feature_names is not None else booster.feature_names
    labels: list[Any] | None = None
    if task == "classification":
        n_classes = int(getattr(wrapper, "n_classes_", 2) or 2)
        labels = check_classes(classes, n_classes, f"model {file}") or list(range(n_classes))
    # XGBoost keeps the categories it was trained with and recodes a category column itself.
    types = booster.feature_types or []
    categorical: dict[str, list[Any] | None] = {
        str(n): None for n, t in zip(booster.feature_names or [], types, strict=False) if t == "c"
    }
    return XGBoostModel(
        wrapper, task=task, n_features=booster.num_features(), feature_names=names, classes=labels,
        categories=categorical,
    )  # fmt: skip


def check_booster(booster: Any, what: str) -> int:
    """Bounds-check every tree of an XGBoost booster; return how many trees were checked."""
    try:
        model = json.loads(bytes(booster.save_raw(raw_format="json")))
        learner = model["learner"]
        n_features = int(learner["learner_model_param"]["num_feature"])
        booster_part = learner["gradient_booster"]
        if booster_part.get("name") == "dart":
            booster_part = booster_part["gbtree"]
        if booster_part.get("name") == "gblinear":
            return 0
        trees = booster_part["model"]["trees"]
        for number, tree in enumerate(trees):
            _check_tree(tree, n_features, f"tree {number}")
    except NodeArrayError as exc:
        raise UnsafeModelError(
            f"{what} was refused: {exc}",
            hint="the file was damaged or crafted; save the model again from its training code with XGBoost",
        ) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise UnsafeModelError(
            f"{what} was refused: its trees could not be checked ({type(exc).__name__}: {exc})",
            hint="save the model again from its training code with XGBoost",
        ) from None
    return len(trees)


def _check_tree(tree: dict[str, Any], n_features: int, what: str) -> None:
    count = int(tree["tree_param"]["num_nodes"])
    left = int_list(tree["left_children"], f"{what}: left_children")
    right = int_list(tree["right_children"], f"{what}: right_children")
    features = int_list(tree["split_indices"], f"{what}: split_indices")
    if len(left) != count:
        raise NodeArrayError(f"{what}: it has {len(left)} nodes, but says {count}")
    # XGBoost treats a node as a leaf when its left child is -1, and follows both children otherwise.
    check_tree_nodes(left, right, features, [c != -1 for c in left], n_features, what)
    nodes = int_list(tree.get("categories_nodes", []), f"{what}: categories_nodes")
    segments = int_list(tree.get("categories_segments", []), f"{what}: categories_segments")
    sizes = int_list(tree.get("categories_sizes", []), f"{what}: categories_sizes")
    categories = tree.get("categories", [])
    if not (len(nodes) == len(segments) == len(sizes)):
        raise NodeArrayError(f"{what}: its categorical split arrays differ in length")
    for node, start, size in zip(nodes, segments, sizes, strict=True):
        if not 0 <= node < count or start < 0 or size < 0 or start + size > len(categories):
            raise NodeArrayError(f"{what}: categorical split at node {node} points outside its categories")


def _unreadable(file: Path, raw: bytearray, exc: Exception) -> ModelLoadError:
    installed = framework_version("xgboost") or "?"
    written = None
    try:
        version = json.loads(bytes(raw)).get("version")
        written = ".".join(str(v) for v in version) if isinstance(version, list) else None
    except (ValueError, AttributeError):
        pass
    detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    said = f"the file says XGBoost {written}; " if written else ""
    return ModelLoadError(
        f"model {file} could not be read by XGBoost {installed}: {detail}",
        hint=f"the file is truncated or damaged, or written by an XGBoost version this one cannot read "
        f"({said}installed {installed}): save it again from its training code with "
        f"model.save_model('{FILE_NAME}'), or install the XGBoost version that wrote it",
    )


def save_xgboost(estimator: Any, folder: Path) -> Path:
    """Write an XGBoost model (wrapper or Booster) in XGBoost's JSON format; return the file."""
    target = folder / FILE_NAME
    tmp = folder / f".{FILE_NAME}.tmp.json"
    estimator.save_model(str(tmp))
    tmp.replace(target)
    return target
