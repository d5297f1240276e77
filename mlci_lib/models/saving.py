"""Saving fitted models as mlci model folders: the model file plus ``mlci-model.json``.

scikit-learn models (pipelines holding XGBoost, LightGBM or CatBoost wrappers included) are
saved with skops; an XGBoost, LightGBM or CatBoost model on its own in its framework's native
format. A native file knows its classes only as 0..K-1 (XGBoost, LightGBM), so the real labels
and the feature names are recorded in ``mlci-model.json``, with the framework and its version.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError
from mlci_lib.models.digest import mlci_folder_digest
from mlci_lib.models.formats import load_native
from mlci_lib.models.frameworks import framework_of, framework_version, frameworks_in
from mlci_lib.models.layout import MLCI_MODEL_FILE, SKOPS_FILE
from mlci_lib.models.signature import ModelSignature

if TYPE_CHECKING:
    import pandas as pd

MODEL_SCHEMA_VERSION = 1

#: framework -> the "format" recorded for its native file
NATIVE_FORMATS = {"xgboost": "xgboost-json", "lightgbm": "lightgbm-text", "catboost": "catboost-cbm"}


def save_model(
    estimator: Any,
    path: str | Path,
    *,
    sample_input: pd.DataFrame | None = None,
    name: str | None = None,
    extra_metadata: dict[str, Any] | None = None,
    classes: Sequence[Any] | None = None,
) -> Path:
    """Save a fitted model as an mlci model folder (the model file plus metadata).

    ``sample_input`` (a few training rows) records the input signature that serving and the
    registry validate requests against. ``classes`` gives the real labels of a classifier trained
    on encoded ones (``LabelEncoder().classes_`` for an XGBClassifier trained on strings): class
    ``i`` of the model is predicted as ``classes[i]``.
    """
    from mlci_lib.files import write_json_atomic

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    framework = framework_of(estimator)
    signature = ModelSignature.infer(sample_input) if sample_input is not None else None
    meta: dict[str, Any] = {
        "schema": "mlci.model",
        "schema_version": MODEL_SCHEMA_VERSION,
        "name": name,
        "signature": signature.to_dict() if signature else None,
    }
    if framework is not None:
        meta.update(_save_native(estimator, framework, folder, classes))
    else:
        meta.update(_save_skops(estimator, folder, classes))
    meta.update(extra_metadata or {})
    meta["digest"] = mlci_folder_digest(folder / meta["file"], meta)  # what load_model(folder).digest gives
    write_json_atomic(folder / MLCI_MODEL_FILE, meta)
    return folder


def _labels(values: Any) -> list[Any] | None:
    return None if values is None else [c.item() if hasattr(c, "item") else c for c in values]


def _save_skops(estimator: Any, folder: Path, classes: Sequence[Any] | None) -> dict[str, Any]:
    import sklearn
    import skops.io as sio

    if classes is not None:
        raise InputError(
            "classes= is for XGBoost, LightGBM and CatBoost models saved on their own",
            hint="a scikit-learn model keeps its labels itself (wrap encoded labels in a pipeline)",
        )
    model_file = folder / SKOPS_FILE
    tmp = folder / f".{SKOPS_FILE}.tmp"
    sio.dump(estimator, tmp)
    tmp.replace(model_file)
    own = getattr(estimator, "classes_", None)
    inner = frameworks_in(estimator)
    return {
        "file": SKOPS_FILE,
        "format": "skops",
        "framework": inner[0] if len(inner) == 1 else "sklearn",
        "frameworks": {name: framework_version(name) for name in inner},
        "task": "classification" if own is not None else "regression",
        "classes": _labels(own),
        "sklearn_version": sklearn.__version__,
    }


def _save_native(
    estimator: Any, framework: str, folder: Path, classes: Sequence[Any] | None
) -> dict[str, Any]:
    if framework == "xgboost":
        from mlci_lib.models.xgboost_format import save_xgboost as save
    elif framework == "lightgbm":
        from mlci_lib.models.lightgbm_format import save_lightgbm as save
    else:
        from mlci_lib.models.catboost_format import save_catboost as save
    model_file = save(estimator, folder)
    # Read back with the loader serving will use: what does not load is not saved as a model.
    loaded = load_native(framework, model_file)
    labels = _labels(classes) if classes is not None else _labels(getattr(estimator, "classes_", None))
    if loaded.task == "classification":
        labels = labels if labels is not None else _labels(loaded.classes_)
        if labels is None or len(labels) != len(loaded.classes_):
            raise InputError(
                f"classes= gives {len(labels or [])} labels, but the model predicts "
                f"{len(loaded.classes_)} classes",
                hint="pass the labels in the order of the encoded classes (LabelEncoder().classes_)",
            )
    elif classes is not None:
        raise InputError("classes= was given for a regression model", hint="leave classes out")
    own_names = getattr(estimator, "feature_names_in_", None)
    names = getattr(loaded, "feature_names_in_", None) if own_names is None else own_names
    return {
        "file": model_file.name,
        "format": NATIVE_FORMATS[framework],
        "framework": framework,
        "framework_version": framework_version(framework),
        "task": loaded.task,
        "classes": labels if loaded.task == "classification" else None,
        "feature_names": None if names is None else [str(n) for n in names],
        "n_features": loaded.n_features_in_,
    }
