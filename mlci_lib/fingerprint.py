"""Content fingerprints of data files, folders and models, for provenance tags and caching."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from mlci_lib.errors import InputError

_CHUNK = 1 << 20


def _hash_file(path: Path, digest: "hashlib._Hash") -> None:
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)


def fingerprint_path(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file's bytes, or of a folder's relative paths and file contents.

    Folders are walked in sorted order and hidden entries are skipped, so the same content
    gives the same fingerprint on any machine.
    """
    root = Path(path)
    if not root.exists():
        raise InputError(f"cannot fingerprint {root}: it does not exist")
    digest = hashlib.sha256()
    if root.is_file():
        _hash_file(root, digest)
        return f"sha256:{digest.hexdigest()}"
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(f for f in filenames if not f.startswith(".")):
            file = Path(dirpath, name)
            digest.update(file.relative_to(root).as_posix().encode() + b"\0")
            _hash_file(file, digest)
            digest.update(b"\0")
    return f"sha256:{digest.hexdigest()}"


def data_fingerprint(paths: Iterable[str | os.PathLike[str]]) -> str | None:
    """One fingerprint for a set of data files: a file's own, or each one's combined with its name.

    The gate, the push and the pipeline all fingerprint their data with this function, so a
    verdict's data fingerprint and a version's tag compare equal for the same files, in whatever
    order each was given them (``mlci.yaml`` lists them one way, a ``--data`` option another).
    """
    items = [Path(p) for p in paths]
    if not items:
        return None
    if len(items) == 1:
        return fingerprint_path(items[0])
    digest = hashlib.sha256()
    for name, file_digest in sorted((path.name, fingerprint_path(path)) for path in items):
        digest.update(f"{name}\0{file_digest}\n".encode())
    return f"sha256:{digest.hexdigest()}"
