"""The content digest of a model: what identifies one trained state in the registry and images."""

from __future__ import annotations

import os

from mlci_lib.fingerprint import fingerprint_path


def model_digest(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` identifying the model stored at ``path`` (a file or a folder)."""
    return fingerprint_path(path)
