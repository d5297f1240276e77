"""``mlci image build``: a small, labelled serving image for one model.

The Dockerfile comes from ``templates/docker/Dockerfile`` (or the user's own, same placeholders);
dependencies sit in layers before the model so a new model rebuilds only the last layer; labels
link the image to its model, the commit and the verdict that let it through.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError, ServiceError, UnsafeModelError
from mlci_lib.gitcontext import GitContext, git_context
from mlci_lib.image.context import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_PLATFORM,
    DEFAULT_PORT,
    DEFAULT_USER,
    distributions_of_types,
    prepare_context,
    serving_requirements,
    system_packages_for,
)
from mlci_lib.image.engine import api_error, check_tag, docker_client, sanitize_tag, split_repository
from mlci_lib.results import Result

if TYPE_CHECKING:
    from mlci_lib.models.loaded import LoadedModel

LABEL_PREFIX = "io.mlci."
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


@dataclasses.dataclass(frozen=True)
class BuildStep:
    number: int
    instruction: str
    cached: bool


@dataclasses.dataclass(frozen=True)
class ImageBuildResult(Result):
    SCHEMA = "mlci.image-build"
    SCHEMA_VERSION = 1

    image_id: str
    repository: str
    tags: tuple[str, ...]
    references: tuple[str, ...]
    labels: dict[str, str]
    base_image: str
    wheelhouse: bool
    model_digest: str
    size_bytes: int
    duration_s: float
    steps: tuple[BuildStep, ...]
    #: "native", or "onnx": the model was converted, checked and is served with onnxruntime.
    runtime: str = "native"
    #: The ONNX conversion check (mlci.onnx-conversion) when runtime is "onnx".
    conversion: dict[str, Any] | None = None
    #: The library that predicts in the image ("sklearn", "xgboost", ...; "pickle" when the model
    #: was unpickled, which the image then does at every start).
    framework: str = "sklearn"
    pickle: bool = False
    requirements: tuple[str, ...] = ()
    system_packages: tuple[str, ...] = ()
    trusted_types: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        return self.references[0]

    @property
    def cached_steps(self) -> list[str]:
        return [s.instruction for s in self.steps if s.cached]

    @property
    def built_steps(self) -> list[str]:
        return [s.instruction for s in self.steps if not s.cached]


def tags_from_git(
    git: GitContext, *, model_version: str | None = None, extra: Iterable[str] = ()
) -> list[str]:
    """Commit tag, model version tag, ``latest`` only on the default branch, then ``extra``."""
    tags: list[str] = []
    if git.commit:
        tags.append(sanitize_tag(git.commit[:12]))
    if model_version:
        tags.append(sanitize_tag(f"model-{model_version}"))
    if git.on_default_branch:
        tags.append("latest")
    for item in extra:
        tags.append(check_tag(item.strip()))
    if not tags:
        raise InputError(
            "no image tag: not in a git checkout, no model version and no --tag",
            hint="pass --tag, or run inside a git checkout",
        )
    return list(dict.fromkeys(tags))


def _sample_rows(
    sample_data: str | os.PathLike[str] | None, model: Any, limit: int = 5
) -> list[dict[str, Any]] | None:
    if sample_data is None:
        return None
    from mlci_lib.results import to_jsonable
    from mlci_lib.serving.server import read_rows_file

    frame = read_rows_file(sample_data, what="sample data", option="--sample-data")
    ready = model.prepare(frame.head(limit), source=f"sample data {sample_data}")
    rows = to_jsonable(ready.to_dict(orient="records"))
    return rows if isinstance(rows, list) else None


def build_image(
    model: str | os.PathLike[str],
    *,
    repository: str,
    tags: Sequence[str] | None = None,
    base_image: str = DEFAULT_BASE_IMAGE,
    wheelhouse: bool = True,
    python_version: str = "3.12",
    platform: str = DEFAULT_PLATFORM,
    extra_requirements: Iterable[str] = (),
    dockerfile: str | os.PathLike[str] | None = None,
    sample_data: str | os.PathLike[str] | None = None,
    reference_data: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    model_version: str | None = None,
    model_uri: str | None = None,
    verdict_file: str | os.PathLike[str] | None = None,
    git: GitContext | None = None,
    user: str = DEFAULT_USER,
    port: int = DEFAULT_PORT,
    allow_pickle: bool = False,
    trusted_types: Iterable[str] = (),
    system_packages: Iterable[str] = (),
    extra_labels: Mapping[str, str] | None = None,
    context_dir: str | os.PathLike[str] | None = None,
    log: Any = None,
    runtime: str = "native",
) -> ImageBuildResult:
    """Build the serving image of ``model`` and tag it; the model is loaded first, so a model
    that does not load under the safety rules never becomes an image.

    ``allow_pickle`` is the image build's own decision, not the model's: a pickle model becomes
    an image (which unpickles it, running its code, wherever it is deployed) only when the caller
    of the build says so, and the image's labels and ``/version`` then say it is one. The trusted
    types given here and those the model needed are baked into the image for its ``mlci serve``.
    Requirements and system packages the model's framework needs are derived and pinned.

    ``reference_data`` (the training data, or a reference document of this model) is summarised
    into ``bundle/reference.json``, which the image's ``/metrics`` exports as the reference the
    alert rules compare with (:mod:`mlci_lib.monitor.reference`).
    """
    import time

    from mlci_lib.fingerprint import fingerprint_path
    from mlci_lib.image.fields import (
        check_base_image,
        check_platform,
        check_port,
        check_python_version,
        check_system_packages,
        check_user,
    )

    started = time.monotonic()
    registry, path = split_repository(repository)
    repo = f"{registry}/{path}" if registry else path
    check_user(user)
    check_port(port)
    check_base_image(base_image)
    check_python_version(python_version)
    check_platform(platform)
    own_packages = check_system_packages(system_packages)
    if runtime not in ("native", "onnx"):
        raise InputError(f"unknown runtime {runtime!r}", hint="use native or onnx (image-build: runtime)")
    loaded = load_for_image(Path(model), allow_pickle=allow_pickle, trusted_types=trusted_types)
    trusted = tuple(dict.fromkeys([*trusted_types, *loaded.trusted_types]))
    if runtime == "onnx":
        from mlci_lib.image.context import onnx_serving_requirements

        requirements = onnx_serving_requirements(extra_requirements)
    else:
        needed = [*loaded.requirements, *distributions_of_types(trusted)]
        requirements = serving_requirements(extra_requirements, needed)
    packages = list(dict.fromkeys([*system_packages_for(requirements), *own_packages]))
    # An ONNX image serves the converted graph: nothing in it is unpickled.
    pickled = is_pickle(loaded) and runtime != "onnx"
    git = git or git_context()
    meta = loaded.metadata or {}
    name = model_name or meta.get("name") or Path(model).resolve().name
    version = model_version or meta.get("version")
    verdict_digest = fingerprint_path(verdict_file) if verdict_file else None
    final_tags = list(tags) if tags else tags_from_git(git, model_version=version)
    for tag in final_tags:
        check_tag(tag)
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {
        "org.opencontainers.image.title": str(name),
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.version": str(version or git.short_commit or "unversioned"),
        "org.opencontainers.image.revision": git.commit or "",
        "org.opencontainers.image.source": git.source_url or "",
        "org.opencontainers.image.base.name": base_image,
        f"{LABEL_PREFIX}model.name": str(name),
        f"{LABEL_PREFIX}model.version": str(version or ""),
        f"{LABEL_PREFIX}model.uri": str(model_uri or ""),
        f"{LABEL_PREFIX}model.digest": loaded.digest,
        f"{LABEL_PREFIX}verdict.digest": verdict_digest or "",
        f"{LABEL_PREFIX}git.ref": git.ref or "",
        f"{LABEL_PREFIX}model.framework": loaded.framework,
        f"{LABEL_PREFIX}model.pickle": "true" if pickled else "false",
        f"{LABEL_PREFIX}model.trusted-types": ",".join(trusted),
    }
    labels.update(extra_labels or {})
    info = {
        "name": str(name),
        "version": version,
        "uri": model_uri,
        "git_commit": git.commit,
        "verdict_digest": verdict_digest,
        # What the image's `mlci serve` applies when it loads the model (serve_cmd reads these).
        "trusted_types": list(trusted),
        "allow_pickle": pickled,
        "framework": loaded.framework,
    }
    warmup = _sample_rows(sample_data, loaded)
    reference = None
    if reference_data is not None:
        from mlci_lib.monitor.reference import REFERENCE_FILE, load_reference

        reference = load_reference(loaded, reference_data).to_dict()
        info["reference"] = REFERENCE_FILE  # beside info.json; the image's mlci serve reads it
        labels[f"{LABEL_PREFIX}reference.digest"] = str(reference["digest"])
    with tempfile.TemporaryDirectory(prefix="mlci-image-") as scratch:
        folder = Path(context_dir) if context_dir else Path(scratch) / "context"
        if folder.exists() and any(folder.iterdir()):
            raise InputError(
                f"build context folder {folder} is not empty", hint="pass an empty or new folder"
            )
        bundled_model = Path(model)
        conversion = None
        if runtime == "onnx":
            conversion = _convert_for_image(loaded, sample_data, Path(scratch) / "onnx", str(name))
            bundled_model = conversion.path
            labels.update(
                {
                    f"{LABEL_PREFIX}runtime": "onnx",
                    f"{LABEL_PREFIX}onnx.digest": conversion.digest,
                    f"{LABEL_PREFIX}onnx.tolerance": repr(conversion.tolerance),
                }
            )
        _, labelled = prepare_context(
            folder,
            model=bundled_model,
            base_image=base_image,
            requirements=requirements,
            wheelhouse=wheelhouse,
            python_version=python_version,
            platform=platform,
            info=info,
            warmup_rows=warmup,
            reference=reference,
            dockerfile=Path(dockerfile) if dockerfile else None,
            user=user,
            port=port,
            labels=labels,
            system_packages=packages,
            runtime=runtime,
        )
        image_id, steps = _run_build(folder, f"{repo}:{final_tags[0]}", {} if labelled else labels, log)
    client = docker_client()
    try:
        image = client.images.get(image_id)
        for tag in final_tags[1:]:
            image.tag(repo, tag)
    except Exception as exc:
        raise api_error(f"tagging image {image_id}", exc) from None
    return ImageBuildResult(
        image_id=image_id,
        repository=repo,
        tags=tuple(final_tags),
        references=tuple(f"{repo}:{t}" for t in final_tags),
        labels=labels,
        base_image=base_image,
        wheelhouse=wheelhouse,
        model_digest=loaded.digest,
        size_bytes=int(image.attrs.get("Size") or 0),
        duration_s=round(time.monotonic() - started, 3),
        steps=tuple(steps),
        runtime=runtime,
        conversion=conversion.to_dict() if conversion is not None else None,
        framework=loaded.framework,
        pickle=pickled,
        requirements=tuple(requirements),
        system_packages=tuple(packages),
        trusted_types=trusted,
    )


def _convert_for_image(
    loaded: Any, sample_data: str | os.PathLike[str] | None, folder: Path, name: str
) -> Any:
    """The model converted to ONNX and checked against itself on the sample rows (all of them, up
    to the converter's limit; rows of zeros from the signature when no sample data was given)."""
    from mlci_lib.models.onnx_convert import convert_model
    from mlci_lib.serving.server import read_rows_file, synthetic_rows

    if sample_data is not None:
        rows = read_rows_file(sample_data, what="sample data", option="--sample-data")
    else:
        rows = synthetic_rows(loaded)
    return convert_model(loaded, rows, folder / "model.onnx", name=name)


#: Formats that were unpickled to load (pickle/joblib files, MLflow's pickle flavours).
PICKLE_FORMATS = ("pickle", "mlflow-pickle")


def is_pickle(loaded: LoadedModel) -> bool:
    """Whether loading ``loaded`` ran a pickle (so serving it unpickles it at every start)."""
    return loaded.format in PICKLE_FORMATS or loaded.framework == "pickle"


def load_for_image(model: Path, *, allow_pickle: bool, trusted_types: Iterable[str]) -> LoadedModel:
    """Load the model the image will serve; a pickle is refused unless the image build allows it,
    with a message that says where to allow it (the model's own allow-pickle does not carry over)."""
    from mlci_lib.models import load_model

    try:
        return load_model(model, allow_pickle=allow_pickle, trusted_types=trusted_types)
    except UnsafeModelError as exc:
        if allow_pickle or "pickle" not in exc.message.lower():
            raise
        raise UnsafeModelError(
            f"{exc.message}: a serving image of it would unpickle it, running its code, wherever the "
            "image is deployed",
            hint="save the model with skops; or, if you trust it in production, say so for the image "
            "build itself: mlci image build --allow-pickle, action input allow-pickle: 'true', or "
            "'image-build: {allow-pickle: true}' in mlci.yaml (the model's allow-pickle does not carry over)",
        ) from None


def _run_build(
    folder: Path, reference: str, labels: Mapping[str, str], log: Any
) -> tuple[str, list[BuildStep]]:
    client = docker_client()
    steps: list[BuildStep] = []
    current: tuple[int, str] | None = None
    cached = False
    image_id: str | None = None
    tail: list[str] = []

    def close_step() -> None:
        if current is not None:
            steps.append(BuildStep(current[0], current[1], cached))

    try:
        stream = client.api.build(
            path=str(folder),
            tag=reference,
            labels=dict(labels) or None,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                detail = " ".join(str(chunk.get("error", "")).split())
                if current is not None and current[1].upper().startswith("FROM "):
                    # The FROM step failed: the base image cannot be pulled (a typo, a registry
                    # that does not answer, no login). Say which option chooses it.
                    raise ServiceError(
                        f"image build failed: the base image {current[1][5:].strip()[:200]} cannot be "
                        f"pulled: {detail[:300]}",
                        hint="pass --base-image (the action's base-image input, or image-build's "
                        "base-image in mlci.yaml) with an image this Docker engine can pull or already "
                        "has, or log in to its registry first",
                    )
                raise ServiceError(
                    f"image build failed: {detail[:400]}",
                    hint="the lines before it show the failing step: " + " | ".join(tail[-5:])[-600:],
                )
            if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
                image_id = str(chunk["aux"]["ID"])
            text = chunk.get("stream")
            if not text:
                continue
            for line in text.splitlines():
                line = line.strip()
                if not line:
                    continue
                tail = [*tail, line][-20:]
                if log is not None:
                    log(line)
                match = _STEP.match(line)
                if match:
                    close_step()
                    current = (int(match.group(1)), match.group(3))
                    cached = False
                elif line == "---> Using cache":
                    cached = True
                elif line.startswith("Successfully built ") and image_id is None:
                    image_id = line.split()[-1]
        close_step()
    except ServiceError:
        raise
    except Exception as exc:
        raise api_error("image build", exc) from None
    if not image_id:
        raise ServiceError("image build finished without an image id", hint=" | ".join(tail[-5:]))
    return image_id, steps
