"""scikit-learn's prediction interface over a model loaded from a framework's native file.

Serving, the registry and the evaluation code use a model through ``predict``,
``predict_proba``, ``classes_``, ``n_features_in_`` and ``feature_names_in_``. A native model
file knows its classes only as 0..K-1 (LightGBM and XGBoost) and sometimes not its feature
names, so the real labels and names recorded beside it (``mlci-model.json``, or an MLflow
model's metadata) are applied here. Each format module subclasses :class:`NativeModel` with
the two calls that differ between frameworks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


class NativeModel:
    """A framework model (``native``) seen through scikit-learn's prediction interface."""

    #: "xgboost", "lightgbm" or "catboost"
    framework = ""
    # Declared, not set: a regressor has no classes_, and hasattr() must say so.
    classes_: np.ndarray
    feature_names_in_: np.ndarray

    def __init__(
        self,
        native: Any,
        *,
        task: str,
        n_features: int,
        feature_names: Sequence[str] | None = None,
        classes: Sequence[Any] | None = None,
        categories: dict[str, list[Any] | None] | None = None,
    ) -> None:
        import numpy as np

        self.native = native
        #: Categorical input columns -> their categories (None: the framework maps them itself).
        self.categories = dict(categories or {})
        self.task = task
        self.n_features_in_ = int(n_features)
        if feature_names is not None:
            self.feature_names_in_ = np.asarray(list(feature_names), dtype=object)
        if task == "classification":
            self.classes_ = np.asarray(list(classes if classes is not None else ()))
            self._estimator_type = "classifier"
        else:
            self._estimator_type = "regressor"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.native).__name__}, task={self.task})"

    def __getattr__(self, name: str) -> Any:
        # predict_proba exists only for classifiers, so hasattr() tells the two apart as it does
        # for scikit-learn estimators.
        # Read through __dict__: during copy or unpickling, task may not be set yet.
        if name == "predict_proba" and self.__dict__.get("task") == "classification":
            return self._predict_proba
        raise AttributeError(name)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"framework": self.framework, "task": self.task}

    def predict(self, frame: Any) -> np.ndarray:
        frame = self._framework_input(frame)
        try:
            if self.task != "classification":
                values: np.ndarray = self._values(frame)
                return values
            labels: np.ndarray = self.classes_[self._class_indices(frame)]
            return labels
        except self._errors() as exc:
            raise ValueError(f"{self.framework}: {_first_line(exc)}") from exc

    def _predict_proba(self, frame: Any) -> np.ndarray:
        frame = self._framework_input(frame)
        try:
            return self._probabilities(frame)
        except self._errors() as exc:
            raise ValueError(f"{self.framework}: {_first_line(exc)}") from exc

    def _framework_input(self, frame: Any) -> Any:
        """``frame`` with the model's categorical columns as pandas categories.

        Requests and CSV files give categories as text; XGBoost and LightGBM accept only the
        ``category`` dtype for a categorical feature. LightGBM's codes are positions in the
        categories it was trained with, so those are used; a value outside them is missing, as
        LightGBM itself treats an unseen category.
        """
        import pandas as pd

        if not self.categories or not isinstance(frame, pd.DataFrame):
            return frame
        changed = {}
        for name, categories in self.categories.items():
            if name in frame.columns and not isinstance(frame[name].dtype, pd.CategoricalDtype):
                changed[name] = pd.Categorical(frame[name], categories=categories)
        return frame.assign(**changed) if changed else frame

    def _errors(self) -> tuple[type[BaseException], ...]:
        """The framework's own error types for rows it refuses (reported as ValueError, like
        scikit-learn's, so serving answers 422 and not 500)."""
        return ()

    def _class_indices(self, frame: Any) -> np.ndarray:
        """The index into ``classes_`` the framework predicts for each row."""
        indices: np.ndarray = self._probabilities(frame).argmax(axis=1)
        return indices

    def _probabilities(self, frame: Any) -> np.ndarray:
        raise NotImplementedError

    def _values(self, frame: Any) -> np.ndarray:
        raise NotImplementedError


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def check_classes(classes: Sequence[Any] | None, n_classes: int, where: str) -> list[Any] | None:
    """The recorded labels, when they fit a model of ``n_classes`` classes."""
    from mlci_lib.errors import ModelLoadError

    if classes is None:
        return None
    labels = list(classes)
    if len(labels) != n_classes:
        raise ModelLoadError(
            f"{where} records {len(labels)} class labels, but the model predicts {n_classes} classes",
            hint="save the model again with mlci_lib.save_model",
        )
    return labels
