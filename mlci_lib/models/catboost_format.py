"""CatBoost models: its native binary format (.cbm), loaded with CatBoost's own loader.

CatBoost's model file is a FlatBuffers document behind a ``CBM1`` magic; CatBoost checks its
length and structure while reading (a truncated file is refused by the loader), and its trees
are oblivious: each level compares one binarised feature, stored per tree as indices into the
model's own feature table, which the loader builds from the same file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlci_lib.errors import ModelLoadError
from mlci_lib.models.frameworks import framework_version, import_framework
from mlci_lib.models.native_adapter import NativeModel, check_classes

FILE_NAME = "model.cbm"
MAGIC = b"CBM1"
_CLASSIFIER_LOSSES = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll")


def looks_like_catboost(head: bytes) -> bool:
    return head.startswith(MAGIC)


class CatBoostModel(NativeModel):
    """A CatBoostClassifier/CatBoostRegressor (which keep their own labels) as mlci uses models."""

    framework = "catboost"

    def _errors(self) -> tuple[type[BaseException], ...]:
        import catboost

        return (catboost.CatBoostError,)

    def _probabilities(self, frame: Any) -> Any:
        return self.native.predict_proba(frame)

    def _class_indices(self, frame: Any) -> Any:
        import numpy as np

        # CatBoost's own decision (its probability threshold included), mapped back to indices.
        labels = np.asarray(self.native.predict(frame)).ravel()
        own = list(self.native.classes_)
        return np.asarray([own.index(label) for label in labels], dtype=np.int64)

    def _values(self, frame: Any) -> Any:
        return self.native.predict(frame)


def load_catboost(
    file: Path, *, classes: Sequence[Any] | None = None, feature_names: Sequence[str] | None = None
) -> CatBoostModel:
    cb = import_framework("catboost", file)
    generic = cb.CatBoost()
    try:
        generic.load_model(str(file), format="cbm")
        loss = str(generic.get_all_params().get("loss_function", ""))
    except Exception as exc:  # CatBoostError for damaged content
        installed = framework_version("catboost") or "?"
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"model {file} could not be read by CatBoost {installed}: {detail}",
            hint="the file is truncated or damaged, or written by a CatBoost version this one cannot "
            "read: save it again with model.save_model(), or install the CatBoost version that wrote it",
        ) from None
    task = "classification" if loss.split(":", 1)[0] in _CLASSIFIER_LOSSES else "regression"
    model = cb.CatBoostClassifier() if task == "classification" else cb.CatBoostRegressor()
    model.load_model(str(file), format="cbm")
    labels: list[Any] | None = None
    if task == "classification":
        own = [c.item() if hasattr(c, "item") else c for c in model.classes_]
        labels = check_classes(classes, len(own), f"model {file}") or own
    own_names = [str(n) for n in model.feature_names_ or []]
    # CatBoost names the columns of an array "0", "1", ...: then the names are unknown.
    known = own_names and own_names != [str(i) for i in range(len(own_names))]
    names = feature_names if feature_names is not None else (own_names if known else None)
    return CatBoostModel(model, task=task, n_features=len(own_names), feature_names=names, classes=labels)


def save_catboost(estimator: Any, folder: Path) -> Path:
    target = folder / FILE_NAME
    tmp = folder / f".{FILE_NAME}.tmp"
    estimator.save_model(str(tmp), format="cbm")
    tmp.replace(target)
    return target
