"""Where batch predictions are written, atomically, with the model's identity beside them.

The pandas engine writes one Parquet file; Spark writes a folder of Parquet files. Either is
written under a hidden temporary name in the output's own folder and renamed into place once
complete, so a reader sees the old output or the new one, never half of one. An output of an
earlier run is removed before this run reads anything: a run that fails then leaves nothing that
could be taken for its result. A folder is only ever replaced when mlci wrote it (its
``_mlci.json`` says so); anything else at the output path is refused, not deleted.

The model's name, version and digest and the mlci version (:func:`predictions_metadata`) are in
the Parquet file's key-value metadata under the key ``mlci`` (JSON), and for a Spark folder in its
``_mlci.json`` sidecar (Spark and pyarrow skip files whose names start with ``_`` when reading
the data).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from mlci_lib.errors import InputError
from mlci_lib.results import Result

#: The key of the Parquet key-value metadata, and the sidecar of a Spark output folder.
METADATA_KEY = "mlci"
SIDECAR = "_mlci.json"
METADATA_SCHEMA = "mlci.predictions"


@dataclasses.dataclass(frozen=True)
class PredictionsMetadata(Result):
    """What a predictions output says about itself: which model, which mlci, which columns."""

    SCHEMA: ClassVar[str] = METADATA_SCHEMA
    SCHEMA_VERSION: ClassVar[int] = 1

    #: name, version, digest, uri, format, framework, and the runtime that predicted.
    model: dict[str, Any]
    mlci_version: str
    engine: Literal["pandas", "spark"]
    #: id, prediction, and probabilities: [{column, class}] in the order of the model's classes.
    columns: dict[str, Any]
    #: Rows written (in a Spark folder's sidecar; the Parquet file's footer has its own count).
    rows: int | None = None


def predictions_metadata(
    model: Mapping[str, Any], columns: Mapping[str, Any], *, engine: str, runtime: str
) -> PredictionsMetadata:
    """The metadata of an output of ``model`` (its serving identity) predicting with ``runtime``."""
    from mlci_lib import __version__

    return PredictionsMetadata(
        model={
            "name": model.get("name"),
            "version": model.get("version"),
            "digest": model.get("digest"),
            "uri": model.get("uri"),
            "format": model.get("format"),
            "framework": model.get("framework"),
            "runtime": runtime,
        },
        mlci_version=__version__,
        engine="spark" if engine == "spark" else "pandas",
        columns=dict(columns),
    )


def check_output(path: str | os.PathLike[str], *, folder: bool, data: str | os.PathLike[str]) -> Path:
    """``path`` as the output of this run, or InputError (exit 2) before anything is read."""
    text = str(path).strip()
    if not text:
        raise InputError("option --output is empty", hint="name the Parquet output")
    target = Path(text)
    kind = "a folder of Parquet files" if folder else "one Parquet file"
    parent = target.absolute().parent
    if not parent.exists():
        raise InputError(
            f"output {target} (option --output): its folder {parent} does not exist",
            hint="create the folder first, or name an output in an existing folder",
        )
    if not parent.is_dir():
        raise InputError(f"output {target} (option --output): {parent} is a file, not a folder")
    if target.is_symlink():
        raise InputError(
            f"output {target} is a link; mlci writes only a real file or folder", hint="remove it"
        )
    with contextlib.suppress(OSError):
        if Path(data).exists() and target.exists() and target.samefile(data):
            raise InputError(
                f"output {target} is the input (option --data)", hint="name a new file for the predictions"
            )
    if folder:
        if target.exists() and not target.is_dir():
            raise InputError(
                f"output {target} exists and is not a folder; --engine spark writes {kind}",
                hint="remove it, or name a new folder",
            )
        if target.is_dir() and any(target.iterdir()) and not (target / SIDECAR).is_file():
            raise InputError(
                f"output folder {target} holds files mlci did not write (no {SIDECAR}); mlci replaces only "
                "its own output",
                hint="name a new folder, or empty this one",
            )
    else:
        if target.is_dir():
            raise InputError(
                f"output {target} is a folder; --engine pandas writes {kind}",
                hint="name a .parquet file, or use --engine spark to write a folder",
            )
        if target.suffix.lower() not in (".parquet", ".pq"):
            raise InputError(
                f"output {target} must be a .parquet file (predictions are written as Parquet)",
                hint=f"name it {target.with_suffix('.parquet').name}",
            )
    return target


def discard_previous(target: Path) -> None:
    """Remove the output of an earlier run (a file, or a folder mlci wrote; see check_output)."""
    if target.is_dir():
        shutil.rmtree(target)
    else:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``; renamed to ``target`` when the block ends without error."""
    temporary = target.absolute().parent / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        yield temporary
        if target.is_dir():  # another run put it there meanwhile: the newer output wins
            shutil.rmtree(target)
        os.replace(temporary, target)
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        elif temporary.exists():
            temporary.unlink()


def write_sidecar(folder: Path, metadata: PredictionsMetadata) -> None:
    from mlci_lib.files import write_json_atomic

    write_json_atomic(folder / SIDECAR, metadata.to_dict())


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``mlci`` metadata of a predictions output: a Parquet file's, or a folder's sidecar."""
    target = Path(path)
    if target.is_dir():
        data = json.loads((target / SIDECAR).read_text(encoding="utf-8"))
    else:
        import pyarrow.parquet as pq

        raw = (pq.read_schema(target).metadata or {}).get(METADATA_KEY.encode())
        if raw is None:
            raise InputError(f"{target} has no {METADATA_KEY!r} metadata: mlci predict did not write it")
        data = json.loads(raw)
    if not isinstance(data, dict):
        raise InputError(f"{target}: the {METADATA_KEY!r} metadata is not a JSON object")
    from mlci_lib.result_schemas import check

    check(data, what=f"the metadata of {target}")
    return data
