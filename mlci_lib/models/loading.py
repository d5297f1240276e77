"""Loading models under mlci's safety rules, by content rather than by extension.

Loading a pickle (``pickle``, ``joblib``, ``cloudpickle``, MLflow's pickle formats) runs whatever
code the file contains, so mlci refuses those unless the caller opts in with ``allow_pickle``.

Formats recognised:

- an mlci model folder: ``mlci-model.json`` beside ``model.skops`` (what :func:`save_model` writes);
- an MLflow model folder (``MLmodel``), sklearn flavour in skops format (pickle formats only with
  ``allow_pickle``);
- a bare ``.skops`` file;
- a pickle or joblib file (only with ``allow_pickle``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError, ModelLoadError, UnsafeModelError
from mlci_lib.models.digest import model_digest
from mlci_lib.models.loaded import LoadedModel
from mlci_lib.models.signature import ColumnSpec, ModelSignature
from mlci_lib.models.skops_io import DEFAULT_TRUSTED_TYPES, load_skops

MLCI_MODEL_FILE = "mlci-model.json"
SKOPS_FILE = "model.skops"

_PICKLE_HINT = (
    "pickle files run arbitrary code when loaded: save the model with skops "
    "(mlci_lib.save_model or skops.io.dump), or pass --allow-pickle if you trust this file"
)


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
    allowed = set(DEFAULT_TRUSTED_TYPES) | set(trusted_types)
    if source.is_dir():
        if (source / MLCI_MODEL_FILE).is_file():
            return _load_mlci_folder(source, allowed)
        if (source / "MLmodel").is_file():
            return _load_mlflow_folder(source, allowed, allow_pickle)
        raise ModelLoadError(
            f"model folder {source} holds neither {MLCI_MODEL_FILE} nor MLmodel",
            hint="point at a folder written by mlci_lib.save_model or mlflow, or at a .skops file",
        )
    kind = _sniff_model_file(source)
    if kind == "onnx":
        from mlci_lib.models.onnx_format import load_onnx

        return load_onnx(source)
    if kind == "skops":
        estimator = load_skops(source, allowed)
        return LoadedModel(estimator, source, "skops", model_digest(source), None, {})
    if kind == "pickle":
        if not allow_pickle:
            raise UnsafeModelError(f"model {source} is a pickle file and was not loaded", hint=_PICKLE_HINT)
        return LoadedModel(_load_pickle(source), source, "pickle", model_digest(source), None, {})
    raise ModelLoadError(
        f"model {source} is not a model file mlci knows (skops, pickle, or a model folder)",
        hint="save it with mlci_lib.save_model",
    )


def _sniff_model_file(file: Path) -> str:
    if file.stat().st_size == 0:
        raise ModelLoadError(f"model {file} is empty (0 bytes)", hint="save the model again")
    with open(file, "rb") as handle:
        head = handle.read(4)
    if head.startswith(b"PK"):
        return "skops"
    from mlci_lib.models.onnx_format import looks_like_onnx

    if looks_like_onnx(head) or file.suffix.lower() == ".onnx":
        return "onnx"  # parsing decides: load_onnx refuses what is not a valid ONNX model
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


def _load_pickle(file: Path) -> Any:
    import joblib

    try:
        return joblib.load(file)
    except Exception as exc:
        raise ModelLoadError(f"model {file} could not be unpickled: {type(exc).__name__}: {exc}") from None


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
    if _sniff_model_file(model_file) != "skops":
        raise UnsafeModelError(
            f"model {model_file} is not a skops file and was not loaded", hint=_PICKLE_HINT
        )
    estimator = load_skops(model_file, allowed)
    signature = None
    if isinstance(meta.get("signature"), dict):
        try:
            signature = ModelSignature.from_dict(meta["signature"])
        except (KeyError, TypeError) as exc:
            raise ModelLoadError(f"{folder / MLCI_MODEL_FILE}: malformed signature ({exc})") from None
    return LoadedModel(estimator, folder, "mlci", model_digest(folder), signature, meta)


def _load_mlflow_folder(folder: Path, allowed: set[str], allow_pickle: bool) -> LoadedModel:
    from mlci_lib.errors import ConfigError
    from mlci_lib.yamlfile import load_yaml_text

    try:
        # mlci's YAML loader: an MLmodel from a model folder is input too (duplicate keys, alias bombs).
        text = (folder / "MLmodel").read_text(encoding="utf-8")
        mlmodel = load_yaml_text(text, source=str(folder / "MLmodel"), what="MLmodel")
    except (OSError, UnicodeDecodeError, ConfigError) as exc:
        raise ModelLoadError(f"{folder / 'MLmodel'} is not valid YAML: {exc}") from None
    flavors = (mlmodel or {}).get("flavors") or {}
    signature = _mlflow_signature(mlmodel or {})
    sklearn_flavor = flavors.get("sklearn")
    if isinstance(sklearn_flavor, dict):
        fmt = sklearn_flavor.get("serialization_format", "cloudpickle")
        model_file = folder / str(sklearn_flavor.get("pickled_model", "model.pkl"))
        if model_file.resolve().parent != folder.resolve() or not model_file.is_file():
            raise ModelLoadError(f"MLflow model {folder}: {model_file.name} is missing")
        if fmt == "skops":
            # MLmodel's own skops_trusted_types list is part of the file: it grants nothing here.
            estimator = load_skops(model_file, allowed)
            return LoadedModel(estimator, folder, "mlflow-skops", model_digest(model_file), signature, {})
        if not allow_pickle:
            raise UnsafeModelError(
                f"MLflow model {folder} is saved in the {fmt} format and was not loaded",
                hint="log it with serialization_format='skops', or pass --allow-pickle if you trust it",
            )
        return LoadedModel(
            _load_pickle(model_file), folder, "mlflow-pickle", model_digest(model_file), signature, {}
        )
    onnx_flavor = flavors.get("onnx")
    if isinstance(onnx_flavor, dict):
        from mlci_lib.models.onnx_format import load_onnx

        onnx_file = folder / str(onnx_flavor.get("data", "model.onnx"))
        if onnx_file.resolve().parent != folder.resolve() or not onnx_file.is_file():
            raise ModelLoadError(f"MLflow model {folder}: {onnx_file.name} is missing")
        return load_onnx(onnx_file, signature=signature, source=folder)
    if not allow_pickle:
        raise UnsafeModelError(
            f"MLflow model {folder} has no sklearn flavour; loading its python_function runs pickled code",
            hint="pass --allow-pickle if you trust it",
        )
    import mlflow.pyfunc

    return LoadedModel(
        mlflow.pyfunc.load_model(str(folder)),
        folder,
        "mlflow-pickle",
        model_digest(folder),
        signature,
        {},
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
