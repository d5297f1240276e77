"""The grammar of every value that reaches the serving image's Dockerfile or its pip requirements.

A Dockerfile is line-oriented: a newline in any rendered value starts a new instruction (``RUN``),
and a requirements file is too (``--index-url``, ``-r /etc/...``). So each value is checked against
the grammar of its field, wherever it came from (an option, an action input, ``${VAR}`` in
``mlci.yaml``), at the one place the Dockerfile values are put together:
:func:`dockerfile_values`. Each grammar is a full match of a fixed character set without
whitespace, so nothing the Dockerfile or a shell would read specially can pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from mlci_lib.errors import InputError

# The distribution (OCI) reference grammar, as Docker's reference package defines it:
#   reference  := name [ ":" tag ] [ "@" digest ]
#   name       := [domain "/"] path-component ["/" path-component]*
#   domain     := domain-component ["." domain-component]* [":" port-number]  (or [IPv6])
#   path-component := [a-z0-9]+ (separator [a-z0-9]+)*,  separator := [_.] | "__" | [-]+
#   tag        := [\w][\w.-]{0,127}
#   digest     := algorithm ":" hex{32,},  algorithm := [A-Za-z][A-Za-z0-9]* ([+._-] ...)*
_DOMAIN_COMPONENT = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
#: Python version for the wheels: 3.12, or 3.12.4.
PYTHON_VERSION = re.compile(r"3\.[0-9]{1,2}(?:\.[0-9]{1,3})?")
#: A wheel platform tag (PEP 425/600): manylinux_2_28_x86_64, musllinux_1_2_aarch64, linux_x86_64.
WHEEL_PLATFORM = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
#: Debian policy 5.6.1: at least two characters, lowercase letters, digits, '+', '-', '.',
#: starting with a letter or digit.
DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
#: A plain requirement specifier: name, optional extras, optional version clauses. No URL, no
#: environment marker, no pip option, no whitespace but blanks between the parts.
REQUIREMENT = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9,._-]+\])?"
    r"(?:[ \t]*(?:===|==|!=|~=|<=|>=|<|>)[ \t]*[A-Za-z0-9.*+!_-]+(?:[ \t]*,[ \t]*"
    r"(?:===|==|!=|~=|<=|>=|<|>)[ \t]*[A-Za-z0-9.*+!_-]+)*)?"
)
#: A non-root numeric user: uid or uid:gid.
USER = re.compile(r"[0-9]{1,10}(?::[0-9]{1,10})?")


def check_base_image(value: str, *, option: str = "--base-image") -> str:
    """``value`` if it is an image reference (``python:3.12-slim``, ``ghcr.io/o/py@sha256:...``)."""
    if len(value) > 512 or not IMAGE_REFERENCE.fullmatch(value):
        raise InputError(
            f"option {option}: {value!r} is not an image reference",
            hint="write it like python:3.12-slim or registry.example.com/team/python:3.12@sha256:<hex>",
        )
    return value


def check_python_version(value: str, *, option: str = "--python-version") -> str:
    if not PYTHON_VERSION.fullmatch(value):
        raise InputError(
            f"option {option}: {value!r} is not a Python version",
            hint="write it like 3.12 (the base image's)",
        )
    return value


def check_platform(value: str, *, option: str = "--platform") -> str:
    if len(value) > 100 or not WHEEL_PLATFORM.fullmatch(value):
        raise InputError(
            f"option {option}: {value!r} is not a wheel platform tag",
            hint="write it like manylinux_2_28_x86_64 or manylinux_2_28_aarch64",
        )
    return value


def check_user(value: str, *, option: str = "--user") -> str:
    if not USER.fullmatch(value) or int(value.split(":")[0]) == 0:
        raise InputError(
            f"option {option} must be a non-root numeric uid[:gid], got {value!r}", hint="e.g. 10001:10001"
        )
    return value


def check_port(value: object, *, option: str = "--port") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InputError(f"option {option} must be a port number (1-65535), got {value!r}")
    return value


def check_system_packages(values: Iterable[str], *, option: str = "--system-package") -> list[str]:
    """Debian package names, in order, without repeats."""
    out: list[str] = []
    for value in values:
        name = value.strip()
        if not name:
            continue
        if len(name) > 100 or not DEBIAN_PACKAGE.fullmatch(name):
            raise InputError(
                f"option {option}: {value!r} is not a Debian package name",
                hint="write the package name alone, like libgomp1 (lowercase letters, digits, '+', '-', '.')",
            )
        if name not in out:
            out.append(name)
    return out


def check_requirement(value: str, *, option: str = "--requirement") -> str:
    text = value.strip(" \t")
    if len(text) > 200 or not REQUIREMENT.fullmatch(text):
        raise InputError(
            f"option {option}: requirement {value!r} is not a plain requirement specifier",
            hint="write it like 'xgboost==2.1.0' (no URLs, options, markers or line breaks)",
        )
    return text


def requirement_name(spec: str) -> str:
    """The normalised distribution name of a requirement (PEP 503): ``Scikit_Learn>=1`` -> scikit-learn."""
    match = re.match(r"[A-Za-z0-9._-]+", spec)
    return re.sub(r"[-_.]+", "-", match.group(0) if match else spec).lower()


def label_text(value: object) -> str:
    """A label key or value on one line: whitespace runs (newlines too) become one blank, other
    control characters are dropped."""
    flat = " ".join(str(value).split())
    return "".join(ch for ch in flat if ch.isprintable())


def dockerfile_values(
    *,
    base_image: str,
    pip_options: str,
    port: int,
    user: str,
    labels: str,
    system_packages: Sequence[str],
) -> dict[str, str]:
    """The placeholders of the Dockerfile template, each checked against its field's grammar."""
    packages = check_system_packages(system_packages)
    return {
        "base_image": check_base_image(base_image),
        "pip_options": pip_options,
        "port": str(check_port(port)),
        "user": check_user(user),
        "labels": labels,
        "system_packages": " ".join(packages),
    }
