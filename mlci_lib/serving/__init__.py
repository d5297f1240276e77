"""The serving runtime: ``mlci serve`` and the entrypoint of the serving image."""

from __future__ import annotations

from mlci_lib.serving.metrics import ServingMetrics
from mlci_lib.serving.server import ModelServer, ModelService, ServeResult, serve_model

__all__ = ["ModelServer", "ModelService", "ServeResult", "ServingMetrics", "serve_model"]
