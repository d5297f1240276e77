"""mlci: CI/CD for machine learning, as a library and the ``mlci`` command.

Every capability of the CLI is importable from here. Names resolve lazily so that
``import mlci_lib`` stays cheap and heavy libraries load only when a capability is used::

    from mlci_lib import run_gate
    verdict = run_gate(candidate="preds.parquet", baseline="champion.parquet", rules="gate.yaml")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    # batch scoring
    "predict_batch": "mlci_lib.predict",
    "PredictResult": "mlci_lib.predict",
    # deploy
    "render_deployment": "mlci_lib.deploy",
    "DeployRenderResult": "mlci_lib.deploy",
    "verify_deployment": "mlci_lib.deploy.verify",
    "DeployVerdict": "mlci_lib.deploy.verify",
    "analyze_canary": "mlci_lib.deploy.analyze",
    "apply_release": "mlci_lib.deploy.apply",
    "ApplyVerdict": "mlci_lib.deploy.apply",
    "publish": "mlci_lib.deploy.gitops",
    "GitopsResult": "mlci_lib.deploy.gitops",
    "CanaryVerdict": "mlci_lib.deploy.analyze",
    # monitor
    "monitor_logs": "mlci_lib.monitor.monitor",
    "MonitorVerdict": "mlci_lib.monitor.monitor",
    "render_monitoring": "mlci_lib.monitor.render",
    "MonitorRender": "mlci_lib.monitor.render",
    # schemas of the files mlci writes, and reading them back
    "from_dict": "mlci_lib.result_schemas",
    "SchemaError": "mlci_lib.result_schemas",
    # the Spark engine
    "SparkSettings": "mlci_lib.spark.session",
    "spark_session": "mlci_lib.spark.session",
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

if TYPE_CHECKING:
    # The same names for type checkers, which do not run __getattr__: without this block, every
    # name users import from mlci_lib would be Any and mypy would check nothing in their code.
    # The 'X as X' form is the explicit re-export mypy's strict mode asks for;
    # tests/test_public_api.py keeps the block equal to _EXPORTS.
    from mlci_lib.data import (
        DataCheckResult as DataCheckResult,
        check_data as check_data,
        load_suite as load_suite,
        profile_data as profile_data,
        write_profile as write_profile,
    )
    from mlci_lib.demo import (
        run_demo as run_demo,
    )
    from mlci_lib.deploy import (
        DeployRenderResult as DeployRenderResult,
        render_deployment as render_deployment,
    )
    from mlci_lib.deploy.analyze import (
        CanaryVerdict as CanaryVerdict,
        analyze_canary as analyze_canary,
    )
    from mlci_lib.deploy.apply import ApplyVerdict as ApplyVerdict, apply_release as apply_release
    from mlci_lib.deploy.gitops import GitopsResult as GitopsResult, publish as publish
    from mlci_lib.deploy.verify import (
        DeployVerdict as DeployVerdict,
        verify_deployment as verify_deployment,
    )
    from mlci_lib.drift import (
        DriftConfig as DriftConfig,
        DriftVerdict as DriftVerdict,
        detect_drift as detect_drift,
    )
    from mlci_lib.errors import (
        CheckFailed as CheckFailed,
        ConfigError as ConfigError,
        InputError as InputError,
        MlciError as MlciError,
        ModelLoadError as ModelLoadError,
        ServiceError as ServiceError,
        UnsafeModelError as UnsafeModelError,
        UsageError as UsageError,
    )
    from mlci_lib.fingerprint import (
        fingerprint_path as fingerprint_path,
    )
    from mlci_lib.gate import (
        GateRules as GateRules,
        GateVerdict as GateVerdict,
        compute_metrics as compute_metrics,
        load_gate_rules as load_gate_rules,
        run_gate as run_gate,
    )
    from mlci_lib.gitcontext import (
        git_context as git_context,
    )
    from mlci_lib.image import (
        ImageBuildResult as ImageBuildResult,
        ImageReleaseResult as ImageReleaseResult,
        PushImageResult as PushImageResult,
        SmokeResult as SmokeResult,
        build_image as build_image,
        push_image as push_image,
        release_image as release_image,
        smoke_test_image as smoke_test_image,
    )
    from mlci_lib.models import (
        load_model as load_model,
        save_model as save_model,
    )
    from mlci_lib.monitor.monitor import (
        MonitorVerdict as MonitorVerdict,
        monitor_logs as monitor_logs,
    )
    from mlci_lib.monitor.render import (
        MonitorRender as MonitorRender,
        render_monitoring as render_monitoring,
    )
    from mlci_lib.pipeline import (
        run_pipeline as run_pipeline,
    )
    from mlci_lib.predict import (
        PredictResult as PredictResult,
        predict_batch as predict_batch,
    )
    from mlci_lib.registry import (
        BaselineResult as BaselineResult,
        PromotionResult as PromotionResult,
        PushResult as PushResult,
        TagResult as TagResult,
        baseline_predictions as baseline_predictions,
        promote_model as promote_model,
        push_model as push_model,
        rollback_model as rollback_model,
        tag_model_version as tag_model_version,
    )
    from mlci_lib.report import (
        CommentResult as CommentResult,
        IssueResult as IssueResult,
        Report as Report,
        load_verdict as load_verdict,
        open_or_update_issue as open_or_update_issue,
        post_pr_comment as post_pr_comment,
        render_report as render_report,
        write_report as write_report,
    )
    from mlci_lib.result_schemas import (
        SchemaError as SchemaError,
        from_dict as from_dict,
    )
    from mlci_lib.runner import (
        Annotation as Annotation,
        CiRunner as CiRunner,
    )
    from mlci_lib.scaffold import (
        init_project as init_project,
    )
    from mlci_lib.serving import (
        ModelServer as ModelServer,
        serve_model as serve_model,
    )
    from mlci_lib.spark.session import (
        SparkSettings as SparkSettings,
        spark_session as spark_session,
    )
    from mlci_lib.tables import (
        read_table as read_table,
    )


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mlci_lib' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
