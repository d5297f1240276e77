"""mlci: CI/CD for machine learning, as a library and the ``mlci`` command.

Every capability of the CLI is importable from here. Names resolve lazily so that
``import mlci_lib`` stays cheap and heavy libraries load only when a capability is used::

    from mlci_lib import run_gate
    verdict = run_gate(candidate="preds.parquet", baseline="champion.parquet", rules="gate.yaml")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> module that defines it. Grouped by stage.
_EXPORTS: dict[str, str] = {
    # foundation
    "MlciError": "mlci_lib.errors",
    "InputError": "mlci_lib.errors",
    "UsageError": "mlci_lib.errors",
    "ConfigError": "mlci_lib.errors",
    "ModelLoadError": "mlci_lib.errors",
    "UnsafeModelError": "mlci_lib.errors",
    "ServiceError": "mlci_lib.errors",
    "CheckFailed": "mlci_lib.errors",
    "CiRunner": "mlci_lib.runner",
    "Annotation": "mlci_lib.runner",
    "read_table": "mlci_lib.tables",
    "fingerprint_path": "mlci_lib.fingerprint",
    "git_context": "mlci_lib.gitcontext",
    "load_model": "mlci_lib.models",
    "save_model": "mlci_lib.models",
    # gate
    "run_gate": "mlci_lib.gate",
    "GateVerdict": "mlci_lib.gate",
    "GateRules": "mlci_lib.gate",
    "load_gate_rules": "mlci_lib.gate",
    "compute_metrics": "mlci_lib.gate",
    # data and drift
    "check_data": "mlci_lib.data",
    "profile_data": "mlci_lib.data",
    "write_profile": "mlci_lib.data",
    "load_suite": "mlci_lib.data",
    "DataCheckResult": "mlci_lib.data",
    "detect_drift": "mlci_lib.drift",
    "DriftVerdict": "mlci_lib.drift",
    "DriftConfig": "mlci_lib.drift",
    # registry
    "push_model": "mlci_lib.registry",
    "promote_model": "mlci_lib.registry",
    "rollback_model": "mlci_lib.registry",
    "baseline_predictions": "mlci_lib.registry",
    "tag_model_version": "mlci_lib.registry",
    "PushResult": "mlci_lib.registry",
    "PromotionResult": "mlci_lib.registry",
    "BaselineResult": "mlci_lib.registry",
    "TagResult": "mlci_lib.registry",
    # image and serving
    "build_image": "mlci_lib.image",
    "smoke_test_image": "mlci_lib.image",
    "push_image": "mlci_lib.image",
    "release_image": "mlci_lib.image",
    "ImageBuildResult": "mlci_lib.image",
    "SmokeResult": "mlci_lib.image",
    "PushImageResult": "mlci_lib.image",
    "ImageReleaseResult": "mlci_lib.image",
    "serve_model": "mlci_lib.serving",
    "ModelServer": "mlci_lib.serving",
    # deploy
    "render_deployment": "mlci_lib.deploy",
    "DeployRenderResult": "mlci_lib.deploy",
    # report
    "render_report": "mlci_lib.report",
    "write_report": "mlci_lib.report",
    "Report": "mlci_lib.report",
    "post_pr_comment": "mlci_lib.report",
    "CommentResult": "mlci_lib.report",
    "open_or_update_issue": "mlci_lib.report",
    "IssueResult": "mlci_lib.report",
    "load_verdict": "mlci_lib.report",
    # pipeline, init, demo
    "run_pipeline": "mlci_lib.pipeline",
    "init_project": "mlci_lib.scaffold",
    "run_demo": "mlci_lib.demo",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mlci_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
