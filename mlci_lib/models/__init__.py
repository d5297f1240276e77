"""Models under mlci's safety rules: loading by content, saving, signatures and digests.

The package is split by job: :mod:`~mlci_lib.models.signature` (input columns and coercion),
:mod:`~mlci_lib.models.loaded` (a model ready to predict), :mod:`~mlci_lib.models.loading`
(detecting and loading every supported format), :mod:`~mlci_lib.models.skops_io` (scikit-learn
through skops and its allow-list), :mod:`~mlci_lib.models.saving` and
:mod:`~mlci_lib.models.digest` (the content digest that identifies a trained state).
"""

from __future__ import annotations

from mlci_lib.models.digest import model_digest
from mlci_lib.models.layout import MLCI_MODEL_FILE, SKOPS_FILE
from mlci_lib.models.loaded import LoadedModel
from mlci_lib.models.loading import load_model, trusted_types_from
from mlci_lib.models.saving import MODEL_SCHEMA_VERSION, save_model
from mlci_lib.models.signature import ColumnSpec, ModelSignature
from mlci_lib.models.skops_io import DEFAULT_TRUSTED_TYPES

__all__ = [
    "DEFAULT_TRUSTED_TYPES",
    "MLCI_MODEL_FILE",
    "MODEL_SCHEMA_VERSION",
    "SKOPS_FILE",
    "ColumnSpec",
    "LoadedModel",
    "ModelSignature",
    "load_model",
    "model_digest",
    "save_model",
    "trusted_types_from",
]
