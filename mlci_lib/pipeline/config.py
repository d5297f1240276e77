"""The pipeline file (``mlci.yaml``): loading, ``${VAR}`` expansion and JSON Schema validation.

The schema ships with the package (``mlci_lib/schemas/mlci.schema.json``) so editors can complete
the file; :func:`load_config` validates against it and turns the first problem into a one-line
:class:`ConfigError` naming the key path. Relative paths resolve against the file's folder, which
is also where the user's commands run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from mlci_lib.errors import ConfigError

#: The stages in the order ``mlci run`` executes them.
STAGES: tuple[str, ...] = (
    "data-check",
    "train",
    "evaluate",
    "baseline",
    "gate",
    "model-push",
    "image-build",
    "image-smoke",
    "image-push",
    "deploy",
    "promote",
    "batch-predict",
)
DEFAULT_CONFIG = "mlci.yaml"
DEFAULT_OUTPUT_DIR = ".mlci"
DEFAULT_ALIAS = "champion"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@functools.lru_cache(maxsize=1)
def config_schema() -> dict[str, Any]:
    """The JSON Schema of ``mlci.yaml``."""
    text = resources.files("mlci_lib").joinpath("schemas/mlci.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """A validated pipeline file, with paths resolved against its folder."""

    path: Path
    root: Path
    raw: Mapping[str, Any]
    model_name: str | None
    model_path: Path
    alias: str
    trusted_types: tuple[str, ...]
    allow_pickle: bool
    tracking_uri: str | None
    data_paths: tuple[Path, ...]
    columns: Mapping[str, str]
    output_dir: Path
    verdict_file: Path
    stages: Mapping[str, Mapping[str, Any]]

    def resolve(self, value: str) -> Path:
        """A path from the file, relative to its folder unless absolute."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path

    def stage(self, name: str) -> Mapping[str, Any] | None:
        """The stage's settings, or None when the file leaves it out or disables it."""
        settings = self.stages.get(name)
        if settings is None or settings.get("enabled", True) is False:
            return None
        return settings

    @property
    def enabled_stages(self) -> list[str]:
        return [name for name in STAGES if self.stage(name) is not None]


def is_shell_script(where: str) -> bool:
    """Whether the key path ``where`` is a stage's ``shell:`` string (``stages.<name>.shell``)."""
    parts = where.split(".")
    return len(parts) == 3 and parts[0] == "stages" and parts[2] == "shell"


def shell_script(script: str, environ: Mapping[str, str], where: str) -> tuple[str, dict[str, str]]:
    """A ``shell:`` string ready for ``/bin/sh -c`` and the variables to run it with.

    A ``${VAR}`` value is data, not code: splicing it into the script would let a value like
    ``x; curl ... | sh`` run. So the value is passed to the shell as the environment variable
    ``VAR`` and the script keeps ``${VAR}``, which the shell expands as a parameter (its result is
    never parsed again for ``;``, ``|``, ``$(...)``); quote it (``"${VAR}"``) as in any shell script
    to keep it one word. A ``${VAR:-default}`` whose variable is unset or empty becomes its
    default text: that text is written in the pipeline file, as code is. An unset variable without
    a default is an error, as everywhere else in the file.
    """
    env: dict[str, str] = {}

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = environ.get(name)
        if found:
            env[name] = found
            return "${" + name + "}"
        if default is not None:
            return default
        raise ConfigError(
            f"{where}: environment variable {name} is not set",
            hint=f"set {name}, or write ${{{name}:-default}} to give a default",
        )

    return _VAR.sub(substitute, script), env


def expand_variables(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of ``value`` (no shell involved).

    A stage's ``shell:`` string is left as written (its variables are checked): the stage passes
    their values to the shell as environment variables, see :func:`shell_script`.
    """
    if isinstance(value, str) and is_shell_script(where):
        shell_script(value, environ, where)
        return value
    if isinstance(value, dict):
        return {
            k: expand_variables(v, environ, f"{where}.{k}" if where else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_variables(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        raise ConfigError(
            f"{where}: environment variable {name} is not set",
            hint=f"set {name}, or write ${{{name}:-default}} to give a default",
        )

    return _VAR.sub(substitute, value)


def _did_you_mean(error: Any) -> str:
    """ " (did you mean max-drop?)" for an unknown key near one the schema section takes."""
    from mlci_lib.options import suggest

    section = error.instance if isinstance(error.instance, Mapping) else {}
    known = list(error.schema.get("properties", {}))
    if error.schema.get("$ref") == "#/$defs/command-stage":  # evaluate adds keys to a command stage
        known += list(config_schema()["$defs"]["command-stage"]["properties"])
    for key in section:
        if key not in known:
            return suggest(str(key), known)
    return ""


def _schema_error(path: Path, data: Any) -> ConfigError | None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(e.absolute_path)))
    if not errors:
        return None
    error = jsonschema.exceptions.best_match(errors) or errors[0]
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    message = " ".join(error.message.split())
    if len(message) > 200:
        message = message[:200] + "..."
    hint = "see the comments 'mlci init' writes in mlci.yaml, or mlci_lib/schemas/mlci.schema.json"
    if error.validator == "additionalProperties" or error.validator == "unevaluatedProperties":
        hint = "remove or rename the key; the schema lists the keys each section takes"
        message += _did_you_mean(error)
    return ConfigError(f"pipeline file {path}: {where}: {message}", hint=hint)


def _check_image_build(file: Path, settings: Mapping[str, Any] | None) -> None:
    """Check the image-build values that reach the Dockerfile, once ``${VAR}`` is expanded: a bad
    one stops the run here, before training, and not when the image is built."""
    from mlci_lib.errors import InputError
    from mlci_lib.image import fields

    if not settings:
        return
    checks: list[tuple[str, Any]] = [
        ("base-image", fields.check_base_image),
        ("python-version", fields.check_python_version),
    ]
    for key, check in checks:
        if key in settings:
            try:
                check(str(settings[key]), option=f"stages.image-build.{key}")
            except InputError as exc:
                raise ConfigError(f"pipeline file {file}: {exc.message}", hint=exc.hint) from None
    for key, check_one in (
        ("requirements", fields.check_requirement),
        ("system-packages", lambda v, option: fields.check_system_packages([v], option=option)),
    ):
        for index, value in enumerate(settings.get(key) or ()):
            try:
                check_one(str(value), option=f"stages.image-build.{key}[{index}]")
            except InputError as exc:
                raise ConfigError(f"pipeline file {file}: {exc.message}", hint=exc.hint) from None


def _check_deploy(file: Path, settings: Mapping[str, Any] | None, section: Any, model_name: Any) -> None:
    """Check the deploy stage and the deploy section it renders from before anything runs: a
    missing or bad deploy section stops the run here, not after the image was pushed."""
    if settings is None or settings.get("enabled", True) is False:
        return
    from mlci_lib.deploy.config import parse_deploy_config
    from mlci_lib.pipeline.deploy_settings import parse_deploy_stage

    try:
        parse_deploy_stage(settings)
        parse_deploy_config(section, default_name=model_name)
    except ConfigError as exc:
        raise ConfigError(f"pipeline file {file}: {exc.message}", hint=exc.hint) from None


def load_config(
    path: str | os.PathLike[str] = DEFAULT_CONFIG, *, environ: Mapping[str, str] | None = None
) -> PipelineConfig:
    """Read and validate a pipeline file; raise :class:`ConfigError` naming the first problem."""
    from mlci_lib.files import read_mapping

    file = Path(path)
    if file.is_dir():
        file = file / DEFAULT_CONFIG
    if not file.exists():
        raise ConfigError(
            f"pipeline file {file} does not exist", hint="write one with 'mlci init', or pass --config"
        )
    raw = read_mapping(file, what="pipeline file")
    env = os.environ if environ is None else environ
    data = expand_variables(raw, env)
    problem = _schema_error(file, data)
    if problem is not None:
        raise problem
    root = file.resolve().parent

    def resolve(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else root / p

    model = data.get("model") or {}
    from mlci_lib.models import trusted_types_from

    data_field = data.get("data") or []
    data_paths = tuple(resolve(p) for p in ([data_field] if isinstance(data_field, str) else data_field))
    output_dir = resolve(data.get("output-dir", DEFAULT_OUTPUT_DIR))
    verdict_file = (
        resolve(data["verdict-file"]) if "verdict-file" in data else output_dir / "pipeline-verdict.json"
    )
    columns = {"id": "id", "label": "label", "prediction": "prediction", "score": "score"}
    columns["proba-prefix"] = "proba_"
    columns.update(data.get("columns") or {})
    stages = data["stages"]
    _check_image_build(file, stages.get("image-build"))
    _check_deploy(file, stages.get("deploy"), data.get("deploy"), model.get("name"))
    needs_model = [s for s in ("baseline", "model-push", "promote", "image-build") if s in stages]
    if needs_model and not model.get("name"):
        raise ConfigError(
            f"pipeline file {file}: stage {needs_model[0]} needs model.name",
            hint="add 'model: {name: my-model}' to the file",
        )
    return PipelineConfig(
        path=file.resolve(),
        root=root,
        raw=data,
        model_name=model.get("name"),
        model_path=resolve(model.get("path", "model")),
        alias=model.get("alias", DEFAULT_ALIAS),
        trusted_types=trusted_types_from(model.get("trusted-types")),
        allow_pickle=bool(model.get("allow-pickle", False)),
        tracking_uri=((data.get("registry") or {}).get("tracking-uri") or None),
        data_paths=data_paths,
        columns=columns,
        output_dir=output_dir,
        verdict_file=verdict_file,
        stages=stages,
    )
