"""How batch scoring predicts a batch of prepared rows: labels, and class probabilities.

The choices are the serving runtime's own (:mod:`mlci_lib.serving.fast_path`: labels from the
probabilities where ``predict`` is their argmax, labels and probabilities from one run of an ONNX
graph), so a row scored in a batch gets what ``POST /predict`` answers for it.
"""

from __future__ import annotations

from typing import Any

from mlci_lib.models.loaded import LoadedModel


class Predictor:
    """``predictor(ready) -> (predictions, probabilities or None)`` for rows the model prepared."""

    def __init__(self, model: LoadedModel) -> None:
        from mlci_lib.serving import fast_path

        estimator = model.estimator
        self.estimator = estimator
        self.classifier = bool(model.is_classifier)
        self._argmax_predicts = self.classifier and fast_path.argmax_predicts(estimator)
        self._labels = fast_path.labels_from_probabilities
        # ONNX classifiers give labels and probabilities from one run of the graph.
        self._joint = getattr(estimator, "predict_with_probabilities", None) if self.classifier else None

    def __call__(self, ready: Any) -> tuple[Any, Any]:
        estimator = self.estimator
        if self._joint is not None:
            predictions, probabilities = self._joint(ready)
            return predictions, probabilities
        if not self.classifier:
            return estimator.predict(ready), None
        probabilities = estimator.predict_proba(ready)
        if self._argmax_predicts:
            return self._labels(estimator, ready, probabilities), probabilities
        return estimator.predict(ready), probabilities
