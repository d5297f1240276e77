"""The content digest of a model: what identifies one trained state in the registry and images.

The digest must be the same for the same trained state however the bytes came out, or retraining
the same commit with the same seed registers a new version. The file bytes are not stable:

- a skops file is a zip archive whose ``schema.json`` numbers every object by its Python ``id()``,
  whose array members are named after those ids (``<id>.npy``, ``<id>.npz``) or after random
  UUIDs (``<uuid>.bin``), and whose members carry the time they were written (so do the members of
  the ``.npz`` archives inside). The digest reads the archive instead: ids are renumbered by order
  of first appearance, each member reference is replaced by the digest of the member's content,
  the members of nested archives are digested by name and content, set contents (whose order
  follows string hashing, which differs per process) are sorted, and skops' own version is left
  out. What remains is what loading the file builds.
- a CatBoost ``.cbm`` file embeds a random model GUID, the training end time and the training
  output options (the ``train_dir`` path, thread count, logging): the digest is taken over the
  model re-saved by CatBoost without them.
- an mlci model folder is the digest of its model file plus the metadata that changes
  predictions (format, task, classes, signature), never timestamps or the stored digest itself.
- an MLflow model folder: each file by the rules above, ``MLmodel`` without the fields MLflow
  writes fresh on every save (time, UUIDs, run and model ids).

Everything else (XGBoost JSON and UBJSON, LightGBM text, ONNX, pickles) is digested by its bytes:
those writers give identical bytes for identical training with a fixed seed. Content that cannot
be read in canonical form (a damaged archive) falls back to its bytes; loading reports the damage.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from mlci_lib.fingerprint import fingerprint_path

_CHUNK = 1 << 20
_ZIP_MAGIC = b"PK\x03\x04"
_CATBOOST_MAGIC = b"CBM1"

#: Fields of an mlci model folder's metadata that change what the model predicts.
_PREDICTION_METADATA = ("format", "task", "classes", "signature", "feature_names")
#: Fields MLflow writes into ``MLmodel`` afresh on every save.
_VOLATILE_MLMODEL = (
    "utc_time_created",
    "model_uuid",
    "run_id",
    "artifact_path",
    "model_id",
    "model_size_bytes",
    "databricks_runtime",
)
#: CatBoost metadata written afresh by every training, none of which changes predictions.
_VOLATILE_CATBOOST = ("model_guid", "train_finish_time", "output_options")
_VOLATILE_CATBOOST_PARAMS = ("system_options", "logging_level")
_VOLATILE_CATBOOST_FLAT = ("train_dir", "thread_count", "verbose", "logging_level", "allow_writing_files")


def model_digest(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` identifying the trained state stored at ``path`` (a file or a folder)."""
    root = Path(path)
    if not root.is_dir():
        if not root.is_file():
            return fingerprint_path(root)  # raises the InputError that names the path
        return "sha256:" + _file_digest(root)
    from mlci_lib.models.layout import MLCI_MODEL_FILE

    if (root / MLCI_MODEL_FILE).is_file():
        digest = _mlci_folder_digest(root, root / MLCI_MODEL_FILE)
        if digest is not None:
            return "sha256:" + digest
    return "sha256:" + _folder_digest(root)


# -- files ---------------------------------------------------------------------------------------


def _file_digest(file: Path) -> str:
    with open(file, "rb") as handle:
        head = handle.read(4)
    if head == _ZIP_MAGIC:
        digest = _archive_digest(file)
        if digest is not None:
            return digest
    if head == _CATBOOST_MAGIC:
        digest = _catboost_digest(file)
        if digest is not None:
            return digest
    with open(file, "rb") as handle:
        return _stream_digest(handle, hashlib.sha256())


def _stream_digest(handle: IO[bytes], digest: Any) -> str:
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
    return str(digest.hexdigest())


def _archive_digest(source: Path | bytes) -> str | None:
    """The digest of a zip archive's content: a skops file canonically, any other by member."""
    try:
        with zipfile.ZipFile(source if isinstance(source, Path) else io.BytesIO(source)) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
            if "schema.json" in names:
                return _skops_digest(archive, names)
            digest = hashlib.sha256(b"mlci-zip-v1\0")
            for name in sorted(names):
                digest.update(name.encode() + b"\0" + _member_digest(archive, name).encode() + b"\0")
            return digest.hexdigest()
    # RecursionError is a RuntimeError: a crafted, deeply nested schema.json gets its bytes digested.
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError, RuntimeError, NotImplementedError):
        return None


def _member_digest(archive: zipfile.ZipFile, name: str) -> str:
    with archive.open(name) as member:
        head = member.read(4)
        if head == _ZIP_MAGIC:
            # An archive inside (scipy's .npz): its members carry write times too.
            nested = _archive_digest(head + member.read())
            if nested is not None:
                return nested
        with archive.open(name) as again:
            return _stream_digest(again, hashlib.sha256())


def _skops_digest(archive: zipfile.ZipFile, names: list[str]) -> str:
    schema = json.loads(archive.read("schema.json"))
    members = set(names)
    referenced: set[str] = set()

    def normalize(node: Any) -> Any:
        if isinstance(node, list):
            return [normalize(item) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "file" and isinstance(value, str) and value in members:
                # <id>.npy / <uuid>.bin: the name is arbitrary, the content is the state.
                referenced.add(value)
                out[key] = "sha256:" + _member_digest(archive, value)
            else:
                out[key] = normalize(value)
        if out.get("__loader__") == "SetNode" and isinstance(out.get("content"), list):
            out["content"] = sorted(out["content"], key=lambda item: _dumps(_without_ids(item)))
        return out

    canonical = normalize(schema)
    if isinstance(canonical, dict):
        canonical.pop("_skops_version", None)
    renumbered = _renumber_ids(canonical, {})
    digest = hashlib.sha256(b"mlci-skops-v1\0")
    digest.update(_dumps(renumbered).encode())
    # Members no node refers to are not loaded, but a changed file must still change the digest.
    extra = sorted(_member_digest(archive, n) for n in members - referenced - {"schema.json"})
    for member in extra:
        digest.update(b"\0extra\0" + member.encode())
    return digest.hexdigest()


def _renumber_ids(node: Any, ids: dict[int, int]) -> Any:
    """``node`` with every ``__id__`` replaced by its order of first appearance (1, 2, ...)."""
    if isinstance(node, list):
        return [_renumber_ids(item, ids) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "__id__" and isinstance(value, int) and not isinstance(value, bool):
            out[key] = ids.setdefault(value, len(ids) + 1)
        else:
            out[key] = _renumber_ids(value, ids)
    return out


def _without_ids(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_ids(item) for item in node]
    if isinstance(node, dict):
        return {k: _without_ids(v) for k, v in node.items() if k != "__id__"}
    return node


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _catboost_digest(file: Path) -> str | None:
    try:
        import catboost
    except ImportError:
        return None  # without CatBoost the file cannot be loaded either; its bytes will do
    model = catboost.CatBoost()
    try:
        model.load_model(str(file))
        metadata = model.get_metadata()
        for key in _VOLATILE_CATBOOST:
            if key in metadata:
                del metadata[key]
        if "params" in metadata:
            params = json.loads(metadata["params"])
            for key in _VOLATILE_CATBOOST_PARAMS:
                params.pop(key, None)
            flat = params.get("flat_params")
            if isinstance(flat, dict):
                for key in _VOLATILE_CATBOOST_FLAT:
                    flat.pop(key, None)
            metadata["params"] = json.dumps(params, sort_keys=True)
        with tempfile.TemporaryDirectory(prefix="mlci-digest-") as scratch:
            resaved = Path(scratch, "model.cbm")
            model.save_model(str(resaved))
            with open(resaved, "rb") as handle:
                return "catboost-" + _stream_digest(handle, hashlib.sha256(b"mlci-catboost-v1\0"))
    except (catboost.CatBoostError, OSError, ValueError, KeyError):
        return None


# -- folders -------------------------------------------------------------------------------------


def _mlci_folder_digest(folder: Path, meta_file: Path) -> str | None:
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(meta, dict):
        return None
    model_file = folder / str(meta.get("file") or "model.skops")
    if not model_file.is_file() or model_file.parent.resolve() != folder.resolve():
        return None
    return mlci_folder_digest(model_file, meta).removeprefix("sha256:")


def mlci_folder_digest(model_file: str | os.PathLike[str], metadata: Mapping[str, Any]) -> str:
    """The digest of an mlci model folder from its model file and its metadata (``mlci-model.json``).

    For :func:`~mlci_lib.models.saving.save_model`, which records the digest inside the metadata
    it digests: only the fields that change predictions count, so the stored digest does not.
    """
    digest = hashlib.sha256(b"mlci-model-folder-v1\0")
    digest.update(_file_digest(Path(model_file)).encode() + b"\0")
    digest.update(_dumps({key: metadata.get(key) for key in _PREDICTION_METADATA}).encode())
    return "sha256:" + digest.hexdigest()


def _folder_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(f for f in filenames if not f.startswith(".")):
            yield Path(dirpath, name)


def _folder_digest(root: Path) -> str:
    digest = hashlib.sha256(b"mlci-folder-v1\0")
    for file in _folder_files(root):
        relative = file.relative_to(root).as_posix()
        content = _mlmodel_digest(file) if relative == "MLmodel" else None
        digest.update(relative.encode() + b"\0" + (content or _file_digest(file)).encode() + b"\0")
    return digest.hexdigest()


def _mlmodel_digest(file: Path) -> str | None:
    import yaml

    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    stable = {k: v for k, v in data.items() if k not in _VOLATILE_MLMODEL}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()
