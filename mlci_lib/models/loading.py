"""Loading models under mlci's safety rules, by content rather than by extension.

Loading a pickle (``pickle``, ``joblib``, ``cloudpickle``, MLflow's pickle formats) runs whatever
code the file contains, so mlci refuses those unless the caller opts in with ``allow_pickle``.

Formats recognised:

- an mlci model folder: ``mlci-model.json`` beside the model file (what :func:`save_model` writes:
  ``model.skops``, or a framework's native file with the real class labels recorded beside it);
- an MLflow model folder (``MLmodel``): see :mod:`mlci_lib.models.mlflow_folder`;
- a bare ``.skops`` file (scikit-learn, also pipelines holding XGBoost, LightGBM or CatBoost's
  scikit-learn wrappers);
- an XGBoost JSON or UBJSON model file, a LightGBM text model file, a CatBoost ``.cbm`` file,
  each loaded by its framework's own loader (:mod:`~mlci_lib.models.xgboost_format`,
  :mod:`~mlci_lib.models.lightgbm_format`, :mod:`~mlci_lib.models.catboost_format`);
- a pickle or joblib file (only with ``allow_pickle``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError, ModelLoadError, UnsafeModelError
from mlci_lib.models.digest import model_digest
from mlci_lib.models.formats import (
    NATIVE_LOADERS,
    PICKLE_HINT,
    allowed_types,
    load_native,
    load_pickle,
    load_skops_model,
    native_loaded,
    pickle_loaded,
    skops_loaded,
    sniff_model_file,
)
from mlci_lib.models.layout import MLCI_MODEL_FILE, SKOPS_FILE
from mlci_lib.models.loaded import LoadedModel
from mlci_lib.models.signature import ModelSignature


def load_model(
    path: str | os.PathLike[str],
    *,
    allow_pickle: bool = False,
    trusted_types: Iterable[str] = (),
) -> LoadedModel:
    """Load a model from any supported format, refusing anything that could run code."""
    source = Path(path)
    if not source.exists():
        raise InputError(f"model {source} does not exist", hint="check the path")
    user_types = tuple(sorted(set(trusted_types)))
    loaded = _load(source, allowed_types(user_types), allow_pickle)
    # The serving image loads the model again and needs the same trust the user gave here.
    return dataclasses.replace(loaded, trusted_types=user_types) if user_types else loaded


def _load(source: Path, allowed: set[str], allow_pickle: bool) -> LoadedModel:
    if source.is_dir():
        if (source / MLCI_MODEL_FILE).is_file():
            return _load_mlci_folder(source, allowed)
        if (source / "MLmodel").is_file():
            from mlci_lib.models.mlflow_folder import load_mlflow_folder

            return load_mlflow_folder(source, allowed, allow_pickle)
        raise ModelLoadError(
            f"model folder {source} holds neither {MLCI_MODEL_FILE} nor MLmodel",
            hint="point at a folder written by mlci_lib.save_model or mlflow, or at a model file",
        )
    kind = sniff_model_file(source)
    if kind == "onnx":
        from mlci_lib.models.onnx_format import load_onnx

        return load_onnx(source)
    if kind == "skops":
        estimator = load_skops_model(source, allowed)
        return skops_loaded(estimator, source, "skops", model_digest(source), None, {})
    if kind in NATIVE_LOADERS:
        native = load_native(kind, source)
        return native_loaded(native, source, kind, model_digest(source), None, {})
    if kind == "pickle":
        if not allow_pickle:
            raise UnsafeModelError(f"model {source} is a pickle file and was not loaded", hint=PICKLE_HINT)
        return pickle_loaded(load_pickle(source), source, "pickle", model_digest(source), None)
    # An ONNX model (.onnx) is recognised and loaded by mlci_lib.models.onnx_format: its sniffing
    # belongs in sniff_model_file and its loader here, as "onnx".
    raise ModelLoadError(
        f"model {source} is not a model file mlci knows",
        hint="give a skops file, an XGBoost JSON/UBJSON, LightGBM text or CatBoost .cbm model file, "
        "or a folder written by mlci_lib.save_model or MLflow",
    )


def _read_json_file(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{file} is not valid JSON: {exc}", hint="save the model again") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{file} must hold a JSON object")
    return data


def _load_mlci_folder(folder: Path, allowed: set[str]) -> LoadedModel:
    meta = _read_json_file(folder / MLCI_MODEL_FILE)
    model_file = folder / str(meta.get("file", SKOPS_FILE))
    if not model_file.is_file() or model_file.parent.resolve() != folder.resolve():
        raise ModelLoadError(
            f"model folder {folder}: {model_file.name} is missing", hint="save the model again"
        )
    signature = None
    if isinstance(meta.get("signature"), dict):
        try:
            signature = ModelSignature.from_dict(meta["signature"])
        except (KeyError, TypeError) as exc:
            raise ModelLoadError(f"{folder / MLCI_MODEL_FILE}: malformed signature ({exc})") from None
    kind = sniff_model_file(model_file)
    if kind in NATIVE_LOADERS:
        classes = meta.get("classes")
        names = meta.get("feature_names")
        if (classes is not None and not isinstance(classes, list)) or (
            names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names))
        ):
            raise ModelLoadError(
                f"{folder / MLCI_MODEL_FILE}: classes and feature_names must be lists",
                hint="save the model again with mlci_lib.save_model",
            )
        native = load_native(kind, model_file, classes=classes, feature_names=names)
        return native_loaded(native, folder, "mlci", model_digest(folder), signature, meta)
    if kind != "skops":
        raise UnsafeModelError(
            f"model {model_file} is not a skops or native model file and was not loaded", hint=PICKLE_HINT
        )
    estimator = load_skops_model(model_file, allowed)
    return skops_loaded(estimator, folder, "mlci", model_digest(folder), signature, meta)


def trusted_types_from(values: Sequence[str] | None) -> tuple[str, ...]:
    """Normalise user-given trusted type names (dotted paths), refusing anything else."""
    out = []
    for value in values or ():
        name = value.strip()
        if not name:
            continue
        if not all(part.isidentifier() for part in name.split(".")) or "." not in name:
            raise InputError(
                f"trusted type {value!r} is not a dotted Python name",
                hint="write it like sklearn.tree._tree.Tree",
            )
        out.append(name)
    return tuple(out)
