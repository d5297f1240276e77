"""The Docker engine connection, and Docker's errors turned into mlci errors.

The ``docker`` SDK is imported here only, inside functions, so nothing else in mlci pays for it.
"""

from __future__ import annotations

import re
from typing import Any

from mlci_lib.errors import ConfigError, InputError, ServiceError

_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(
    rf"^(?:(?P<registry>[A-Za-z0-9.-]+(?::[0-9]+)?)/)?(?P<path>{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*)$"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def docker_client() -> Any:
    """A client for the engine in ``DOCKER_HOST`` (or the default socket); ServiceError if none answers."""
    try:
        import docker
    except ImportError:
        raise ConfigError("the docker package is not installed", hint="pip install 'mlci[image]'") from None
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except Exception as exc:
        raise ServiceError(
            f"cannot reach the Docker engine: {' '.join(str(exc).split())[:200]}",
            hint="start Docker, or set DOCKER_HOST to a running engine",
        ) from None
    return client


def split_repository(repository: str, *, option: str = "--repository") -> tuple[str | None, str]:
    """``(registry host or None, path)`` of an image repository; InputError when it is not one."""
    text = repository.strip()
    match = _REPOSITORY.fullmatch(text)
    if not match:
        raise InputError(
            f"option {option}: {repository!r} is not an image repository name",
            hint="write it like registry.example.com/team/model (lowercase, no tag)",
        )
    registry, path = match.group("registry"), match.group("path")
    # The first component is a registry only when it looks like a host (has '.' or ':' or is localhost).
    if registry is not None and not ("." in registry or ":" in registry or registry == "localhost"):
        return None, f"{registry.lower()}/{path}"
    return registry, path


def check_tag(tag: str, *, option: str = "--tag") -> str:
    # fullmatch: "$" in a pattern also matches before a final newline, so "v1\n" would pass.
    if not _TAG.fullmatch(tag):
        raise InputError(
            f"option {option}: {tag!r} is not a valid image tag",
            hint="use letters, digits, '_', '.' and '-' (at most 128), not starting with '.' or '-'",
        )
    return tag


def sanitize_tag(text: str) -> str:
    """Turn a branch name or version into a valid tag (invalid characters become '-')."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text).lstrip(".-")[:128]
    return cleaned or "untagged"


def api_error(action: str, exc: BaseException) -> ServiceError:
    text = " ".join(str(getattr(exc, "explanation", None) or exc).split())
    return ServiceError(f"{action} failed: {text[:400]}", hint="see the Docker engine's message above")
