"""MLflow model folders (``MLmodel``): the flavours mlci loads without running code from the folder.

- ``sklearn`` saved in the skops format (``model.skops``);
- ``xgboost``: ``model.ubj`` or ``model.json`` (``mlflow.xgboost.save_model``'s ``model_format``);
- ``lightgbm``: ``model.lgb`` for a Booster (LightGBM's text format), ``model.skops`` for a
  scikit-learn wrapper saved with ``serialization_format="skops"``;
- ``catboost``: ``model.cb`` in CatBoost's ``cbm`` format;
- ``onnx``: through :mod:`mlci_lib.models.onnx_format`.

Pickle files (the sklearn and lightgbm flavours' ``cloudpickle``/``pickle`` formats, XGBoost's
legacy binary format is refused as unreadable) and the generic ``python_function`` flavour load
only with ``allow_pickle``. What MLmodel says (file names, trusted types) is taken as a claim
about the folder: the model file must be inside it, and its content decides how it is read.
MLmodel's ``skops_trusted_types`` grants nothing.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any

from mlci_lib.errors import ModelLoadError, UnsafeModelError
from mlci_lib.models.digest import model_digest
from mlci_lib.models.formats import (
    load_native,
    load_pickle,
    load_skops_model,
    native_loaded,
    pickle_loaded,
    skops_loaded,
    sniff_model_file,
)
from mlci_lib.models.loaded import LoadedModel
from mlci_lib.models.signature import ColumnSpec, ModelSignature

#: Keys of MLmodel's ``metadata`` where mlci records what a native file does not know.
META_CLASSES = "mlci_classes"
META_FEATURE_NAMES = "mlci_feature_names"

#: Flavours in the order they are preferred when a folder has several.
_NATIVE_FLAVOURS = {"xgboost": "model.ubj", "lightgbm": "model.lgb", "catboost": "model.cb"}


def load_mlflow_folder(folder: Path, allowed: set[str], allow_pickle: bool) -> LoadedModel:
    from mlci_lib.errors import ConfigError
    from mlci_lib.yamlfile import load_yaml_text

    try:
        # mlci's YAML loader: an MLmodel from a model folder is input too (duplicate keys, alias bombs).
        text = (folder / "MLmodel").read_text(encoding="utf-8")
        mlmodel = load_yaml_text(text, source=str(folder / "MLmodel"), what="MLmodel") or {}
    except (OSError, UnicodeDecodeError, ConfigError) as exc:
        raise ModelLoadError(f"{folder / 'MLmodel'} is not valid YAML: {exc}") from None
    if not isinstance(mlmodel, dict):
        raise ModelLoadError(f"{folder / 'MLmodel'} must hold a YAML mapping")
    flavors = mlmodel.get("flavors") or {}
    signature = _mlflow_signature(mlmodel)
    found = mlmodel.get("metadata")
    metadata: dict[str, Any] = found if isinstance(found, dict) else {}
    sklearn_flavor = flavors.get("sklearn")
    if isinstance(sklearn_flavor, dict):
        fmt = str(sklearn_flavor.get("serialization_format", "cloudpickle"))
        model_file = _model_file(folder, sklearn_flavor.get("pickled_model"), "model.pkl")
        return _skops_or_pickle(folder, model_file, fmt, signature, allowed, allow_pickle, "sklearn")
    for flavour, default in _NATIVE_FLAVOURS.items():
        conf = flavors.get(flavour)
        if isinstance(conf, dict):
            model_file = _model_file(folder, conf.get("data"), default)
            if flavour == "lightgbm" and model_file.suffix != ".lgb":
                fmt = str(conf.get("serialization_format", "cloudpickle"))
                return _skops_or_pickle(folder, model_file, fmt, signature, allowed, allow_pickle, flavour)
            return _native(folder, model_file, flavour, signature, metadata)
    onnx_flavor = flavors.get("onnx")
    if isinstance(onnx_flavor, dict):
        return _onnx(folder, _model_file(folder, onnx_flavor.get("data"), "model.onnx"), signature)
    if not allow_pickle:
        raise UnsafeModelError(
            f"MLflow model {folder} has no flavour mlci loads safely (sklearn in skops, xgboost, lightgbm, "
            f"catboost, onnx; it has {', '.join(sorted(map(str, flavors))) or 'none'}); loading its "
            "python_function runs pickled code",
            hint="pass --allow-pickle if you trust it",
        )
    import mlflow.pyfunc

    return pickle_loaded(mlflow.pyfunc.load_model(str(folder)), folder, "mlflow-pickle", model_digest(folder),
                         signature)  # fmt: skip


def _model_file(folder: Path, named: Any, default: str) -> Path:
    model_file = folder / str(named or default)
    if model_file.resolve().parent != folder.resolve() or not model_file.is_file():
        raise ModelLoadError(
            f"MLflow model {folder}: {model_file.name} is missing", hint="save or download the model again"
        )
    return model_file


def _skops_or_pickle(
    folder: Path,
    model_file: Path,
    fmt: str,
    signature: ModelSignature | None,
    allowed: set[str],
    allow_pickle: bool,
    flavour: str,
) -> LoadedModel:
    if fmt == "skops":
        # MLmodel's own skops_trusted_types list is part of the folder: it grants nothing here.
        estimator = load_skops_model(model_file, allowed)
        return skops_loaded(estimator, folder, "mlflow-skops", model_digest(model_file), signature, {})
    if not allow_pickle:
        raise UnsafeModelError(
            f"MLflow model {folder} is saved in the {fmt} format and was not loaded",
            hint=f"log it with mlflow.{flavour}.log_model(..., serialization_format='skops'), "
            "or pass --allow-pickle if you trust it",
        )
    estimator = load_pickle(model_file)
    return pickle_loaded(estimator, folder, "mlflow-pickle", model_digest(model_file), signature)


def _native(
    folder: Path, model_file: Path, flavour: str, signature: ModelSignature | None, metadata: dict[str, Any]
) -> LoadedModel:
    kind = sniff_model_file(model_file)
    if kind != flavour:
        raise ModelLoadError(
            f"MLflow model {folder}: {model_file.name} is not in a {flavour} format mlci reads",
            hint={
                "xgboost": "log it with mlflow.xgboost.log_model(..., model_format='json') or 'ubj'",
                "catboost": "log it with mlflow.catboost.log_model() in the default cbm format",
            }.get(flavour, "log the model again with MLflow"),
        )
    classes = metadata.get(META_CLASSES)
    names = metadata.get(META_FEATURE_NAMES)
    native = load_native(
        kind,
        model_file,
        classes=classes if isinstance(classes, list) else None,
        feature_names=[str(n) for n in names] if isinstance(names, list) else None,
    )
    return native_loaded(native, folder, f"mlflow-{flavour}", model_digest(model_file), signature, {})


def _onnx(folder: Path, model_file: Path, signature: ModelSignature | None) -> LoadedModel:
    # ONNX models are loaded by their own module (onnxruntime); an mlci without it says so.
    try:
        onnx_format = importlib.import_module("mlci_lib.models.onnx_format")
    except ModuleNotFoundError:
        raise ModelLoadError(
            f"MLflow model {folder} is an ONNX model, which this mlci cannot load",
            hint="upgrade mlci to a version with ONNX support",
        ) from None
    loaded: LoadedModel = onnx_format.load_onnx(model_file)
    return dataclasses.replace(
        loaded, source=folder, format="mlflow-onnx", signature=signature or loaded.signature
    )


_MLFLOW_KINDS = {
    "long": "integer",
    "integer": "integer",
    "double": "float",
    "float": "float",
    "boolean": "boolean",
    "string": "string",
    "datetime": "datetime",
}


def _mlflow_signature(mlmodel: dict[str, Any]) -> ModelSignature | None:
    recorded = (mlmodel.get("metadata") or {}).get("mlci_signature")
    if isinstance(recorded, dict):  # written by mlci model push: the fitted dtypes too
        try:
            return ModelSignature.from_dict(recorded)
        except (KeyError, TypeError):
            pass  # damaged: MLflow's own signature below still names the columns
    raw = (mlmodel.get("signature") or {}).get("inputs")
    if not raw:
        return None
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
        columns = tuple(
            ColumnSpec(str(s["name"]), _MLFLOW_KINDS.get(str(s["type"]), "string"))
            for s in specs
            if "name" in s
        )
    except (ValueError, TypeError, KeyError):
        return None
    return ModelSignature(columns) if columns else None
