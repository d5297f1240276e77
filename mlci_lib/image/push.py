"""``mlci image push``: push a smoke-tested image and prove the registry has it.

Credentials come from the caller (the CLI reads the environment or stdin and masks them), never
from build arguments. Transient failures (HTTP 429/5xx, dropped connections) are retried with
:mod:`mlci_lib.retry`. Success means the registry answers the manifest by digest afterwards
(``HEAD /v2/<name>/manifests/<digest>``), not only that the engine said it pushed.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mlci_lib.errors import CheckFailed, InputError, ServiceError, UsageError
from mlci_lib.image.engine import api_error, check_tag, docker_client, split_repository
from mlci_lib.results import Result
from mlci_lib.retry import (
    TRANSIENT_HTTP_STATUSES,
    RetryPolicy,
    Transient,
    call_with_retries,
    parse_retry_after,
)

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
_TRANSIENT_WORDS = re.compile(
    r"timeout|timed out|connection reset|connection refused|broken pipe|EOF|"
    r"\b(408|429|502|503|504)\b|too ?many ?requests|service unavailable|bad gateway",
    re.IGNORECASE,
)


@dataclasses.dataclass(frozen=True)
class PushImageResult(Result):
    SCHEMA = "mlci.image-push"
    SCHEMA_VERSION = 1

    image_id: str
    repository: str
    digest: str
    references: tuple[str, ...]
    digest_reference: str
    verified: bool
    attempts: int


class _PushFailed(Exception):
    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def _smoke_check(smoke: Any, image_id: str) -> None:
    data = smoke.to_dict() if hasattr(smoke, "to_dict") else smoke
    if not isinstance(data, Mapping) or data.get("schema") != "mlci.image-smoke":
        raise InputError(
            "the smoke result is not an mlci smoke result (schema mlci.image-smoke)",
            hint="pass the file written by mlci image smoke --output",
        )
    if data.get("passed") is not True:
        raise CheckFailed(
            f"image {data.get('image')} did not pass its smoke test ({data.get('message')}); "
            "nothing was pushed",
            hint="fix the image or the model and run mlci image smoke again",
        )
    if data.get("image_id") != image_id:
        raise CheckFailed(
            f"the smoke test ran on image {str(data.get('image_id'))[:19]}, not on {image_id[:19]}; "
            "nothing was pushed",
            hint="smoke-test the image you push (run mlci image smoke after the last build)",
        )


def push_image(
    image: str,
    *,
    repository: str | None = None,
    tags: Sequence[str] | None = None,
    smoke: Any = None,
    require_smoke: bool = True,
    username: str | None = None,
    password: str | None = None,
    policy: RetryPolicy | None = None,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> PushImageResult:
    """Push ``image`` (an id or reference) as ``repository:tag`` for each tag, then verify the digest."""
    if (username is None) != (password is None):
        raise UsageError("give both a registry username and a password, or neither")
    client = docker_client()
    try:
        found = client.images.get(image)
    except Exception as exc:
        raise api_error(f"finding image {image}", exc) from None
    image_id = str(found.id)
    if require_smoke:
        if smoke is None:
            raise UsageError(
                f"image {image} has no smoke result; mlci pushes only smoke-tested images",
                hint="run mlci image smoke first and pass its --output file with --smoke-file, "
                "or pass --no-require-smoke",
            )
        _smoke_check(smoke, image_id)
    repo = repository
    if repo is None:
        if ":" in image.rsplit("/", 1)[-1] and not image.startswith("sha256:"):
            repo = image.rsplit(":", 1)[0]
        else:
            raise UsageError(f"cannot tell which repository to push {image} to", hint="pass --repository")
    registry, path = split_repository(repo)
    repo = f"{registry}/{path}" if registry else path
    if tags:
        chosen = [check_tag(t) for t in tags]
    else:
        chosen = [ref.rsplit(":", 1)[1] for ref in found.tags if ref.rsplit(":", 1)[0] == repo]
    if not chosen:
        raise UsageError(f"image {image} has no tag in {repo}", hint="pass --tag, or build with --repository")
    for tag in chosen:
        if f"{repo}:{tag}" not in found.tags:
            try:
                found.tag(repo, tag)
            except Exception as exc:
                raise api_error(f"tagging {image} as {repo}:{tag}", exc) from None
    auth = {"username": username, "password": password} if username is not None else None
    attempts = 0
    digest = ""
    for tag in chosen:

        def once(tag: str = tag) -> str:
            nonlocal attempts
            attempts += 1
            return _push_once(client, repo, tag, auth)

        try:
            digest = call_with_retries(once, _classify, policy=policy, on_retry=on_retry)
        except _PushFailed as exc:
            raise ServiceError(
                f"pushing {repo}:{tag} failed: {exc}",
                hint="check the registry address and the credentials (MLCI_REGISTRY_USERNAME/PASSWORD)",
            ) from None
    verified = _verify_manifest(registry, path, digest, username, password, policy)
    if not verified:
        raise ServiceError(
            f"the registry does not have {repo}@{digest} after the push",
            hint="the push did not complete; run it again and check the registry's storage",
        )
    return PushImageResult(
        image_id=image_id,
        repository=repo,
        digest=digest,
        references=tuple(f"{repo}:{t}" for t in chosen),
        digest_reference=f"{repo}@{digest}",
        verified=verified,
        attempts=attempts,
    )


def _push_once(client: Any, repo: str, tag: str, auth: dict[str, Any] | None) -> str:
    digest = None
    try:
        for chunk in client.images.push(repo, tag=tag, stream=True, decode=True, auth_config=auth):
            if "error" in chunk or "errorDetail" in chunk:
                detail = (
                    chunk.get("error") or (chunk.get("errorDetail") or {}).get("message") or "unknown error"
                )
                text = " ".join(str(detail).split())
                raise _PushFailed(text[:400], bool(_TRANSIENT_WORDS.search(text)))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
    except _PushFailed:
        raise
    except Exception as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        text = " ".join(str(exc).split())[:400]
        transient = status in TRANSIENT_HTTP_STATUSES or bool(_TRANSIENT_WORDS.search(text))
        raise _PushFailed(text, transient) from None
    if not digest:
        raise _PushFailed("the engine reported no digest for the push", False)
    return digest


def _classify(error: BaseException) -> Transient | None:
    if isinstance(error, _PushFailed) and error.transient:
        return Transient()
    return None


def registry_base_url(registry: str | None) -> str:
    if registry is None or registry in ("docker.io", "index.docker.io"):
        return "https://registry-1.docker.io"
    host = registry.split(":")[0]
    local = host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")
    return f"{'http' if local else 'https'}://{registry}"


def _verify_manifest(
    registry: str | None,
    path: str,
    digest: str,
    username: str | None,
    password: str | None,
    policy: RetryPolicy | None,
) -> bool:
    if registry is None and "/" not in path:
        path = f"library/{path}"
    url = f"{registry_base_url(registry)}/v2/{path}/manifests/{digest}"
    try:
        return call_with_retries(
            lambda: manifest_exists(url, username, password), _classify_http, policy=policy
        )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ServiceError(
            f"cannot check {url} in the registry: {exc}", hint="check the registry address and credentials"
        ) from None


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def manifest_exists(url: str, username: str | None = None, password: str | None = None) -> bool:
    """HEAD a manifest URL; follows the registry's Bearer token challenge when there is one."""
    headers = {"Accept": MANIFEST_TYPES}
    if username is not None and password is not None:
        headers["Authorization"] = _basic(username, password)
    try:
        return _head(url, headers)
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            raise
        challenge = exc.headers.get("WWW-Authenticate", "")
    token = _bearer_token(challenge, username, password)
    if token is None:
        raise ServiceError(f"the registry refused {url} (401) and offered no token service")
    return _head(url, {"Accept": MANIFEST_TYPES, "Authorization": f"Bearer {token}"})


def _head(url: str, headers: Mapping[str, str]) -> bool:
    request = urllib.request.Request(url, method="HEAD", headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return bool(200 <= response.status < 300)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def _bearer_token(challenge: str, username: str | None, password: str | None) -> str | None:
    if not challenge.lower().startswith("bearer "):
        return None
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", None)
    if not realm or not realm.startswith("https://"):
        return None
    query = urllib.parse.urlencode(params)
    request = urllib.request.Request(f"{realm}?{query}")
    if username is not None and password is not None:
        request.add_header("Authorization", _basic(username, password))
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, Any] = json.loads(response.read())
    token = body.get("token") or body.get("access_token")
    return str(token) if token else None


def _classify_http(error: BaseException) -> Transient | None:
    if isinstance(error, urllib.error.HTTPError):
        if error.code in TRANSIENT_HTTP_STATUSES:
            return Transient(parse_retry_after(error.headers.get("Retry-After")))
        return None
    if isinstance(error, (urllib.error.URLError, ConnectionError, TimeoutError)):
        return Transient()
    return None
