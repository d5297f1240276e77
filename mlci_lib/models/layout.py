"""The files of an mlci model folder (what :func:`~mlci_lib.models.save_model` writes)."""

from __future__ import annotations

#: The metadata: signature, classes, framework and version, digest.
MLCI_MODEL_FILE = "mlci-model.json"
#: The model of a scikit-learn estimator; other frameworks keep their native file name.
SKOPS_FILE = "model.skops"
