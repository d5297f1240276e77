"""`mlci model push`: register a model version that carries everything needed to trust it later.

Order of work, and why:

1. The verdict is checked first: a model whose verdict did not pass never reaches the server.
   It must be a gate or pipeline verdict that agrees with itself, and it must be about this
   model: the candidate's model digest it records equals this model's, and the data fingerprint
   it records equals the one given to the push. Tags in the ``mlci.`` namespace are written only
   by mlci, from the verdict, the model and git; a caller's own tags may not use it.
2. The model is loaded under mlci's safety rules (skops, no pickle unless allowed) and its content
   digest computed; ``push key = sha256(name, content digest, git commit)``.
3. If a version with that push key exists, it is returned: the same model and commit never make
   a second version.
4. Otherwise a run is created, the model is logged with ``mlflow.sklearn.log_model`` (skops, our
   trusted types, explicit pip requirements, the signature from the mlci model folder; an
   XGBoost, LightGBM or CatBoost model in its framework's own flavour and native format, its
   real class labels in MLmodel's metadata), the
   verdict and its metrics are attached to the run, and the uploaded files are listed back and
   checked. Only then is a version created, with every tag (the push key included) in the same
   call. A failure before that point leaves a failed run and no version; a rerun registers one.
5. Convergence under concurrency: each process lists the versions carrying its push key *after*
   its own version exists, and keeps the lowest version number. Version numbers are assigned in
   increasing order, so a version numbered lower than mine was committed before mine and is
   visible to my listing; the lowest one is never deleted (only higher-numbered losers delete
   their own). Every process therefore sees the same minimum, reports it, and the losers delete
   their version and their run: one version remains.
6. A push that died halfway (the server or the runner went away) leaves its run ``RUNNING``.
   Whoever next settles the version of the same push key ends such runs as ``FAILED``; the run
   that holds the version is marked ``FINISHED`` (its version exists, so its work was done).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mlci_lib.errors import CheckFailed, InputError, MlciError, ServiceError
from mlci_lib.gitcontext import GitContext, git_context
from mlci_lib.models import LoadedModel, load_model
from mlci_lib.models.formats import allowed_types
from mlci_lib.models.native_adapter import NativeModel
from mlci_lib.registry.tracking import (
    default_artifact_location,
    mlflow_error_code,
    mlflow_session,
    redact_uri,
    service_error,
)
from mlci_lib.registry.verdicts import VerdictInfo, read_verdict
from mlci_lib.results import Result
from mlci_lib.retry import RetryPolicy

# Tag names on a model version (and on its run).
TAG_COMMIT = "mlci.git.commit"
TAG_REF = "mlci.git.ref"
TAG_RUN_URL = "mlci.run_url"
TAG_DATA = "mlci.data.fingerprint"
TAG_DIGEST = "mlci.model.digest"
TAG_PASSED = "mlci.verdict.passed"
TAG_SUMMARY = "mlci.verdict.summary"
TAG_IMAGE = "mlci.image.digest"
TAG_PUSH_KEY = "mlci.push_key"
TAG_VERDICT_SCHEMA = "mlci.verdict.schema"
#: The digest of the verdict logged with the version (``mlci/verdict.json`` of its run).
TAG_VERDICT_DIGEST = "mlci.verdict.digest"
#: The candidate's model digest the verdict records, which the push checked against the model.
TAG_VERDICT_MODEL = "mlci.verdict.model_digest"
#: Tags in this namespace are written by mlci only (a caller's --tag may not use it).
MLCI_NAMESPACE = "mlci."
VERDICT_ARTIFACT = "mlci/verdict.json"

DEFAULT_EXPERIMENT = "mlci"
MODEL_ARTIFACT = "model"
#: Files an uploaded sklearn model must have before a version may point at it.
REQUIRED_FILES = ("MLmodel", "model.skops", "requirements.txt")
#: The model file of each native flavour mlci logs (XGBoost in its JSON format).
NATIVE_MODEL_FILES = {"xgboost": "model.json", "lightgbm": "model.lgb", "catboost": "model.cb"}
#: Packages pinned to their installed versions when no requirements are given.
DEFAULT_REQUIREMENT_PACKAGES = ("scikit-learn", "skops", "numpy", "scipy", "pandas")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}$")
_MLFLOW_TYPES = {"integer": "long", "float": "double", "boolean": "boolean", "string": "string",
                 "datetime": "datetime"}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class PushResult(Result):
    SCHEMA: ClassVar[str] = "mlci.model-push"
    SCHEMA_VERSION: ClassVar[int] = 1

    model_uri: str  # models:/NAME/VERSION
    name: str
    version: str
    run_id: str
    digest: str
    #: True when this call registered the version, False when it already existed.
    created: bool
    push_key: str
    source: str  # where the version's files live (models:/m-... in MLflow 3)
    tracking_uri: str
    tags: Mapping[str, str]
    verdict_passed: bool | None
    passed: bool = True


@dataclasses.dataclass(frozen=True)
class TagResult(Result):
    SCHEMA: ClassVar[str] = "mlci.model-tag"
    SCHEMA_VERSION: ClassVar[int] = 1

    name: str
    version: str
    tags: Mapping[str, str]
    tracking_uri: str
    passed: bool = True


# -- validation ------------------------------------------------------------------------------------


def validate_model_name(name: str, *, option: str = "--name") -> str:
    text = (name or "").strip()
    if not _NAME.match(text):
        raise InputError(
            f"model name {name!r} (option {option}) is not a valid registered model name",
            hint="use letters, digits, '.', '_', '-' or spaces, starting with a letter or digit",
        )
    return text


def validate_version(version: str | int, *, option: str = "--version") -> str:
    text = str(version).strip()
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"model version {version!r} (option {option}) must be a positive whole number")
    return str(int(text))


def default_pip_requirements(extra: Iterable[str] = ()) -> list[str]:
    """The installed versions of what a model needs, pinned (no inference).

    ``extra`` are the model's own frameworks (``LoadedModel.requirements``, e.g. xgboost).
    """
    pins = []
    for package in (*DEFAULT_REQUIREMENT_PACKAGES, *extra):
        try:
            pins.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def read_requirements_file(path: str | os.PathLike[str]) -> list[str]:
    from mlci_lib.files import read_text

    lines = read_text(path, what="requirements file", option="--pip-requirements-file").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def validate_requirements(requirements: Iterable[str]) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for raw in requirements:
        text = str(raw).strip()
        if not text:
            continue
        try:
            Requirement(text)
        except InvalidRequirement as exc:
            raise InputError(
                f"pip requirement {text!r} is not a valid requirement ({exc})",
                hint="write it like scikit-learn==1.5.2 or pandas>=2",
            ) from None
        out.append(text)
    return out


def user_tags(tags: Mapping[str, str] | None, *, option: str = "--tag") -> dict[str, str]:
    """A caller's own tags, checked: no ``mlci.`` key (mlci writes those), no control characters."""
    clean: dict[str, str] = {}
    for key, value in (tags or {}).items():
        key_text, value_text = str(key).strip(), str(value)
        if not key_text or any(ord(ch) < 32 for ch in key_text + value_text.replace("\n", " ")):
            raise InputError(
                f"tag {key!r} (option {option}) has an empty name or control characters", hint="use KEY=VALUE"
            )
        if key_text.lower().startswith(MLCI_NAMESPACE):
            raise InputError(
                f"tag {key_text!r} (option {option}) is in the {MLCI_NAMESPACE} namespace, "
                "which only mlci writes",
                hint="mlci sets its tags from the verdict, the model and git; name your own tag "
                "without the mlci. prefix, e.g. team.owner=risk",
            )
        clean[key_text] = value_text
    return clean


def verdict_problem(
    info: VerdictInfo, model: str | os.PathLike[str], loaded: LoadedModel, data_fingerprint: str | None
) -> str | None:
    """Why ``info`` cannot let this model through (None: it can): not passed, or another model or data."""
    from mlci_lib.models.digest import model_digest

    if not info.passed:
        return f"the verdict in {info.source} did not pass ({info.summary})"
    if info.model_digest is None:
        return (
            f"the verdict in {info.source} does not record which model it was computed on "
            "(run the gate with --model, or use mlci run)"
        )
    if info.model_digest not in {loaded.digest, model_digest(model)}:
        return (
            f"the verdict in {info.source} was computed on model {info.model_digest[:19]}..., "
            f"not on {model} ({loaded.digest[:19]}...)"
        )
    if data_fingerprint and info.data_fingerprint != data_fingerprint:
        recorded = info.data_fingerprint[:19] + "..." if info.data_fingerprint else "no data fingerprint"
        return (
            f"the verdict in {info.source} was computed on other data ({recorded}) than the push names "
            f"({data_fingerprint[:19]}...)"
        )
    return None


def push_key(name: str, digest: str, commit: str | None) -> str:
    """The identity of a push: the same model content and commit under the same name."""
    raw = f"mlci-push-v1\0{name}\0{digest}\0{commit or ''}".encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _mlflow_signature(loaded: LoadedModel) -> Any:
    if loaded.signature is None:
        return None
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    cols: list[ColSpec | TensorSpec] = [
        ColSpec(_MLFLOW_TYPES.get(c.kind, "string"), c.name) for c in loaded.signature.columns
    ]
    return ModelSignature(inputs=Schema(cols))


def _check_estimator(loaded: LoadedModel) -> None:
    estimator = loaded.estimator
    if loaded.framework == "onnx":
        return  # loaded by mlci's ONNX module: a graph onnxruntime has already opened
    if not (hasattr(estimator, "predict") and hasattr(estimator, "get_params")):
        raise InputError(
            f"model {loaded.source} is not a scikit-learn estimator ({type(estimator).__name__})",
            hint="mlci pushes scikit-learn models; log other models with MLflow directly",
        )


def _tags(
    *,
    git: GitContext,
    digest: str,
    key: str,
    verdict: VerdictInfo | None,
    problem: str | None,
    data_fingerprint: str | None,
    image_digest: str | None,
    extra: Mapping[str, str],
) -> dict[str, str]:
    passed = verdict is not None and problem is None
    if verdict is None:
        summary = "no verdict (pushed without requiring one)"
    elif problem is not None:
        summary = f"not promotable: {problem}"[:480]
    else:
        summary = verdict.summary
    tags = {
        TAG_COMMIT: git.commit,
        TAG_REF: git.ref,
        TAG_RUN_URL: git.run_url,
        TAG_DATA: data_fingerprint,
        TAG_DIGEST: digest,
        TAG_PASSED: "true" if passed else "false",
        TAG_SUMMARY: summary,
        TAG_VERDICT_SCHEMA: verdict.schema if verdict is not None else None,
        TAG_VERDICT_DIGEST: verdict.digest if verdict is not None else None,
        TAG_VERDICT_MODEL: verdict.model_digest if verdict is not None else None,
        TAG_IMAGE: image_digest,
        TAG_PUSH_KEY: key,
    }
    # The caller's tags first, mlci's last: nothing of the caller's can stand for mlci's own.
    out = dict(extra)
    out.update({k: str(v) for k, v in tags.items() if v})
    return out


# -- the push --------------------------------------------------------------------------------------


def push_model(
    model: str | os.PathLike[str],
    name: str,
    *,
    verdict: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    require_verdict: bool = True,
    tracking_uri: str | None = None,
    pip_requirements: Sequence[str] | None = None,
    data_fingerprint: str | None = None,
    image_digest: str | None = None,
    allow_pickle: bool = False,
    trusted_types: Iterable[str] = (),
    experiment: str = DEFAULT_EXPERIMENT,
    tags: Mapping[str, str] | None = None,
    git: GitContext | None = None,
    workspace: str | os.PathLike[str] = ".",
    policy: RetryPolicy | None = None,
) -> PushResult:
    """Log ``model`` to MLflow and register it as a version of ``name`` (idempotent, see module doc).

    Raises :class:`CheckFailed` when the verdict is missing (and required) or did not pass,
    :class:`InputError` for a bad model, name or requirement, :class:`UnsafeModelError` for
    pickle without ``allow_pickle``, and :class:`ServiceError` when the server fails.
    """
    name = validate_model_name(name)
    extra_tags = user_tags(tags)
    if image_digest is not None:
        image_digest = validate_image_digest(image_digest, option="--image-digest")
    info: VerdictInfo | None = None
    if verdict is not None and not (isinstance(verdict, str) and not verdict.strip()):
        info = read_verdict(verdict)
    if require_verdict:
        if info is None:
            raise CheckFailed(
                f"refusing to push {name}: no verdict was given",
                hint="pass --verdict with the gate's or the pipeline's verdict JSON, "
                "or --no-require-verdict to push without one",
            )
        if not info.passed:
            raise CheckFailed(
                f"refusing to push {name}: the verdict in {info.source} did not pass ({info.summary})",
                hint="fix what failed and rerun the gate, or --no-require-verdict to push anyway",
            )
    extra_trusted = tuple(trusted_types)
    loaded = load_model(model, allow_pickle=allow_pickle, trusted_types=extra_trusted)
    _check_estimator(loaded)
    problem = None if info is None else verdict_problem(info, model, loaded, data_fingerprint)
    if require_verdict and problem is not None:
        raise CheckFailed(
            f"refusing to push {name}: {problem}",
            hint="push the model and data the gate judged, or gate this model (mlci gate --model)",
        )
    requirements = validate_requirements(
        default_pip_requirements((*loaded.requirements, *(("onnx",) if loaded.framework == "onnx" else ())))
        if pip_requirements is None
        else pip_requirements
    )
    if not requirements:
        raise InputError("no pip requirements left after parsing", hint="give at least scikit-learn")
    git = git or git_context(workspace)
    fingerprint = data_fingerprint or (info.data_fingerprint if info else None)
    key = push_key(name, loaded.digest, git.commit)
    all_tags = _tags(
        git=git,
        digest=loaded.digest,
        key=key,
        verdict=info,
        problem=problem,
        data_fingerprint=fingerprint,
        image_digest=image_digest,
        extra=extra_tags,
    )
    trusted = sorted(allowed_types(extra_trusted))

    with mlflow_session(tracking_uri, workspace=workspace, policy=policy) as client:
        uri = client.tracking_uri
        try:
            existing = _versions_with_key(client, name, key)
        except MlciError:
            raise
        except Exception as error:
            if mlflow_error_code(error) != "RESOURCE_DOES_NOT_EXIST":
                raise service_error(error, doing=f"looking up {name}", tracking_uri=uri) from None
            existing = []
        if existing:
            winner = existing[0]
            _end_abandoned_runs(client, experiment, key, winner)
            return _result(winner, name, loaded.digest, key, uri, created=False, info=info)
        experiment_id = _experiment_id(client, experiment, uri)
        run_id = _create_run(client, experiment_id, name, all_tags, uri)
        try:
            source = _log_model(loaded, run_id, experiment_id, requirements, trusted, uri)
            _attach_verdict(client, run_id, info, uri)
            _check_upload(client, source, uri, _required_files(loaded))
            version = _register(client, name, source, run_id, all_tags, uri)
            winner = _converge(client, name, key, run_id, version, uri)
        except BaseException:
            _finish_run(client, run_id, "FAILED")
            raise
        created = winner.run_id == run_id
        if created:
            _finish_run(client, run_id, "FINISHED")
            _end_abandoned_runs(client, experiment, key, winner)
        else:
            _delete_run(client, run_id)
        return _result(winner, name, loaded.digest, key, uri, created=created, info=info)


def _result(
    mv: Any, name: str, digest: str, key: str, uri: str, *, created: bool, info: VerdictInfo | None
) -> PushResult:
    tags = dict(mv.tags or {})
    return PushResult(
        model_uri=f"models:/{name}/{mv.version}",
        name=name,
        version=str(mv.version),
        run_id=str(mv.run_id or ""),
        digest=tags.get(TAG_DIGEST, digest),
        created=created,
        push_key=key,
        source=str(mv.source or ""),
        tracking_uri=redact_uri(uri),
        tags=tags,
        verdict_passed=tags.get(TAG_PASSED) == "true" if tags.get(TAG_PASSED) else None,
    )


def _versions_with_key(client: Any, name: str, key: str) -> list[Any]:
    escaped = name.replace("'", "\\'")
    found = client.search_model_versions(f"name = '{escaped}' and tags.`{TAG_PUSH_KEY}` = '{key}'")
    ready = [mv for mv in found if (mv.tags or {}).get(TAG_PUSH_KEY) == key]
    return sorted(ready, key=lambda mv: int(mv.version))


def _experiment_id(client: Any, experiment: str, uri: str) -> str:
    if not experiment.strip():
        raise InputError("experiment name is empty (option --experiment)", hint="e.g. --experiment mlci")
    try:
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                raise InputError(
                    f"experiment {experiment!r} is deleted on {redact_uri(uri)}",
                    hint="restore it (mlflow experiments restore) or pass another --experiment",
                )
            return str(found.experiment_id)
        try:
            return str(client.create_experiment(experiment, artifact_location=default_artifact_location(uri)))
        except Exception as error:
            if mlflow_error_code(error) != "RESOURCE_ALREADY_EXISTS":
                raise
            # Another process created it between our lookup and our create.
            return str(client.get_experiment_by_name(experiment).experiment_id)
    except MlciError:
        raise
    except Exception as error:
        raise service_error(error, doing=f"opening experiment {experiment!r}", tracking_uri=uri) from None


def _create_run(client: Any, experiment_id: str, name: str, tags: Mapping[str, str], uri: str) -> str:
    try:
        run = client.create_run(experiment_id, tags=dict(tags), run_name=f"mlci push {name}")
    except Exception as error:
        raise service_error(error, doing="creating a run", tracking_uri=uri) from None
    return str(run.info.run_id)


def _log_model(
    loaded: LoadedModel,
    run_id: str,
    experiment_id: str,
    requirements: list[str],
    trusted: list[str],
    uri: str,
) -> str:
    import mlflow.tracking.fluent as fluent

    # log_model(run_id=...) attaches the model to our run without making it the active run (a
    # caller's own active run and experiment stay as they were). The logged model joins the
    # active experiment, so ours is made the active one for this call only.
    previous_experiment = fluent._active_experiment_id
    fluent._active_experiment_id = experiment_id
    common: dict[str, Any] = {
        "name": MODEL_ARTIFACT,
        "pip_requirements": requirements,
        "signature": _mlflow_signature(loaded),
        # MLflow's own signature has no category, nullable or time-zone dtypes: the mlci one rides
        # along so that a model loaded back from the registry coerces as it was fitted.
        "metadata": {
            "mlci_digest": loaded.digest,
            "mlci_format": loaded.format,
            **({"mlci_signature": loaded.signature.to_dict()} if loaded.signature else {}),
        },
        "run_id": run_id,
    }
    try:
        if isinstance(loaded.estimator, NativeModel):
            info = _log_native(loaded.estimator, common)
        elif loaded.framework == "onnx":
            import mlflow.onnx
            import onnx

            # The graph as it was checked; mlci's metadata (columns, classes) travels inside it.
            graph = onnx.load(str(loaded.estimator.file))
            info = mlflow.onnx.log_model(graph, save_as_external_data=False, **common)
        else:
            import mlflow.sklearn

            info = mlflow.sklearn.log_model(
                loaded.estimator,
                serialization_format="skops",
                skops_trusted_types=_skops_types(loaded.estimator, trusted),
                **common,
            )
    except MlciError:
        raise
    except Exception as error:
        raise service_error(error, doing="uploading the model", tracking_uri=uri) from None
    finally:
        fluent._active_experiment_id = previous_experiment
    return str(info.model_uri)


def _skops_types(estimator: Any, trusted: list[str]) -> list[str]:
    """The types MLflow is told to trust when it writes ``estimator`` with skops.

    MLflow checks the file it writes against one flat list. mlci loaded this estimator under its
    own audit, which grants some types only beneath the estimator that needs them
    (``functools.partial`` inside HistGradientBoosting): those are in the estimator already, so
    they are listed for this file, and only for it.
    """
    import skops.io as sio

    return sorted(set(trusted) | set(sio.get_untrusted_types(data=sio.dumps(estimator))))


def _log_native(model: NativeModel, common: dict[str, Any]) -> Any:
    """Log an XGBoost, LightGBM or CatBoost model in its framework's own MLflow flavour.

    The native file knows classes only as 0..K-1 and may lack feature names: the real ones go
    into MLmodel's metadata, where mlci's loader reads them back (mlci_lib.models.mlflow_folder).
    """
    from mlci_lib.models.mlflow_folder import META_CLASSES, META_FEATURE_NAMES

    meta = common["metadata"]
    if model.task == "classification":
        meta[META_CLASSES] = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        meta[META_FEATURE_NAMES] = [str(n) for n in names]
    if model.framework == "xgboost":
        import mlflow.xgboost

        return mlflow.xgboost.log_model(model.native, model_format="json", **common)
    if model.framework == "lightgbm":
        import mlflow.lightgbm

        # A Booster is saved in LightGBM's text format (model.lgb), never pickled.
        return mlflow.lightgbm.log_model(model.native, **common)
    import mlflow.catboost

    return mlflow.catboost.log_model(model.native, **common)


def _attach_verdict(client: Any, run_id: str, info: VerdictInfo | None, uri: str) -> None:
    if info is None:
        return
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    try:
        client.log_dict(run_id, info.data, "mlci/verdict.json")
        if info.metrics:
            metrics = [Metric(k[:250], v, now, 0) for k, v in sorted(info.metrics.items())]
            client.log_batch(run_id, metrics=metrics)
    except Exception as error:
        raise service_error(error, doing="attaching the verdict to the run", tracking_uri=uri) from None


def _required_files(loaded: LoadedModel) -> tuple[str, ...]:
    if loaded.framework == "onnx":
        return ("MLmodel", "model.onnx", "requirements.txt")
    if isinstance(loaded.estimator, NativeModel):
        return ("MLmodel", NATIVE_MODEL_FILES[loaded.estimator.framework], "requirements.txt")
    return REQUIRED_FILES


def _check_upload(client: Any, source: str, uri: str, required: tuple[str, ...] = REQUIRED_FILES) -> None:
    """List the uploaded model back: every required file is there and not empty."""
    model_id = source.removeprefix("models:/")
    try:
        files = {f.path.rsplit("/", 1)[-1]: f for f in client.list_logged_model_artifacts(model_id)}
    except Exception as error:
        raise service_error(error, doing="checking the uploaded model", tracking_uri=uri) from None
    missing = [name for name in required if name not in files or not files[name].file_size]
    if missing:
        raise ServiceError(
            f"tracking server {redact_uri(uri)}: the uploaded model {source} lacks {', '.join(missing)}; "
            "no version was registered",
            hint="rerun the push; if it persists, check the artifact store",
        )


def _register(client: Any, name: str, source: str, run_id: str, tags: Mapping[str, str], uri: str) -> str:
    try:
        try:
            client.create_registered_model(name, description="Registered by mlci")
        except Exception as error:
            if mlflow_error_code(error) != "RESOURCE_ALREADY_EXISTS":
                raise
        model_id = source.removeprefix("models:/") if source.startswith("models:/m-") else None
        mv = client.create_model_version(name, source, run_id=run_id, tags=dict(tags), model_id=model_id)
        deadline = time.monotonic() + 120
        while str(mv.status) == "PENDING_REGISTRATION" and time.monotonic() < deadline:
            time.sleep(0.5)
            mv = client.get_model_version(name, mv.version)
        if str(mv.status) != "READY":
            raise ServiceError(
                f"tracking server {redact_uri(uri)}: version {mv.version} of {name} is {mv.status}",
                hint="check the registry; the version did not become READY",
            )
    except MlciError:
        raise
    except Exception as error:
        raise service_error(error, doing=f"registering a version of {name}", tracking_uri=uri) from None
    return str(mv.version)


def _converge(client: Any, name: str, key: str, run_id: str, version: str, uri: str) -> Any:
    try:
        candidates = _versions_with_key(client, name, key)
        if not candidates:
            raise ServiceError(
                f"tracking server {redact_uri(uri)}: version {version} of {name} is not listed after "
                "being created",
                hint="the registry's search is inconsistent; rerun the push",
            )
        winner = candidates[0]
        for mv in candidates[1:]:
            if mv.run_id == run_id:  # only ever delete our own
                client.delete_model_version(name, mv.version)
        return winner
    except MlciError:
        raise
    except Exception as error:
        raise service_error(error, doing=f"settling the version of {name}", tracking_uri=uri) from None


def _finish_run(client: Any, run_id: str, status: str) -> None:
    try:
        client.set_terminated(run_id, status)
    except Exception:  # best effort: the outcome is decided; a stale run status must not mask it
        return


def _end_abandoned_runs(client: Any, experiment: str, key: str, winner: Any) -> None:
    """End the runs of this push key still ``RUNNING``: pushes that died halfway (best effort).

    The winner's run holds a version, so its work is done: FINISHED. Any other run of the key
    is a push that never registered, or one that will lose to the winner and delete its own
    version; either way it is over: FAILED. Only the winner's process or this one ever writes
    the winner's run, and both write FINISHED, so no race can mark it failed.
    """
    try:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return
        runs = client.search_runs(
            [found.experiment_id],
            f"tags.`{TAG_PUSH_KEY}` = '{key}' and attributes.status = 'RUNNING'",
            max_results=200,
        )
    except Exception:  # best effort: the push itself succeeded; a rerun tries again
        return
    for run in runs:
        if run.data.tags.get(TAG_PUSH_KEY) != key:
            continue
        _finish_run(client, run.info.run_id, "FINISHED" if run.info.run_id == winner.run_id else "FAILED")


def _delete_run(client: Any, run_id: str) -> None:
    # Ended first: a deleted run keeps its status, and a deleted RUNNING run is one left behind.
    _finish_run(client, run_id, "KILLED")
    try:
        client.delete_run(run_id)
    except Exception:  # best effort, as above; the duplicate run is marked and harmless
        return


# -- tags after the fact ---------------------------------------------------------------------------


def validate_image_digest(digest: str, *, option: str = "--image-digest") -> str:
    text = str(digest).strip()
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", text):
        raise InputError(
            f"image digest {digest!r} (option {option}) is not sha256:<64 hex digits>",
            hint="pass the digest mlci image push prints",
        )
    return text


def tag_model_version(
    name: str,
    version: str | int,
    tags: Mapping[str, str],
    *,
    image_digest: str | None = None,
    tracking_uri: str | None = None,
    workspace: str | os.PathLike[str] = ".",
    policy: RetryPolicy | None = None,
) -> TagResult:
    """Set the caller's ``tags`` (none in the ``mlci.`` namespace) and mlci's image digest tag on
    an existing model version (the pipeline records the image digest this way)."""
    name = validate_model_name(name, option="NAME")
    version = validate_version(version)
    clean = user_tags(tags)
    if image_digest is not None:
        clean[TAG_IMAGE] = validate_image_digest(image_digest)
    if not clean:
        raise InputError("no tags to set", hint="pass --image-digest or --tag KEY=VALUE")
    with mlflow_session(tracking_uri, workspace=workspace, policy=policy) as client:
        uri = client.tracking_uri
        try:
            client.get_model_version(name, version)
            for key, value in clean.items():
                client.set_model_version_tag(name, version, key, value)
        except Exception as error:
            if mlflow_error_code(error) == "RESOURCE_DOES_NOT_EXIST":
                raise InputError(
                    f"model {name} has no version {version} on {redact_uri(uri)}",
                    hint="check the name and version (mlci model push prints them)",
                ) from None
            raise service_error(error, doing=f"tagging {name} version {version}", tracking_uri=uri) from None
        return TagResult(name=name, version=version, tags=clean, tracking_uri=redact_uri(uri))


def digest_of(path: str | os.PathLike[str]) -> str:
    """Fingerprint helper re-exported for the CLI's --data option."""
    from mlci_lib.fingerprint import fingerprint_path

    return fingerprint_path(Path(path))
