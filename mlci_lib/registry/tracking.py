"""Where the registry lives, how mlci reaches it, and what happens when the network misbehaves.

- The tracking URI comes from the caller, else ``MLFLOW_TRACKING_URI``, else an embedded SQLite
  store in the workspace (``.mlci/mlflow.db``, artifacts under ``.mlci/artifacts``), so a push works
  on a laptop and in CI with no server at all.
- Credentials stay in the environment (``MLFLOW_TRACKING_TOKEN``, ``MLFLOW_TRACKING_PASSWORD``, ...);
  :func:`secret_values` lists them so the CLI masks them before anything prints, and
  :func:`redact_uri` hides a password written into the URI itself.
- Retries follow mlci's one policy (:mod:`mlci_lib.retry`), not MLflow's: MLflow's client retries
  500 as well and backs off for minutes, and honours ``Retry-After`` without a ceiling. While
  :func:`mlflow_session` is active, every HTTP request MLflow makes (REST calls and artifact
  uploads alike) is sent once by MLflow and retried by mlci: 408, 429, 502, 503 and 504 and
  dropped connections with exponential backoff or the server's ``Retry-After`` (up to a
  ceiling), a bounded number of times; anything else fails at once.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError, MlciError, ServiceError
from mlci_lib.retry import (
    TRANSIENT_HTTP_STATUSES,
    RetryPolicy,
    Transient,
    call_with_retries,
    parse_retry_after,
)

#: Folder of the embedded default store, relative to the workspace.
DEFAULT_STORE_DIR = ".mlci"
#: Environment variables whose values are secrets of the tracking server or its artifact store.
SECRET_VARIABLES = (
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_APPLICATION_CREDENTIALS",
)
#: The retry policy of registry calls (the library default, stated here so it is documented once).
DEFAULT_POLICY = RetryPolicy(attempts=5, base_delay=0.5, max_delay=8.0, max_retry_after=60.0)

_ALLOWED_SCHEMES = ("http", "https", "sqlite", "file", "postgresql", "mysql", "mssql", "databricks")


def default_tracking_uri(workspace: str | os.PathLike[str] = ".") -> str:
    """The embedded SQLite store of a workspace: ``sqlite:///<workspace>/.mlci/mlflow.db``."""
    folder = Path(workspace).resolve() / DEFAULT_STORE_DIR
    return f"sqlite:///{folder / 'mlflow.db'}"


def default_artifact_location(tracking_uri: str) -> str | None:
    """Where experiments of the embedded store keep artifacts (beside the database), else None."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    # sqlite:///mlflow.db is relative to the current folder (MLflow's own examples write it so);
    # a file URI must be absolute.
    return (database.parent / "artifacts").absolute().as_uri()


def resolve_tracking_uri(
    tracking_uri: str | None = None,
    *,
    workspace: str | os.PathLike[str] = ".",
    environ: Mapping[str, str] | None = None,
) -> str:
    """The tracking URI to use: the argument, ``MLFLOW_TRACKING_URI``, or the embedded default."""
    env = os.environ if environ is None else environ
    uri = (tracking_uri or "").strip() or env.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        return default_tracking_uri(workspace)
    if any(ch.isspace() or ord(ch) < 32 for ch in uri):
        raise InputError(
            f"tracking URI {redact_uri(uri)!r} contains whitespace or control characters",
            hint="pass a URI like http://mlflow.example.com or sqlite:///path/mlflow.db",
        )
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    base_scheme = scheme.split("+", 1)[0]
    if base_scheme not in _ALLOWED_SCHEMES:
        if not scheme and not uri.startswith("-"):
            # A bare path is a file store in MLflow; mlci asks for an explicit URI instead.
            raise InputError(
                f"tracking URI {uri!r} has no scheme",
                hint=f"write sqlite:///{Path(uri).resolve()}/mlflow.db or an http(s):// server address",
            )
        raise InputError(
            f"tracking URI {redact_uri(uri)!r} has an unsupported scheme",
            hint=f"use one of {', '.join(s + '://' for s in _ALLOWED_SCHEMES)}",
        )
    return uri


def redact_uri(uri: str) -> str:
    """Hide the password of ``scheme://user:password@host`` URIs."""
    return re.sub(r"(://[^/:@\s]*):[^/@\s]*@", r"\1:***@", uri)


def secret_values(tracking_uri: str | None = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Secret strings a registry command must mask before printing anything."""
    env = os.environ if environ is None else environ
    secrets = [env[name] for name in SECRET_VARIABLES if env.get(name)]
    for uri in (tracking_uri, env.get("MLFLOW_TRACKING_URI")):
        if uri:
            password = urllib.parse.urlparse(uri).password
            if password:
                secrets.append(password)
                secrets.append(urllib.parse.unquote(password))
    return secrets


# -- HTTP retries ----------------------------------------------------------------------------------

_PATCH_LOCK = threading.Lock()
_ACTIVE: list[RetryPolicy] = []


def _rewind(kwargs: dict[str, Any]) -> Callable[[], None]:
    """A function that puts a file body back where it started, so a retry sends all of it."""
    body = kwargs.get("data")
    if body is not None and hasattr(body, "seek") and hasattr(body, "tell"):
        start = body.tell()
        return lambda: body.seek(start)
    return lambda: None


class _TransientResponse(Exception):
    def __init__(self, response: Any) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def classify_http_failure(error: BaseException) -> Transient | None:
    """Transient for retryable HTTP statuses and dropped or refused connections; None otherwise."""
    import requests

    if isinstance(error, _TransientResponse):
        return Transient(parse_retry_after(error.response.headers.get("Retry-After")))
    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        # Includes connections reset or closed mid-request (ChunkedEncodingError is not one).
        return Transient()
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return Transient()
    return None


def _wrap_transport(original: Callable[..., Any], policy_ref: list[RetryPolicy]) -> Callable[..., Any]:
    def send(method: str, url: str, max_retries: int, backoff_factor: Any, backoff_jitter: Any,
             retry_codes: Any, *args: Any, **kwargs: Any) -> Any:  # fmt: skip
        rewind = _rewind(kwargs)
        attempt_number = [0]

        def attempt() -> Any:
            if attempt_number[0]:
                rewind()
            attempt_number[0] += 1
            # MLflow sends exactly once (no retries, statuses returned, not raised); mlci decides.
            kwargs.pop("raise_on_status", None)
            if args:
                response = original(method, url, 0, 0, 0, retry_codes, False, *args[1:], **kwargs)
            else:
                response = original(method, url, 0, 0, 0, retry_codes, raise_on_status=False, **kwargs)
            if response.status_code in TRANSIENT_HTTP_STATUSES:
                raise _TransientResponse(response)
            return response

        try:
            return call_with_retries(attempt, classify_http_failure, policy=policy_ref[-1])
        except _TransientResponse as exhausted:
            # Out of attempts: hand MLflow the last response so it reports the status as usual.
            return exhausted.response

    send.__mlci_original__ = original  # type: ignore[attr-defined]
    return send


@contextlib.contextmanager
def http_retries(policy: RetryPolicy | None = None) -> Iterator[None]:
    """Route MLflow's HTTP requests through mlci's retry policy while the block runs."""
    import mlflow.utils.request_utils as request_utils
    import mlflow.utils.rest_utils as rest_utils

    modules = (request_utils, rest_utils)
    with _PATCH_LOCK:
        if not _ACTIVE:
            for module in modules:
                original = module._get_http_response_with_retries
                module._get_http_response_with_retries = _wrap_transport(original, _ACTIVE)
        _ACTIVE.append(policy or DEFAULT_POLICY)
    try:
        yield
    finally:
        with _PATCH_LOCK:
            _ACTIVE.pop()
            if not _ACTIVE:
                for module in modules:
                    wrapped = module._get_http_response_with_retries
                    module._get_http_response_with_retries = wrapped.__mlci_original__


# -- MLflow's usage telemetry ----------------------------------------------------------------------

#: MLflow's documented switch (``mlflow.telemetry.utils.is_telemetry_disabled``), read when
#: ``import mlflow`` decides whether to start its telemetry client.
TELEMETRY_SWITCH = "MLFLOW_DISABLE_TELEMETRY"


def import_mlflow_without_telemetry() -> None:
    """Import MLflow for mlci's own use with its usage telemetry off.

    MLflow's telemetry client writes and deletes ``_MLFLOW_TELEMETRY_SESSION_ID`` in
    ``os.environ`` from its background thread while requests in other threads read the
    environment; under load a push then failed with that name in a KeyError. The switch is set
    only while MLflow is imported (the client is created then or never) and put back afterwards,
    so the user's own commands keep their environment. A client started before mlci was called
    (MLflow imported by the caller) is stopped.
    """
    import sys

    if "mlflow" not in sys.modules:
        previous = os.environ.get(TELEMETRY_SWITCH)
        os.environ[TELEMETRY_SWITCH] = "true"
        try:
            import mlflow  # noqa: F401
        finally:
            if previous is None:
                os.environ.pop(TELEMETRY_SWITCH, None)
            else:
                os.environ[TELEMETRY_SWITCH] = previous
        return
    try:
        from mlflow.telemetry import client as telemetry
    except ImportError:
        return
    with _PATCH_LOCK:
        # Without a client, MLflow records nothing and its daemon threads find nothing to send.
        if telemetry.get_telemetry_client() is not None:
            telemetry._set_telemetry_client(None)


# -- errors ----------------------------------------------------------------------------------------


def mlflow_error_code(error: BaseException) -> str | None:
    return getattr(error, "error_code", None) if type(error).__name__.endswith("Exception") else None


def service_error(error: BaseException, *, doing: str, tracking_uri: str) -> MlciError:
    """Turn an MLflow or network failure into one line that names the server and the step."""
    if isinstance(error, MlciError):
        return error
    text = " ".join(str(error).split())
    text = redact_uri(text)
    if len(text) > 400:
        text = text[:400] + "..."
    code = mlflow_error_code(error)
    hint = "check that the tracking server is up and reachable, then rerun (pushes are idempotent)"
    if code in ("PERMISSION_DENIED", "UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED") or " 401 " in f" {text} ":
        hint = "check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD"
    return ServiceError(
        f"tracking server {redact_uri(tracking_uri)}: {doing} failed: {type(error).__name__}: {text}",
        hint=hint,
    )


#: The environment variables MLflow's URI setters write.
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextlib.contextmanager
def mlflow_session(
    tracking_uri: str | None = None,
    *,
    workspace: str | os.PathLike[str] = ".",
    policy: RetryPolicy | None = None,
) -> Iterator[Any]:
    """An ``MlflowClient`` for the resolved tracking URI, with mlci's retries and quiet logging.

    Yields the client; the resolved URI is ``client.tracking_uri``.
    """
    uri = resolve_tracking_uri(tracking_uri, workspace=workspace)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # Quiet MLflow's progress bars and its own environment inference before it is imported.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    import_mlflow_without_telemetry()
    import logging

    import mlflow
    from mlflow import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    # The fluent API (mlflow.sklearn.log_model) reads the process-wide URI: set it for the block
    # and put back whatever the caller had, so an in-process pipeline keeps its own setting.
    # MLflow's setters also export MLFLOW_TRACKING_URI and MLFLOW_REGISTRY_URI for subprocesses:
    # left behind, they would send a later client, or a workflow this process starts, to this
    # block's registry instead of its own. They are put back too.
    previous = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    previous_env = {name: os.environ.get(name) for name in _URI_VARIABLES}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        with http_retries(policy):
            try:
                client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            except MlciError:
                raise
            except Exception as error:
                raise service_error(error, doing="connecting", tracking_uri=uri) from None
            yield client
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = previous
        for name, value in previous_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
