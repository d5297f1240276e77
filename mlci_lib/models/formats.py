"""The kinds of model file mlci reads, and a :class:`LoadedModel` of each.

Sniffing a file's kind by its first bytes, the loaders of the native framework formats, and the
constructors that fill a :class:`LoadedModel` (framework, requirements) for each kind. Shared by
:mod:`~mlci_lib.models.loading` (files and mlci folders) and
:mod:`~mlci_lib.models.mlflow_folder` (MLflow folders), which import it and never each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from mlci_lib.errors import ModelLoadError
from mlci_lib.models.frameworks import (
    FRAMEWORK_TRUSTED_TYPES,
    FRAMEWORKS,
    framework_objects,
    frameworks_in,
    import_framework,
)
from mlci_lib.models.loaded import LoadedModel
from mlci_lib.models.native_adapter import NativeModel
from mlci_lib.models.signature import ModelSignature
from mlci_lib.models.skops_io import DEFAULT_TRUSTED_TYPES, load_skops

PICKLE_HINT = (
    "pickle files run arbitrary code when loaded: save the model with skops "
    "(mlci_lib.save_model or skops.io.dump), or pass --allow-pickle if you trust this file"
)


def allowed_types(trusted_types: Iterable[str] = ()) -> set[str]:
    """The types a skops file may hold: mlci's defaults, the frameworks' wrappers, the user's."""
    return set(DEFAULT_TRUSTED_TYPES) | set(FRAMEWORK_TRUSTED_TYPES) | set(trusted_types)


def sniff_model_file(file: Path) -> str:
    """What a model file holds, by its first bytes: skops, pickle, xgboost, lightgbm, catboost, unknown."""
    if file.stat().st_size == 0:
        raise ModelLoadError(f"model {file} is empty (0 bytes)", hint="save the model again")
    with open(file, "rb") as handle:
        head = handle.read(64)
    from mlci_lib.models.catboost_format import looks_like_catboost
    from mlci_lib.models.lightgbm_format import looks_like_lightgbm
    from mlci_lib.models.xgboost_format import looks_like_xgboost

    if head.startswith(b"PK"):
        return "skops"
    from mlci_lib.models.onnx_format import looks_like_onnx

    if looks_like_onnx(head) or file.suffix.lower() == ".onnx":
        return "onnx"  # parsing decides: load_onnx refuses what is not a valid ONNX model
    if looks_like_xgboost(head):
        return "xgboost"
    if looks_like_lightgbm(head):
        return "lightgbm"
    if looks_like_catboost(head):
        return "catboost"
    # Protocol 2+ pickles start with PROTO (0x80); joblib's compressed files with zlib/gzip/xz/lz4
    # magic numbers, all of which are pickles inside.
    if (
        head[:1] == b"\x80"
        or head[:2] in (b"\x78\x01", b"\x78\x9c", b"\x78\xda", b"\x1f\x8b")
        or head[:4] in (b"\xfd7zX", b"\x04\x22\x4d\x18")
        or head[:2] == b"ZF"
    ):
        return "pickle"
    return "unknown"


def _xgboost_loader() -> Callable[..., NativeModel]:
    from mlci_lib.models.xgboost_format import load_xgboost

    return load_xgboost


def _lightgbm_loader() -> Callable[..., NativeModel]:
    from mlci_lib.models.lightgbm_format import load_lightgbm

    return load_lightgbm


def _catboost_loader() -> Callable[..., NativeModel]:
    from mlci_lib.models.catboost_format import load_catboost

    return load_catboost


#: Native model kinds and their loaders (imported on use: each format module imports its
#: framework only when it loads a model).
NATIVE_LOADERS: dict[str, Callable[[], Callable[..., NativeModel]]] = {
    "xgboost": _xgboost_loader,
    "lightgbm": _lightgbm_loader,
    "catboost": _catboost_loader,
}


def load_native(
    kind: str, file: Path, *, classes: Sequence[Any] | None = None, feature_names: Sequence[str] | None = None
) -> NativeModel:
    return NATIVE_LOADERS[kind]()(file, classes=classes, feature_names=feature_names)


def native_loaded(
    native: NativeModel,
    source: Path,
    fmt: str,
    digest: str,
    signature: ModelSignature | None,
    metadata: dict[str, Any],
) -> LoadedModel:
    return LoadedModel(
        native, source, fmt, digest, signature, metadata, framework=native.framework,
        requirements=(FRAMEWORKS[native.framework][1],),
    )  # fmt: skip


def pickle_loaded(
    estimator: Any, source: Path, fmt: str, digest: str, signature: ModelSignature | None
) -> LoadedModel:
    found = frameworks_in(estimator)
    return LoadedModel(
        estimator, source, fmt, digest, signature, {}, framework="pickle",
        requirements=tuple(FRAMEWORKS[f][1] for f in found),
    )  # fmt: skip


def load_skops_model(file: Path, allowed: set[str]) -> Any:
    """Load a skops file, with the framework checks for the wrappers a pipeline may hold.

    A framework the file needs is imported (or named for installation) before skops runs; every
    LightGBM booster's text is checked before skops hands it to LightGBM, every XGBoost booster's
    trees right after loading, before anything predicts.
    """
    import skops.io as sio

    try:
        needed = {t.split(".", 1)[0] for t in sio.get_untrusted_types(file=file)}
    except Exception:  # skops' own loading below reports a damaged file with its hint
        needed = set()
    for framework in sorted(needed & set(FRAMEWORKS)):
        import_framework(framework, file)
    if "lightgbm" in needed:
        from mlci_lib.models.lightgbm_format import check_skops_boosters

        check_skops_boosters(file)
    estimator = load_skops(file, allowed)
    for framework, obj in framework_objects(estimator):
        if framework == "xgboost":
            from mlci_lib.models.xgboost_format import check_booster

            booster = obj.get_booster() if hasattr(obj, "get_booster") else obj
            check_booster(booster, f"model {file}: {type(obj).__name__}")
    return estimator


def skops_loaded(
    estimator: Any,
    source: Path,
    fmt: str,
    digest: str,
    signature: ModelSignature | None,
    metadata: dict[str, Any],
) -> LoadedModel:
    found = frameworks_in(estimator)
    return LoadedModel(
        estimator, source, fmt, digest, signature, metadata,
        framework=found[0] if len(found) == 1 else "sklearn",
        requirements=tuple(FRAMEWORKS[f][1] for f in found),
    )  # fmt: skip


def load_pickle(file: Path) -> Any:
    import joblib

    try:
        return joblib.load(file)
    except Exception as exc:
        raise ModelLoadError(f"model {file} could not be unpickled: {type(exc).__name__}: {exc}") from None
