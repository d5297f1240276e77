"""The whole pipeline: ``mlci.yaml`` (config and JSON Schema) and ``run_pipeline`` (``mlci run``).

Stages run in a fixed order (data-check, train, evaluate, baseline, gate, model-push, image-build,
image-smoke, image-push, deploy, promote); each is on when ``mlci.yaml`` has an entry for it. The
verdict (``mlci.pipeline-verdict``) links the git commit, the data fingerprint, every stage's own
verdict, the model version, the image digest and the deployment.
"""

from __future__ import annotations

from mlci_lib.pipeline.config import STAGES, PipelineConfig, config_schema, load_config
from mlci_lib.pipeline.run import data_fingerprint, run_pipeline
from mlci_lib.pipeline.verdict import PipelineVerdict, StageRecord

__all__ = [
    "STAGES",
    "PipelineConfig",
    "PipelineVerdict",
    "StageRecord",
    "config_schema",
    "data_fingerprint",
    "load_config",
    "run_pipeline",
]
