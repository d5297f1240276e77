"""Saving fitted models as mlci model folders (skops plus metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.models.digest import mlci_folder_digest
from mlci_lib.models.loading import MLCI_MODEL_FILE, SKOPS_FILE
from mlci_lib.models.signature import ModelSignature

if TYPE_CHECKING:
    import pandas as pd

MODEL_SCHEMA_VERSION = 1


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
        **(extra_metadata or {}),
    }
    meta["digest"] = mlci_folder_digest(model_file, meta)  # what load_model(folder).digest gives
    write_json_atomic(folder / MLCI_MODEL_FILE, meta)
    return folder
