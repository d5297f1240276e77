"""A model ready to predict, with what is known about where it came from."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from mlci_lib.errors import InputError
from mlci_lib.models.plain_table import PlainTable, coerce_plain
from mlci_lib.models.signature import ModelSignature

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model ready to predict, with what is known about where it came from."""

    estimator: Any
    source: Path
    #: "mlci", "skops", "pickle", "xgboost", "lightgbm", "catboost" (a bare native file),
    #: "mlflow-skops", "mlflow-xgboost", "mlflow-lightgbm", "mlflow-catboost", "mlflow-pickle"
    format: str
    digest: str
    signature: ModelSignature | None
    metadata: dict[str, Any]
    #: The library that predicts: "sklearn", "xgboost", "lightgbm", "catboost", "onnx", or
    #: "pickle" for anything loaded with allow_pickle. A scikit-learn pipeline whose model is a
    #: framework's wrapper (XGBClassifier in a Pipeline) has that framework here; with several
    #: frameworks inside, "sklearn" and all of them in ``requirements``.
    framework: str = "sklearn"
    #: Distributions the serving runtime needs for this model beyond its own (e.g. ("xgboost",)),
    #: unpinned: the image build pins them to the versions installed where it runs.
    requirements: tuple[str, ...] = ()
    #: Types beyond the default allow-list that loading this model needed (the user's
    #: trusted-types); the serving image is given the same list.
    trusted_types: tuple[str, ...] = ()

    @property
    def is_classifier(self) -> bool:
        return hasattr(self.estimator, "classes_") and hasattr(self.estimator, "predict_proba")

    @property
    def classes(self) -> list[Any] | None:
        classes = getattr(self.estimator, "classes_", None)
        return None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]

    @overload
    def prepare(self, frame: PlainTable, *, source: str = ...) -> PlainTable: ...
    @overload
    def prepare(self, frame: pd.DataFrame, *, source: str = ...) -> pd.DataFrame: ...
    def prepare(self, frame: Any, *, source: str = "input") -> Any:
        """Validate and order ``frame``'s columns as the model expects them.

        A PlainTable (the ONNX runtime's table, without pandas) is coerced by the signature's
        rules into one (see :mod:`mlci_lib.models.plain_table`).
        """
        if isinstance(frame, PlainTable):
            return frame if self.signature is None else coerce_plain(self.signature, frame, source=source)
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
