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
    """Write ``data`` (already JSON-compatible) as indented JSON, atomically."""
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
