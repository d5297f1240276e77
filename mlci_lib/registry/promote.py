"""`mlci model promote` and `mlci model rollback`: move an alias, only to versions that passed.

Each promotion records the alias's previous holder in a tag of the registered model,
``mlci.alias.<alias>.history`` (a JSON list of version numbers, oldest first, at most
:data:`HISTORY_LIMIT`). ``rollback`` moves the alias back to the last entry that still exists and
removes it from the list, so repeated rollbacks walk further back. An alias moved by hand (outside
mlci) is still recorded as the previous holder the next time mlci promotes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, ClassVar

from mlci_lib.errors import CheckFailed, InputError, MlciError
from mlci_lib.registry.push import TAG_PASSED, TAG_SUMMARY, validate_model_name, validate_version
from mlci_lib.registry.tracking import mlflow_error_code, mlflow_session, redact_uri, service_error
from mlci_lib.results import Result
from mlci_lib.retry import RetryPolicy

HISTORY_LIMIT = 50
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


@dataclasses.dataclass(frozen=True)
class PromotionResult(Result):
    SCHEMA: ClassVar[str] = "mlci.model-promotion"
    SCHEMA_VERSION: ClassVar[int] = 1

    name: str
    alias: str
    version: str  # the alias's holder now
    previous_version: str | None  # the holder before this call
    action: str  # promoted | unchanged | rolled-back
    model_uri: str  # models:/NAME@ALIAS
    history: tuple[str, ...]
    tracking_uri: str
    passed: bool = True


def history_tag(alias: str) -> str:
    return f"mlci.alias.{alias}.history"


def validate_alias(alias: str, *, option: str = "--alias") -> str:
    text = (alias or "").strip()
    if not _ALIAS.match(text) or text.lower() == "latest" or re.fullmatch(r"[vV]\d+", text):
        raise InputError(
            f"alias {alias!r} (option {option}) is not a valid alias",
            hint="use letters, digits, '_' or '-', not 'latest' and not v<number>, e.g. champion",
        )
    return text


def _holder(client: Any, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception as error:
        if mlflow_error_code(error) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _history(registered: Any, alias: str) -> list[str]:
    raw = (registered.tags or {}).get(history_tag(alias))
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        return []
    return [str(v) for v in data if str(v).isdigit()] if isinstance(data, list) else []


def _write_history(client: Any, name: str, alias: str, history: list[str]) -> None:
    client.set_registered_model_tag(name, history_tag(alias), json.dumps(history[-HISTORY_LIMIT:]))


def _registered(client: Any, name: str, uri: str) -> Any:
    try:
        return client.get_registered_model(name)
    except Exception as error:
        if mlflow_error_code(error) == "RESOURCE_DOES_NOT_EXIST":
            raise InputError(
                f"no registered model {name!r} on {redact_uri(uri)}",
                hint="push it first with mlci model push, and check the name and --tracking-uri",
            ) from None
        raise


def promote_model(
    name: str,
    version: str | int,
    alias: str = "champion",
    *,
    tracking_uri: str | None = None,
    workspace: str | os.PathLike[str] = ".",
    policy: RetryPolicy | None = None,
) -> PromotionResult:
    """Point ``alias`` at ``version`` if its ``mlci.verdict.passed`` tag is ``true``.

    Raises :class:`CheckFailed` (exit 1) for a version whose verdict did not pass or is unknown.
    """
    name = validate_model_name(name, option="NAME")
    version = validate_version(version)
    alias = validate_alias(alias)
    with mlflow_session(tracking_uri, workspace=workspace, policy=policy) as client:
        uri = client.tracking_uri
        try:
            registered = _registered(client, name, uri)
            try:
                mv = client.get_model_version(name, version)
            except Exception as error:
                if mlflow_error_code(error) == "RESOURCE_DOES_NOT_EXIST":
                    raise InputError(
                        f"model {name} has no version {version} on {redact_uri(uri)}",
                        hint="check the version (mlci model push prints it)",
                    ) from None
                raise
            tags = dict(mv.tags or {})
            if tags.get(TAG_PASSED) != "true":
                why = tags.get(TAG_SUMMARY) or f"it has no {TAG_PASSED} tag"
                raise CheckFailed(
                    f"refusing to move alias {alias} of {name} to version {version}: its verdict did not "
                    f"pass ({why})",
                    hint="promote a version pushed with a passing verdict",
                )
            previous = _holder(client, name, alias)
            history = _history(registered, alias)
            if previous == version:
                action = "unchanged"
            else:
                if previous is not None:
                    history.append(previous)
                    _write_history(client, name, alias, history)
                client.set_registered_model_alias(name, alias, version)
                action = "promoted"
        except MlciError:
            raise
        except Exception as error:
            raise service_error(error, doing=f"moving alias {alias} of {name}", tracking_uri=uri) from None
        return PromotionResult(
            name=name,
            alias=alias,
            version=version,
            previous_version=previous,
            action=action,
            model_uri=f"models:/{name}@{alias}",
            history=tuple(history[-HISTORY_LIMIT:]),
            tracking_uri=redact_uri(uri),
        )


def rollback_model(
    name: str,
    alias: str = "champion",
    *,
    tracking_uri: str | None = None,
    workspace: str | os.PathLike[str] = ".",
    policy: RetryPolicy | None = None,
) -> PromotionResult:
    """Move ``alias`` back to the version that held it before the last promotion."""
    name = validate_model_name(name, option="NAME")
    alias = validate_alias(alias)
    with mlflow_session(tracking_uri, workspace=workspace, policy=policy) as client:
        uri = client.tracking_uri
        try:
            registered = _registered(client, name, uri)
            current = _holder(client, name, alias)
            history = _history(registered, alias)
            target = None
            while history and target is None:
                candidate = history.pop()
                if candidate == current:
                    continue
                try:
                    client.get_model_version(name, candidate)
                except Exception as error:
                    if mlflow_error_code(error) == "RESOURCE_DOES_NOT_EXIST":
                        continue  # deleted since: look further back
                    raise
                target = candidate
            if target is None:
                raise CheckFailed(
                    f"cannot roll back alias {alias} of {name}: no earlier holder is recorded",
                    hint="mlci records the previous holder each time mlci model promote moves the alias; "
                    "promote a version explicitly instead",
                )
            client.set_registered_model_alias(name, alias, target)
            _write_history(client, name, alias, history)
        except MlciError:
            raise
        except Exception as error:
            raise service_error(
                error, doing=f"rolling back alias {alias} of {name}", tracking_uri=uri
            ) from None
        return PromotionResult(
            name=name,
            alias=alias,
            version=target,
            previous_version=current,
            action="rolled-back",
            model_uri=f"models:/{name}@{alias}",
            history=tuple(history),
            tracking_uri=redact_uri(uri),
        )
