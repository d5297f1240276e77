"""Install mlci for an action, from the action's own checkout, unless it is already there.

Run as a file (``python3 .../mlci_lib/install.py``) before mlci is importable, so it uses the
standard library only. Inputs arrive through the environment:

- ``MLCI_INSTALL_EXTRAS``: comma- or space-separated extras (data, registry, image, report, deploy, all);
- ``MLCI_INSTALL_VERSION``: a release to install from the package index instead of the checkout.

It skips pip entirely when that exact version and those extras are installed, then puts the
``mlci`` script's folder on ``$GITHUB_PATH`` and writes the ``version`` and ``python`` outputs.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

KNOWN_EXTRAS = ("data", "registry", "image", "report", "deploy")
_VERSION_PATTERN = re.compile(r"^[0-9][0-9A-Za-z.+!-]*$")


class InstallError(Exception):
    pass


def _escape_data(text: str) -> str:
    # The runner's own escapes for command data (as mlci_lib/runner.py, which is not importable yet).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _error(message: str) -> int:
    # Same shape as every other mlci failure: one annotation line, repeated in the job summary.
    text = " ".join(message.split())
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(f"::error title=mlci install::{_escape_data(text)}", file=sys.stderr)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                shown = (
                    text.replace("&", "&amp;")
                    .replace("<", "&lt;")
                    .replace(">", "&gt;")
                    .replace("@", "@\u200b")
                )
                handle.write(f"> [!CAUTION]\n> **mlci install**: {shown}\n")
    else:
        print(f"mlci install: error: {text}", file=sys.stderr)
    return 2


def parse_extras(raw: str) -> list[str]:
    extras: list[str] = []
    for item in raw.replace(",", " ").split():
        name = item.strip().lower()
        if name == "all":
            extras.extend(KNOWN_EXTRAS)
        elif name in KNOWN_EXTRAS:
            extras.append(name)
        else:
            raise InstallError(
                f"input extras: unknown extra {item!r}; choose from {', '.join((*KNOWN_EXTRAS, 'all'))}"
            )
    return sorted(set(extras))


def checkout_version(root: Path) -> str:
    text = (root / "mlci_lib" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        raise InstallError(f"cannot read __version__ from {root / 'mlci_lib' / '__init__.py'}")
    return match.group(1)


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s;\[<>=!~(]", requirement.strip(), maxsplit=1)[0]


def is_installed(version: str, extras: list[str]) -> bool:
    """True when mlci ``version`` is installed with every distribution its ``extras`` need."""
    try:
        dist = metadata.distribution("mlci")
    except metadata.PackageNotFoundError:
        return False
    if dist.version != version:
        return False
    for requirement in dist.requires or []:
        marker = requirement.partition(";")[2]
        wanted = re.findall(r'extra\s*==\s*"([^"]+)"', marker)
        if not wanted or not set(wanted) & set(extras):
            continue
        name = _requirement_name(requirement)
        if name == "mlci":
            continue
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return False
    return True


def _write_github_file(variable: str, text: str) -> None:
    path = os.environ.get(variable)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def main() -> int:
    # This file runs under whatever python3 the runner has, so the check is real.
    if sys.version_info < (3, 10):  # noqa: UP036
        return _error(
            f"mlci needs Python 3.10 or newer, found {sys.version.split()[0]}: "
            "add actions/setup-python with python-version: '3.12' before this step"
        )
    root = Path(__file__).resolve().parents[1]
    try:
        extras = parse_extras(os.environ.get("MLCI_INSTALL_EXTRAS", ""))
        requested = os.environ.get("MLCI_INSTALL_VERSION", "").strip()
        if requested and not _VERSION_PATTERN.match(requested):
            raise InstallError(f"input version: {requested!r} is not a version number (e.g. 0.1.0)")
        local = checkout_version(root)
    except InstallError as error:
        return _error(str(error))
    version = requested or local
    extra_text = f"[{','.join(extras)}]" if extras else ""
    if is_installed(version, extras):
        print(f"mlci {version}{extra_text} is already installed")
    else:
        target = (
            f"mlci{extra_text}=={requested}" if requested and requested != local else f"{root}{extra_text}"
        )
        command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", target]
        print(f"installing mlci {version}{extra_text}")
        if subprocess.run(command, check=False).returncode != 0:
            return _error(f"pip could not install {target}; see the lines above for pip's reason")
    scripts = sysconfig.get_path("scripts")
    _write_github_file("GITHUB_PATH", scripts + "\n")
    delimiter = f"MLCI_EOF_{uuid.uuid4().hex}"
    while delimiter in version or delimiter in sys.executable:  # a value must not end early
        delimiter = f"MLCI_EOF_{uuid.uuid4().hex}"
    _write_github_file(
        "GITHUB_OUTPUT",
        f"version<<{delimiter}\n{version}\n{delimiter}\npython<<{delimiter}\n{sys.executable}\n{delimiter}\n",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
