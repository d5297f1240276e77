"""Reading and writing the small files mlci exchanges: JSON, YAML, text.

Writes are atomic (a temporary file in the same folder, then ``os.replace``) so a report or a
verdict that existed before is never left half-written. Reads turn every way a file can be bad
into an :class:`InputError` that names the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlci_lib.errors import ConfigError, InputError, MlciError

#: Schema of the record that stands in a result file while its command runs, or after it failed.
ERROR_SCHEMA = "mlci.error"


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a mix."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (images and other binary outputs)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` (already JSON-compatible) as indented JSON, atomically.

    A document that names one of mlci's schemas is checked against it first: one that does not
    match is never written for a later step to trust (see :mod:`mlci_lib.result_schemas`).
    """
    from mlci_lib import result_schemas

    if result_schemas.names_a_schema(data):
        result_schemas.check(data, what=f"{Path(path)}")
    return write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def existing_file(path: str | os.PathLike[str], *, what: str, option: str | None = None) -> Path:
    """Return ``path`` if it is a readable, non-empty regular file; raise InputError otherwise."""
    file = Path(path)
    where = f" (option {option})" if option else ""
    if not file.exists():
        raise InputError(f"{what} {file}{where} does not exist", hint="check the path")
    if file.is_dir():
        raise InputError(f"{what} {file}{where} is a directory, expected a file")
    if file.stat().st_size == 0:
        raise InputError(f"{what} {file}{where} is empty (0 bytes)", hint="regenerate it")
    return file


def read_text(path: str | os.PathLike[str], *, what: str, option: str | None = None) -> str:
    file = existing_file(path, what=what, option=option)
    try:
        # utf-8-sig: a byte-order mark (as Windows editors write it) is not part of the text.
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} {file} is not UTF-8 text (byte {exc.start})", hint="save it as UTF-8"
        ) from None
    except OSError as exc:
        raise InputError(f"{what} {file} cannot be read: {exc.strerror}") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def read_json(path: str | os.PathLike[str], *, what: str, option: str | None = None) -> Any:
    """Parse a JSON file; NaN and Infinity are refused since they are not JSON, and so is a key
    written twice in one object (json keeps the last silently, as YAML does)."""
    text = read_text(path, what=what, option=option)

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON value")

    try:
        return json.loads(text, parse_constant=refuse_constant, object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey as exc:
        # json gives no position for a hook's error: the lines where the key is written.
        import re

        pattern = re.escape(json.dumps(exc.key)) + r"\s*:"
        lines = [text.count("\n", 0, m.start()) + 1 for m in re.finditer(pattern, text)]
        where = f" (lines {', '.join(map(str, lines[:2]))})" if len(lines) >= 2 else ""
        raise InputError(
            f"{what} {path}: key {exc.key!r} appears twice in one object{where}",
            hint="keep one of them: JSON readers silently keep only the last",
        ) from None
    except ValueError as exc:
        raise InputError(f"{what} {path} is not valid JSON: {exc}", hint="fix the file") from None


def read_yaml(path: str | os.PathLike[str], *, what: str, option: str | None = None) -> Any:
    """Parse a YAML file with mlci's one YAML loader (safe, no duplicate keys, no alias bombs)."""
    from mlci_lib.yamlfile import load_yaml_text

    return load_yaml_text(read_text(path, what=what, option=option), source=str(path), what=what)


def read_mapping(path: str | os.PathLike[str], *, what: str, option: str | None = None) -> dict[str, Any]:
    """Read a JSON or YAML file (by extension) whose top level must be a mapping."""
    suffix = Path(path).suffix.lower()
    data = (
        read_json(path, what=what, option=option)
        if suffix == ".json"
        else read_yaml(path, what=what, option=option)
    )
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping at the top level, found {type(data).__name__}")
    return data


# -- result files ---------------------------------------------------------------------------------


def output_file(path: str | os.PathLike[str], *, what: str, option: str | None = None) -> Path:
    """``path`` as a file mlci may write: refused (InputError) when it is a folder or under a file."""
    target = Path(path)
    where = f" (option {option})" if option else ""
    if str(path).strip() == "":
        raise InputError(f"the {what} file name{where} is empty", hint="name a file to write")
    if target.is_dir():
        raise InputError(f"{what} {target}{where} is a directory", hint="name a file inside it instead")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{what} {target}{where}: {parent} is a file, not a folder")
            break
    return target


def error_record(command: str, message: str, *, status: str = "error", exit_code: int = 2) -> dict[str, Any]:
    """What a result file holds while ``command`` runs (``status: running``) or after it failed."""
    return {
        "schema": ERROR_SCHEMA,
        "schema_version": 1,
        "passed": False,
        "status": status,
        "command": command,
        "error": message,
        "exit_code": exit_code,
    }


class ResultFiles:
    """The result files of one command: none of them may outlive a run as if it had passed.

    :meth:`claim` replaces a JSON result (verdict, result, latency file) at once with a record
    that says ``passed: false`` (``status: running``), and removes any other result (a table, a
    report), before the command reads its first input. The command then writes its real result;
    if it stops on an error instead, :meth:`fail` writes the error into every claimed JSON file.
    A claimed JSON file the command did not write ends with the reason it was not written.
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self._placeholders: dict[Path, str] = {}
        self._on_failure: list[Path] = []

    def claim(
        self,
        path: str | os.PathLike[str],
        *,
        what: str = "result",
        option: str | None = None,
        json_record: bool = True,
        replace_now: bool = True,
    ) -> Path:
        """Take ``path`` over for this run (see the class doc); ``replace_now=False`` only marks it
        for the error record on failure (a file the command itself reads before rewriting it)."""
        target = output_file(path, what=what, option=option)
        if not json_record:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            return target
        if replace_now:
            text = _record_text(
                error_record(self.command, f"{self.command} has not finished", status="running")
            )
            write_text_atomic(target, text)
            self._placeholders[target] = text
        else:
            self._on_failure.append(target)
        return target

    def fail(self, message: str, exit_code: int = 2) -> None:
        """Write the error into every claimed JSON file (best effort: the error itself is reported)."""
        text = _record_text(error_record(self.command, message, exit_code=exit_code))
        for target in [*self._placeholders, *self._on_failure]:
            with contextlib.suppress(OSError):
                write_text_atomic(target, text)
        self._placeholders.clear()
        self._on_failure.clear()

    def finish(self, exit_code: int | None = None) -> None:
        """After a run without error: a placeholder still in place says why nothing was written."""
        for target, placeholder in self._placeholders.items():
            try:
                still = target.read_text(encoding="utf-8") == placeholder
            except OSError:
                continue
            if still:
                code = "" if exit_code is None else f" (exit code {exit_code})"
                message = f"{self.command} ended{code} without writing this file"
                record = error_record(self.command, message, status="not-written", exit_code=exit_code or 0)
                with contextlib.suppress(OSError):
                    write_text_atomic(target, _record_text(record))
        self._placeholders.clear()
        self._on_failure.clear()


def _record_text(record: dict[str, Any]) -> str:
    # Not checked against mlci.error's schema here: a serving image writes these placeholders too
    # and carries no JSON Schema validator. error_record is their one builder, and a test checks
    # every status it writes against the schema.
    return json.dumps(record, indent=2) + "\n"


@contextlib.contextmanager
def result_files(command: str) -> Iterator[ResultFiles]:
    """A :class:`ResultFiles` whose claimed files get the error when the block raises."""
    files = ResultFiles(command)
    try:
        yield files
    except MlciError as error:
        files.fail(error.one_line(), error.exit_code)
        raise
    except KeyboardInterrupt:
        files.fail(f"{command} was interrupted", 130)
        raise
    except BaseException as error:
        files.fail(
            f"{command} stopped: internal error: {type(error).__name__}: {' '.join(str(error).split())}"
        )
        raise
    files.finish()


# -- user folders ----------------------------------------------------------------------------------


def folder_files(
    root: str | os.PathLike[str], *, what: str, skip_hidden: bool = True
) -> list[tuple[str, Path]]:
    """The regular files of a user's folder as ``(relative posix path, file to read)``, sorted.

    This is the one listing every copy of a user folder goes through (the serving image's model,
    uploads, plots), so that nothing outside the folder ends up in an image or a registry:

    - a symlink whose target leaves the folder (``/etc/passwd``, ``../secrets``) is refused;
    - a symlink to a *file inside* the folder is listed under its own name with the target as the
      file to read: its content is already part of what the user gave, so copying it as a regular
      file leaks nothing, and the copy does not depend on how a builder or artifact store treats
      links (Docker's ``COPY`` and most stores do not keep them);
    - a symlink to a folder is refused even inside: following it can loop, and it would list the
      same files twice;
    - FIFOs, sockets and devices are refused (reading one blocks or reads a device).

    Links are never followed while walking. Hidden entries (``.git``, ``.DS_Store``) are skipped
    when ``skip_hidden``, without looking at them.
    """
    import stat

    base = Path(root)
    real_root = os.path.realpath(base)
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        current = Path(dirpath)
        if skip_hidden:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            filenames = [f for f in filenames if not f.startswith(".")]
        for name in list(dirnames):
            entry = current / name
            if entry.is_symlink():
                raise InputError(
                    f"{what} {base}: {entry.relative_to(base).as_posix()} is a link to a folder "
                    f"({os.readlink(entry)}); links to folders are not followed",
                    hint="replace the link with the files themselves",
                )
        dirnames.sort()
        for name in sorted(filenames):
            entry = current / name
            relative = entry.relative_to(base).as_posix()
            mode = entry.lstat().st_mode
            if stat.S_ISLNK(mode):
                target = os.path.realpath(entry)
                if os.path.commonpath([real_root, target]) != real_root:
                    raise InputError(
                        f"{what} {base}: {relative} is a link to {os.readlink(entry)}, outside the folder",
                        hint="copy the file into the folder instead of linking to it",
                    )
                if not os.path.exists(target):
                    raise InputError(f"{what} {base}: {relative} is a broken link ({os.readlink(entry)})")
                mode = os.stat(target, follow_symlinks=False).st_mode
                if stat.S_ISDIR(mode):
                    raise InputError(
                        f"{what} {base}: {relative} is a link to a folder; links to folders are not followed",
                        hint="replace the link with the files themselves",
                    )
                source = Path(target)
            else:
                source = entry
            if not stat.S_ISREG(mode):
                kind = (
                    "a FIFO"
                    if stat.S_ISFIFO(mode)
                    else "a socket"
                    if stat.S_ISSOCK(mode)
                    else "a device"
                    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "not a regular file"
                )
                raise InputError(
                    f"{what} {base}: {relative} is {kind}", hint="only regular files can be copied: remove it"
                )
            found.append((relative, source))
    return found


def copy_folder(
    source: str | os.PathLike[str], target: str | os.PathLike[str], *, what: str, skip_hidden: bool = True
) -> list[str]:
    """Copy a user's folder file by file under the rules of :func:`folder_files`; return what it copied.

    Everything is checked before the first byte is written, and each file is opened without
    following a link (``O_NOFOLLOW``), so a link swapped in after the check is refused too.
    """
    files = folder_files(source, what=what, skip_hidden=skip_hidden)
    destination = Path(target)
    destination.mkdir(parents=True, exist_ok=False)
    for relative, file in files:
        out = destination / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        copy_regular_file(file, out, what=what)
    return [relative for relative, _ in files]


def copy_regular_file(source: str | os.PathLike[str], target: str | os.PathLike[str], *, what: str) -> None:
    """Copy one regular file, refusing a FIFO, socket or device (and a link, at the last step)."""
    import shutil
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(source, flags)
    except OSError as exc:
        raise InputError(f"{what}: {source} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise InputError(
                f"{what}: {source} is not a regular file", hint="only regular files can be copied"
            )
        with open(target, "wb") as out:
            shutil.copyfileobj(handle, out)


def check_output_folder(folder: str | os.PathLike[str], *, what: str) -> None:
    """Refuse an output folder that is uploaded afterwards (plots) when it would carry host files:
    the folder itself a link, or holding links that leave it, or special files."""
    path = Path(folder)
    if path.is_symlink():
        raise InputError(
            f"{what} {path} is a link ({os.readlink(path)}); mlci writes files only into a real folder",
            hint="name a folder inside the workspace",
        )
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{what} {path} exists and is not a folder", hint="name a new or empty folder")
        folder_files(path, what=what, skip_hidden=False)
