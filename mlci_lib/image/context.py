"""The build context of the serving image: Dockerfile, dependencies, the mlci runtime, the model.

Layout (each folder is one ``COPY`` in the template, ordered from least to most often changed)::

    Dockerfile
    deps/requirements.txt     pinned serving requirements
    deps/prune.txt, prune.py  what the install step deletes again, and the script that does it
    deps/wheels/              the wheelhouse (wheelhouse mode only)
    app/mlci_lib/             the serving runtime (this package, without caches)
    bundle/model/             the model folder or file
    bundle/reference.json     the training reference (``--reference``), exported on /metrics
    bundle/info.json          what /version reports (name, version, uri, git commit, verdict digest),
                              the warm-up rows when sample data was given, and the loading
                              decisions the build made (trusted types, allow_pickle), which the
                              image's ``mlci serve`` applies

Every file gets mode 0644 and every folder 0755: the image runs as a non-root user, and the
builder's cache keys include file modes, so the same content must give the same modes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from mlci_lib.errors import ConfigError, InputError, ServiceError

#: Distributions the serving runtime imports, pinned to the versions that trained/saved the model.
SERVING_DISTRIBUTIONS: tuple[str, ...] = (
    "numpy",
    "pandas",
    "scikit-learn",
    "scipy",
    "skops",
    "joblib",
    "threadpoolctl",
    "pyyaml",
    "prometheus-client",
)

#: What the ONNX runtime's image needs instead: no scikit-learn, SciPy, skops or joblib, and no
#: pandas either (its requests are PlainTables, see mlci_lib.models.plain_table).
ONNX_SERVING_DISTRIBUTIONS: tuple[str, ...] = ("numpy", "onnxruntime", "prometheus-client")

DEFAULT_BASE_IMAGE = "python:3.12-slim"
DEFAULT_PLATFORM = "manylinux_2_28_x86_64"
DEFAULT_USER = "10001:10001"
DEFAULT_PORT = 8080
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def template_path() -> Path:
    return Path(__file__).resolve().parent.parent / "templates" / "docker" / "Dockerfile"


#: System packages (Debian) the wheels of a distribution need at run time and do not bundle:
#: LightGBM and XGBoost link the GNU OpenMP runtime, which ``python:3.x-slim`` lacks.
SYSTEM_PACKAGES_FOR: dict[str, tuple[str, ...]] = {
    "lightgbm": ("libgomp1",),
    "xgboost": ("libgomp1",),
}


def serving_requirements(extra: Iterable[str] = (), model_requirements: Iterable[str] = ()) -> list[str]:
    """Pinned requirements of the serving runtime: what is installed here, so predictions match.

    ``model_requirements`` are the distributions the model itself needs (``LoadedModel.requirements``,
    e.g. ``xgboost``), pinned to the version installed here; ``extra`` are the user's own
    specifiers, kept as written, and one that names a distribution already pinned replaces that pin
    (what the user writes wins over what mlci derives).
    """
    from mlci_lib.image.fields import check_requirement, requirement_name

    pins: dict[str, str] = {}
    for name in SERVING_DISTRIBUTIONS:
        try:
            pins[name] = f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            if name in ("numpy", "pandas", "scikit-learn", "skops"):
                raise ConfigError(
                    f"{name} is not installed, so the serving image cannot pin it",
                    hint="pip install mlci (which depends on it)",
                ) from None
    for needed in model_requirements:
        name = requirement_name(check_requirement(needed, option="model requirements"))
        if name in pins:
            continue
        try:
            pins[name] = f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            raise ConfigError(
                f"the model needs {name}, which is not installed where the image is built, "
                "so the serving image cannot pin its version",
                hint=f"pip install {name} (the version that trained the model) before building the image",
            ) from None
    own: dict[str, str] = {}
    for item in extra:
        if not item.strip():
            continue
        text = check_requirement(item)
        name = requirement_name(text)
        pins.pop(name, None)
        own[name] = text
    return [*pins.values(), *own.values()]


def distributions_of_types(type_names: Iterable[str]) -> list[str]:
    """The installed distributions that provide the modules of ``type_names``.

    A trusted type from a third-party package (``lightgbm.sklearn.LGBMClassifier`` inside a
    scikit-learn pipeline, a team's own ``acme_features.Encoder``) means the serving image cannot
    load the model without that package; standard-library types (``functools.partial``) need none.
    """
    from mlci_lib.image.fields import requirement_name

    provided = metadata.packages_distributions()
    out: list[str] = []
    for type_name in type_names:
        top = type_name.split(".", 1)[0]
        for distribution in provided.get(top, [])[:1]:
            name = requirement_name(distribution)
            if name not in out:
                out.append(name)
    return out


def system_packages_for(requirements: Iterable[str]) -> list[str]:
    """The system packages the pinned requirements need at run time (see SYSTEM_PACKAGES_FOR)."""
    from mlci_lib.image.fields import requirement_name

    out: list[str] = []
    for spec in requirements:
        for package in SYSTEM_PACKAGES_FOR.get(requirement_name(spec), ()):
            if package not in out:
                out.append(package)
    return out


def onnx_serving_requirements(extra: Iterable[str] = ()) -> list[str]:
    """Pinned requirements of the ONNX serving runtime (onnxruntime's own dependencies follow)."""
    pins = []
    for name in ONNX_SERVING_DISTRIBUTIONS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise ConfigError(
                f"{name} is not installed, so the ONNX serving image cannot pin it",
                hint="pip install onnxruntime skl2onnx onnxmltools",
            ) from None
    return pins + [line for line in serving_requirements(extra) if line not in serving_requirements()]


def render_dockerfile(
    template: str, values: Mapping[str, str], *, source: str = "Dockerfile template"
) -> str:
    """Fill ``{{ name }}`` placeholders; an unknown placeholder is a ConfigError."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ConfigError(
                f"{source}: unknown placeholder {{{{ {name} }}}}",
                hint=f"use only {', '.join(sorted(values))}",
            )
        return str(values[name])

    return _PLACEHOLDER.sub(fill, template)


_MANYLINUX = re.compile(r"manylinux_2_([0-9]+)_([a-z0-9_]+)")
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


def compatible_platforms(platform: str) -> list[str]:
    """``platform`` and every older manylinux tag a system of that tag also runs (PEP 600).

    ``pip download --platform`` takes a tag literally, so with only ``manylinux_2_28_x86_64`` a
    dependency published for ``manylinux_2_18`` (nvidia-nccl-cu12, which xgboost needs) is "not
    found" although the image would run it.
    """
    match = _MANYLINUX.fullmatch(platform)
    if not match:
        return [platform]
    glibc_minor, arch = int(match.group(1)), match.group(2)
    tags = []
    for minor in range(glibc_minor, 4, -1):
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in _LEGACY_MANYLINUX:
            tags.append(f"{_LEGACY_MANYLINUX[minor]}_{arch}")
    return tags


def _pip_download(requirements: Sequence[str], dest: Path, python_version: str, platform: str) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--quiet",
        "--only-binary=:all:",
        "--python-version",
        python_version,
        *[part for tag in compatible_platforms(platform) for part in ("--platform", tag)],
        "--implementation",
        "cp",
        "--dest",
        str(dest),
        *requirements,
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"pip download failed: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ServiceError(
            f"pip download of the serving wheels failed: {last}",
            hint=f"check that wheels exist for Python {python_version} on {platform}, "
            "or pass --python-version/--platform to match the base image",
        )


def _copy_tree(source: Path, target: Path, ignore: Any = None) -> None:
    shutil.copytree(source, target, ignore=ignore, symlinks=False)


def _normalise_modes(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)


def prepare_context(
    folder: Path,
    *,
    model: Path,
    base_image: str,
    requirements: Sequence[str],
    wheelhouse: bool,
    python_version: str,
    platform: str,
    info: Mapping[str, Any],
    warmup_rows: list[dict[str, Any]] | None,
    reference: Mapping[str, Any] | None = None,
    dockerfile: Path | None = None,
    user: str = DEFAULT_USER,
    port: int = DEFAULT_PORT,
    labels: Mapping[str, str] | None = None,
    system_packages: Sequence[str] = (),
    runtime: str = "native",
) -> tuple[Path, bool]:
    """Write the complete build context into ``folder``.

    ``runtime`` chooses what the install step prunes (see :mod:`mlci_lib.image.prune`).

    Returns the Dockerfile and whether it placed the labels itself (a custom Dockerfile without
    the ``labels`` placeholder gets them from the builder instead).
    """
    import mlci_lib
    from mlci_lib.image.fields import (
        check_platform,
        check_python_version,
        check_requirement,
        dockerfile_values,
    )

    check_python_version(python_version)
    check_platform(platform)
    requirements = [check_requirement(spec, option="requirements") for spec in requirements]
    values = dockerfile_values(
        base_image=base_image,
        pip_options="--no-index --find-links /tmp/mlci-deps/wheels" if wheelhouse else "",
        port=port,
        user=user,
        labels=label_instruction(labels or {}),
        system_packages=system_packages,
    )
    folder.mkdir(parents=True, exist_ok=True)
    deps = folder / "deps"
    deps.mkdir()
    (deps / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    from mlci_lib.image import prune

    (deps / "prune.txt").write_text(prune.prune_text(runtime), encoding="utf-8")
    shutil.copyfile(prune.__file__, deps / "prune.py")
    if wheelhouse:
        _pip_download(requirements, deps / "wheels", python_version, platform)
    package = Path(mlci_lib.__file__).resolve().parent
    _copy_tree(
        package,
        folder / "app" / "mlci_lib",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"),
    )
    bundle = folder / "bundle"
    bundle.mkdir()
    copy_model(model, bundle / "model")
    serving_info = dict(info)
    if warmup_rows:
        serving_info["warmup_rows"] = warmup_rows
    if reference is not None:
        (bundle / str(serving_info["reference"])).write_text(
            json.dumps(reference, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    (bundle / "info.json").write_text(
        json.dumps(serving_info, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    _normalise_modes(folder)
    source = dockerfile or template_path()
    try:
        template = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"Dockerfile template {source} cannot be read: {exc}", hint="check --dockerfile"
        ) from None
    rendered = render_dockerfile(template, values, source=str(source))
    target = folder / "Dockerfile"
    target.write_text(rendered, encoding="utf-8")
    target.chmod(0o644)
    return target, bool(_PLACEHOLDER.search(template) and "labels" in _PLACEHOLDER.findall(template))


def copy_model(model: Path, target: Path) -> None:
    """Copy the model into the context; nothing the model folder merely links to comes along."""
    from mlci_lib.files import copy_folder, copy_regular_file

    if model.is_dir():
        copy_folder(model, target, what="model folder")
    else:
        # A single file: loaded by content, not by name. The file the user named may be a link
        # (it loaded as a model, so its content is the model); a FIFO or device is refused.
        copy_regular_file(os.path.realpath(model), target, what="model file")


def label_instruction(labels: Mapping[str, str]) -> str:
    """``"key"="value" ...`` for one LABEL instruction (one step, not one per label)."""

    from mlci_lib.image.fields import label_text

    def quote(text: str) -> str:
        flat = label_text(text)
        return '"' + flat.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'

    items = [f"{quote(k)}={quote(v)}" for k, v in sorted(labels.items())]
    return " \\\n      ".join(items) if items else '"io.mlci.image"="serving"'
