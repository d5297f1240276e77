"""`mlci model promote` and `mlci model rollback`: move an alias, only to versions that passed.

A version is promotable when mlci pushed it with a passing verdict of its own model, and that
verdict still checks out: its ``mlci.`` tags (which only mlci writes) say it passed, the verdict
logged with its run has the digest the tags recorded, agrees with itself, and names the model
digest and the data fingerprint the version carries. A version pushed without a verdict, or
tagged by hand, is never promoted; a rollback target is checked the same way.

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
from mlci_lib.registry.push import (
    TAG_DATA,
    TAG_PASSED,
    TAG_SUMMARY,
    TAG_VERDICT_DIGEST,
    TAG_VERDICT_MODEL,
    VERDICT_ARTIFACT,
    validate_model_name,
    validate_version,
)
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


def promotion_problem(client: Any, mv: Any) -> str | None:
    """Why model version ``mv`` may not hold an alias (None: it may); see the module doc."""
    import tempfile
    from pathlib import Path

    from mlci_lib.files import read_json
    from mlci_lib.registry.verdicts import read_verdict, verdict_digest

    tags = dict(mv.tags or {})
    if tags.get(TAG_PASSED) != "true":
        return f"its verdict did not pass ({tags.get(TAG_SUMMARY) or f'it has no {TAG_PASSED} tag'})"
    expected = tags.get(TAG_VERDICT_DIGEST)
    if not expected or not mv.run_id:
        return (
            "it carries no verdict mlci can check again (it was pushed without one, or by an older "
            "mlci): gate the model and push it from a new commit"
        )
    with tempfile.TemporaryDirectory(prefix="mlci-promote-") as tmp:
        try:
            local = client.download_artifacts(str(mv.run_id), VERDICT_ARTIFACT, tmp)
        except Exception as error:
            # Only "not there" is an answer; any other failure is the server's (a ServiceError).
            if (
                not isinstance(error, FileNotFoundError)
                and mlflow_error_code(error) != "RESOURCE_DOES_NOT_EXIST"
            ):
                raise
            return f"its run {mv.run_id} holds no {VERDICT_ARTIFACT}"
        if not Path(local).is_file():
            return f"its run {mv.run_id} holds no {VERDICT_ARTIFACT}"
        try:
            data = read_json(local, what="logged verdict")
            if not isinstance(data, dict) or verdict_digest(data) != expected:
                return "the verdict logged with its run is not the one it was pushed with"
            info = read_verdict(data)
        except InputError as error:
            return f"the verdict logged with its run is not valid ({error.message})"
    if not info.passed:
        return f"the verdict logged with its run did not pass ({info.summary})"
    if not info.model_digest or info.model_digest != tags.get(TAG_VERDICT_MODEL):
        return "the verdict logged with its run is not about this version's model"
    if info.data_fingerprint and tags.get(TAG_DATA) and info.data_fingerprint != tags[TAG_DATA]:
        return "the verdict logged with its run was computed on other data than the version records"
    return None


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
    """Point ``alias`` at ``version`` if it is promotable (see the module doc).

    Raises :class:`CheckFailed` (exit 1) for a version whose verdict did not pass, is unknown, or
    does not check out again.
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
            problem = promotion_problem(client, mv)
            if problem is not None:
                raise CheckFailed(
                    f"refusing to move alias {alias} of {name} to version {version}: {problem}",
                    hint="promote a version pushed with a passing verdict of its own model",
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
                    held = client.get_model_version(name, candidate)
                except Exception as error:
                    if mlflow_error_code(error) == "RESOURCE_DOES_NOT_EXIST":
                        continue  # deleted since: look further back
                    raise
                problem = promotion_problem(client, held)
                if problem is not None:
                    raise CheckFailed(
                        f"cannot roll back alias {alias} of {name} to version {candidate}: {problem}",
                        hint="promote a version that passed explicitly instead",
                    )
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
