"""The training reference the monitoring compares production with, computed once.

Each numeric input's mean and standard deviation on the reference data, and the model's
predictions on it (the share of each predicted class, or the mean and standard deviation of a
regressor's predictions). ``mlci image build --reference DATA`` computes it and bakes it into the
image (``bundle/reference.json``, named by ``info.json``), where ``mlci serve`` exports it on
``/metrics`` as ``mlci_reference_*`` gauges; ``mlci monitor render --reference`` takes the same
file (or the data, and computes it the same way) and bakes its figures into the alert rules. The
rules also check that the server serves the reference they were rendered from (its digest).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError
from mlci_lib.serving.metrics import monitored_features

REFERENCE_FILE = "reference.json"
SCHEMA = "mlci.monitor-reference"
SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Reference:
    """What the training reference looks like, as the alerts compare it."""

    features: dict[str, dict[str, float]]  # name -> {mean, std, rows}
    task: str
    class_shares: dict[str, float]  # classifiers: share of each predicted class on the reference
    prediction: dict[str, float]  # regressors: mean and std of the predictions
    rows: int
    source: str
    model_digest: str

    @property
    def digest(self) -> str:
        """The figures' own digest (not the source's name): what the served and the rendered share."""
        figures = {
            "features": self.features,
            "task": self.task,
            "class_shares": self.class_shares,
            "prediction": self.prediction,
            "rows": self.rows,
            "model_digest": self.model_digest,
        }
        text = json.dumps(figures, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "digest": self.digest,
            **dataclasses.asdict(self),
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> Reference:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise InputError(f"{source} is not an mlci reference (schema {SCHEMA})")
        try:
            ref = cls(
                features={
                    str(k): {"mean": float(v["mean"]), "std": float(v["std"]), "rows": int(v["rows"])}
                    for k, v in dict(data["features"]).items()
                },
                task=str(data["task"]),
                class_shares={str(k): float(v) for k, v in dict(data["class_shares"]).items()},
                prediction={str(k): float(v) for k, v in dict(data["prediction"]).items()},
                rows=int(data["rows"]),
                source=str(data["source"]),
                model_digest=str(data["model_digest"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"reference {source} is incomplete or malformed: {exc}") from None
        if data.get("digest") not in (None, ref.digest):
            raise InputError(
                f"reference {source}: its figures do not match its digest (edited by hand?)",
                hint="compute it again with mlci image build --reference or mlci monitor render",
            )
        return ref

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def compute_reference(model: Any, data: Any, *, source: str) -> Reference:
    """Feature means and standard deviations, and the model's predictions, on the reference data."""
    import numpy as np

    names = monitored_features(model)
    features: dict[str, dict[str, float]] = {}
    for name in names:
        if name not in data.columns:
            raise InputError(
                f"reference {source} has no column {name!r}, an input of the model",
                hint="pass the model's training data as --reference",
            )
        values = np.asarray(data[name], dtype="float64")
        values = values[~np.isnan(values)]
        if values.size:
            features[name] = {
                "mean": float(values.mean()),
                "std": float(values.std()),
                "rows": int(values.size),
            }
    try:
        ready = model.prepare(data, source="reference")
        predictions = np.asarray(model.estimator.predict(ready))
    except InputError as exc:
        raise InputError(
            f"reference {source}: {exc.message}", hint="pass the model's training data"
        ) from None
    shares: dict[str, float] = {}
    prediction: dict[str, float] = {}
    if model.is_classifier:
        labels, counts = np.unique(predictions, return_counts=True)
        total = float(counts.sum())
        shares = {str(c): 0.0 for c in model.classes or ()}
        for label, count in zip(labels, counts, strict=True):
            shares[str(label.item() if hasattr(label, "item") else label)] = float(count) / total
    else:
        values = predictions.astype("float64")
        prediction = {"mean": float(values.mean()), "std": float(values.std())}
    return Reference(
        features=features,
        task="classification" if model.is_classifier else "regression",
        class_shares=shares,
        prediction=prediction,
        rows=len(data),
        source=source,
        model_digest=str(model.digest),
    )


def _reference_file(path: Path) -> Any | None:
    """The parsed file when ``path`` is an mlci reference document, else None (it is data)."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


def read_reference(path: str | os.PathLike[str]) -> Reference:
    """A reference document written by ``mlci image build`` or ``mlci monitor render``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"reference {path} cannot be read: {exc}") from None
    return Reference.from_dict(data, source=str(path))


def load_reference(model: Any, source: str | os.PathLike[str], *, option: str = "--reference") -> Reference:
    """The reference of ``model`` from training data, or from a reference document of the same model."""
    document = _reference_file(Path(source))
    if document is not None:
        ref = Reference.from_dict(document, source=str(source))
        if ref.model_digest != str(model.digest):
            raise InputError(
                f"reference {source} (option {option}) was computed for model digest {ref.model_digest}, "
                f"not for this model ({model.digest})",
                hint="pass the reference baked into this model's image, or its training data",
            )
        return ref
    from mlci_lib.tables import read_table

    return compute_reference(model, read_table(source, what="reference data"), source=str(source))
