"""Loading and saving models under mlci's safety rules.

Loading a pickle (``pickle``, ``joblib``, ``cloudpickle``, MLflow's pickle formats) runs whatever
code the file contains, so mlci refuses those unless the caller opts in with ``allow_pickle``.
scikit-learn models are saved and loaded with skops, and the types a skops file may instantiate
come from mlci's own allow-list plus what the user configured, never from the file itself.

Formats recognised, by content rather than by extension:

- an mlci model folder: ``mlci-model.json`` beside ``model.skops`` (what :func:`save_model` writes);
- an MLflow model folder (``MLmodel``), sklearn flavour in skops format (pickle formats only with
  ``allow_pickle``);
- a bare ``.skops`` file;
- a pickle or joblib file (only with ``allow_pickle``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError, ModelLoadError, UnsafeModelError
from mlci_lib.fingerprint import fingerprint_path

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MLCI_MODEL_FILE = "mlci-model.json"
SKOPS_FILE = "model.skops"
MODEL_SCHEMA_VERSION = 1

#: Types mlci trusts in skops files beyond skops' own defaults (scikit-learn estimators, numpy,
#: builtins). Each is a plain data holder inside a scikit-learn estimator, with no code of its own.
#: The two tree storages hold raw node indices that prediction follows unchecked; every model that
#: contains them is bounds-checked on load (mlci_lib.tree_checks), which is what makes them safe.
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
)

_PICKLE_HINT = (
    "pickle files run arbitrary code when loaded: save the model with skops "
    "(mlci_lib.save_model or skops.io.dump), or pass --allow-pickle if you trust this file"
)


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # "integer", "float", "boolean", "string", "datetime"


@dataclasses.dataclass(frozen=True)
class ModelSignature:
    """The input columns a model expects, with the kind of value of each."""

    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [{"name": c.name, "type": c.kind} for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSignature:
        return cls(tuple(ColumnSpec(str(c["name"]), str(c["type"])) for c in data["inputs"]))

    @classmethod
    def infer(cls, frame: pd.DataFrame) -> ModelSignature:
        return cls(tuple(ColumnSpec(str(name), _kind_of(frame[name])) for name in frame.columns))

    def coerce(self, frame: pd.DataFrame, *, source: str = "input") -> pd.DataFrame:
        """Return ``frame`` with exactly the signature's columns, each of the declared kind.

        Raises InputError naming the first missing column or the first value of a wrong type.
        """
        import pandas as pd

        missing = [c.name for c in self.columns if c.name not in frame.columns]
        if missing:
            raise InputError(
                f"{source}: missing column {missing[0]!r}",
                hint=f"the model expects columns {', '.join(self.names)}",
            )
        out = {}
        for spec in self.columns:
            series = frame[spec.name]
            if spec.kind in ("integer", "float"):
                converted = pd.to_numeric(series, errors="coerce")
                bad = converted.isna() & series.notna()
                if bad.any():
                    row = int(bad.to_numpy().nonzero()[0][0])
                    raise InputError(
                        f"{source}: column {spec.name!r} must be numeric, row {row + 1} is "
                        f"{series.iloc[row]!r}"
                    )
                if spec.kind == "integer" and not converted.isna().any():
                    if (converted != converted.round()).any():
                        raise InputError(f"{source}: column {spec.name!r} must hold whole numbers")
                    converted = converted.astype("int64")
                out[spec.name] = converted.astype("float64") if spec.kind == "float" else converted
            elif spec.kind == "boolean":
                if series.dtype != bool:
                    raise InputError(f"{source}: column {spec.name!r} must be true or false")
                out[spec.name] = series
            elif spec.kind == "string":
                non_strings = series.map(lambda v: v is not None and not isinstance(v, str))
                if non_strings.any():
                    row = int(non_strings.to_numpy().nonzero()[0][0])
                    raise InputError(
                        f"{source}: column {spec.name!r} must be text, row {row + 1} is {series.iloc[row]!r}"
                    )
                out[spec.name] = series.astype(object)
            else:
                out[spec.name] = series
        return pd.DataFrame(out, index=frame.index)


def _kind_of(series: pd.Series) -> str:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model ready to predict, with what is known about where it came from."""

    estimator: Any
    source: Path
    format: str  # "mlci", "mlflow-skops", "mlflow-pickle", "skops", "pickle"
    digest: str
    signature: ModelSignature | None
    metadata: dict[str, Any]

    @property
    def is_classifier(self) -> bool:
        return hasattr(self.estimator, "classes_") and hasattr(self.estimator, "predict_proba")

    @property
    def classes(self) -> list[Any] | None:
        classes = getattr(self.estimator, "classes_", None)
        return None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]

    def prepare(self, frame: pd.DataFrame, *, source: str = "input") -> pd.DataFrame:
        """Validate and order ``frame``'s columns as the model expects them."""
        if self.signature is not None:
            return self.signature.coerce(frame, source=source)
        names = getattr(self.estimator, "feature_names_in_", None)
        if names is not None:
            missing = [n for n in names if n not in frame.columns]
            if missing:
                raise InputError(f"{source}: missing column {missing[0]!r}")
            return frame[list(names)]
        return frame

    def predict(self, frame: pd.DataFrame, *, source: str = "input") -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions and, for classifiers, class probabilities (rows x classes)."""
        ready = self.prepare(frame, source=source)
        predictions = self.estimator.predict(ready)
        probabilities = self.estimator.predict_proba(ready) if self.is_classifier else None
        return predictions, probabilities


# -- loading ----------------------------------------------------------------------------


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
    if kind == "skops":
        estimator = _load_skops(source, allowed)
        return LoadedModel(estimator, source, "skops", fingerprint_path(source), None, {})
    if kind == "pickle":
        if not allow_pickle:
            raise UnsafeModelError(f"model {source} is a pickle file and was not loaded", hint=_PICKLE_HINT)
        return LoadedModel(_load_pickle(source), source, "pickle", fingerprint_path(source), None, {})
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


def _load_skops(file: Path, allowed: set[str]) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=file)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, EOFError, ValueError) as exc:
        raise ModelLoadError(
            f"model {file} is truncated or not a valid skops file ({exc})", hint="save the model again"
        ) from None
    refused = sorted(t for t in untrusted if t not in allowed)
    if refused:
        raise UnsafeModelError(
            f"model {file} needs types outside the allowed list: {', '.join(refused)}",
            hint="if you trust them, add them to model.trusted-types in mlci.yaml or pass --trust-type",
        )
    try:
        estimator = sio.load(file, trusted=list(untrusted))
    except Exception as exc:  # skops raises many types for damaged content; report them as one
        raise ModelLoadError(
            f"model {file} could not be loaded: {type(exc).__name__}: {exc}",
            hint="save the model again with the installed scikit-learn",
        ) from None
    from mlci_lib.tree_checks import TreeStructureError, check_tree_structures

    try:
        check_tree_structures(estimator)
    except TreeStructureError as exc:
        raise UnsafeModelError(
            f"model {file} was refused: {exc}",
            hint="the file was damaged or crafted; save the model again from its training code",
        ) from None
    return estimator


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
    estimator = _load_skops(model_file, allowed)
    signature = None
    if isinstance(meta.get("signature"), dict):
        try:
            signature = ModelSignature.from_dict(meta["signature"])
        except (KeyError, TypeError) as exc:
            raise ModelLoadError(f"{folder / MLCI_MODEL_FILE}: malformed signature ({exc})") from None
    return LoadedModel(estimator, folder, "mlci", fingerprint_path(model_file), signature, meta)


def _load_mlflow_folder(folder: Path, allowed: set[str], allow_pickle: bool) -> LoadedModel:
    import yaml

    try:
        mlmodel = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
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
            estimator = _load_skops(model_file, allowed)
            return LoadedModel(estimator, folder, "mlflow-skops", fingerprint_path(model_file), signature, {})
        if not allow_pickle:
            raise UnsafeModelError(
                f"MLflow model {folder} is saved in the {fmt} format and was not loaded",
                hint="log it with serialization_format='skops', or pass --allow-pickle if you trust it",
            )
        return LoadedModel(
            _load_pickle(model_file), folder, "mlflow-pickle", fingerprint_path(model_file), signature, {}
        )
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
        fingerprint_path(folder),
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


# -- saving -----------------------------------------------------------------------------


def save_model(
    estimator: Any,
    path: str | Path,
    *,
    sample_input: pd.DataFrame | None = None,
    name: str | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Save a fitted scikit-learn estimator as an mlci model folder (skops plus metadata).

    ``sample_input`` (a few training rows) records the input signature that serving and the
    registry validate requests against.
    """
    import sklearn
    import skops.io as sio

    from mlci_lib.files import write_json_atomic

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    model_file = folder / SKOPS_FILE
    tmp = folder / f".{SKOPS_FILE}.tmp"
    sio.dump(estimator, tmp)
    tmp.replace(model_file)
    signature = ModelSignature.infer(sample_input) if sample_input is not None else None
    classes = getattr(estimator, "classes_", None)
    meta: dict[str, Any] = {
        "schema": "mlci.model",
        "schema_version": MODEL_SCHEMA_VERSION,
        "file": SKOPS_FILE,
        "format": "skops",
        "name": name,
        "task": "classification" if classes is not None else "regression",
        "classes": None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes],
        "signature": signature.to_dict() if signature else None,
        "sklearn_version": sklearn.__version__,
        "digest": fingerprint_path(model_file),
        **(extra_metadata or {}),
    }
    write_json_atomic(folder / MLCI_MODEL_FILE, meta)
    return folder


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
