"""The model registry on MLflow: push, promote, roll back, tag, and predict with an alias's model."""

from __future__ import annotations

from mlci_lib.registry.baseline import BaselineResult, baseline_predictions
from mlci_lib.registry.promote import PromotionResult, promote_model, rollback_model
from mlci_lib.registry.push import PushResult, TagResult, push_model, tag_model_version

__all__ = [
    "BaselineResult",
    "PromotionResult",
    "PushResult",
    "TagResult",
    "baseline_predictions",
    "promote_model",
    "push_model",
    "rollback_model",
    "tag_model_version",
]
