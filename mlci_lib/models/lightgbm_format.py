"""LightGBM models: its text model format, checked here and then parsed by LightGBM itself.

LightGBM's parser is not safe on hostile or damaged text: it does not check the trees' indices
(a split on a feature beyond the input crashes the first prediction), it accepts a file cut off
after its first tree as a smaller model, and when the header lists ``tree_sizes`` it parses the
trees in parallel threads where a format error aborts the whole process instead of raising. So
the text is read here first: the header, every tree's arrays (counts, whole numbers, children
and features in range, categorical thresholds inside their tables), the ``tree_sizes`` offsets
and the closing ``end of trees``. Native files are then handed to LightGBM without
``tree_sizes``, which makes it parse sequentially and report errors as exceptions.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mlci_lib.errors import ModelLoadError, UnsafeModelError
from mlci_lib.models.frameworks import framework_version, import_framework
from mlci_lib.models.native_adapter import NativeModel, check_classes
from mlci_lib.models.node_checks import NodeArrayError, check_tree_nodes

FILE_NAME = "model.txt"
_AUTO_NAME = re.compile(r"^Column_\d+$")
_INT = re.compile(r"^-?\d+$")
_SPLIT_ARRAYS = ("split_feature", "threshold", "decision_type", "left_child", "right_child")
_OPTIONAL_SPLIT_ARRAYS = ("split_gain", "internal_value", "internal_weight", "internal_count")
_LEAF_ARRAYS = ("leaf_value",)
_OPTIONAL_LEAF_ARRAYS = ("leaf_weight", "leaf_count")
_TREE_SIZES = re.compile(r"(?m)^tree_sizes=[^\n]*\n")


def looks_like_lightgbm(head: bytes) -> bool:
    return head.startswith((b"tree\n", b"tree\r\n")) and b"version=" in head[:64]


class LightGBMModel(NativeModel):
    """A LightGBM Booster with scikit-learn's prediction interface and the real labels."""

    framework = "lightgbm"

    def _errors(self) -> tuple[type[BaseException], ...]:
        import lightgbm

        return (lightgbm.basic.LightGBMError,)

    def _probabilities(self, frame: Any) -> Any:
        import numpy as np

        out = np.asarray(self.native.predict(frame))
        if out.ndim == 1:  # binary: the positive class's probability
            return np.column_stack([1.0 - out, out])
        return out

    def _values(self, frame: Any) -> Any:
        return self.native.predict(frame)


class LightGBMText:
    """The header of a checked LightGBM model text."""

    def __init__(self, header: dict[str, str], trees: int) -> None:
        self.header = header
        self.trees = trees

    @property
    def n_features(self) -> int:
        return int(self.header["max_feature_idx"]) + 1

    @property
    def objective(self) -> str:
        return self.header.get("objective", "").split(" ", 1)[0]

    @property
    def n_classes(self) -> int:
        return int(self.header.get("num_class", "1"))

    @property
    def feature_names(self) -> list[str] | None:
        names = self.header.get("feature_names", "").split()
        if not names or all(_AUTO_NAME.match(n) for n in names):
            return None  # LightGBM's own Column_<i>: trained on an array, names unknown
        return names


def check_lightgbm_text(text: str, what: str) -> LightGBMText:
    """Check a LightGBM model text as described in the module docstring; raise UnsafeModelError."""
    try:
        return _check_text(text)
    except NodeArrayError as exc:
        raise UnsafeModelError(
            f"{what} was refused: {exc}",
            hint="the file was truncated, damaged or crafted; save the model again from its training "
            "code with booster.save_model()",
        ) from None


def _check_text(text: str) -> LightGBMText:
    lines = text.split("\n")
    if not lines or lines[0].rstrip("\r") != "tree":
        raise NodeArrayError("it does not start with LightGBM's 'tree' line")
    header: dict[str, str] = {}
    index = 1
    while index < len(lines) and not lines[index].startswith("Tree="):
        line = lines[index].rstrip("\r")
        if line == "end of trees":
            break
        key, sep, value = line.partition("=")
        if sep:
            header[key] = value
        index += 1
    for key in ("version", "num_class", "max_feature_idx", "objective"):
        if key not in header:
            raise NodeArrayError(f"its header lacks {key}")
    for key in ("num_class", "max_feature_idx", "num_tree_per_iteration"):
        if key in header and not _INT.match(header[key]):
            raise NodeArrayError(f"its header's {key} is {header[key]!r}, not a whole number")
    n_features = int(header["max_feature_idx"]) + 1
    if n_features < 1 or int(header["num_class"]) < 1:
        raise NodeArrayError("its header gives no features or no classes")
    starts: list[int] = []
    count = 0
    ended = False
    for start, block in _tree_blocks(lines, index):
        if block is None:
            ended = True
            break
        _check_tree(block, n_features, f"tree {count}")
        starts.append(start)
        count += 1
    if not ended:
        raise NodeArrayError("it ends before 'end of trees' (truncated)")
    if count == 0:
        raise NodeArrayError("it holds no trees")
    if "tree_sizes" in header:
        _check_tree_sizes(lines, starts, header["tree_sizes"])
    return LightGBMText(header, count)


def _tree_blocks(lines: list[str], index: int) -> Iterator[tuple[int, dict[str, str] | None]]:
    """(first line, key=value pairs) of each tree; (line, None) at 'end of trees'."""
    while index < len(lines):
        line = lines[index].rstrip("\r")
        if line == "end of trees":
            yield index, None
            return
        if not line.startswith("Tree="):
            if line.strip():
                raise NodeArrayError(
                    f"line {index + 1} is {line[:40]!r}, where a tree or 'end of trees' belongs"
                )
            index += 1
            continue
        start = index
        block: dict[str, str] = {}
        index += 1
        while index < len(lines) and lines[index].strip():
            key, sep, value = lines[index].rstrip("\r").partition("=")
            if not sep:
                raise NodeArrayError(f"line {index + 1} of a tree is not key=value")
            block[key] = value
            index += 1
        yield start, block


def _numbers(block: dict[str, str], key: str, count: int, what: str, *, whole: bool) -> list[str]:
    values = block[key].split() if block.get(key, "").strip() else []
    if len(values) != count:
        raise NodeArrayError(f"{what}: {key} has {len(values)} entries, not {count}")
    for value in values:
        if whole and not _INT.match(value):
            raise NodeArrayError(f"{what}: {key} holds {value[:20]!r}, not a whole number")
        if not whole:
            try:
                float(value)
            except ValueError:
                raise NodeArrayError(f"{what}: {key} holds {value[:20]!r}, not a number") from None
    return values


def _check_tree(block: dict[str, str], n_features: int, what: str) -> None:
    for key in ("num_leaves", "num_cat"):
        if not _INT.match(block.get(key, "")):
            raise NodeArrayError(f"{what}: {key} is missing or not a whole number")
    leaves, num_cat = int(block["num_leaves"]), int(block["num_cat"])
    if leaves < 1 or num_cat < 0:
        raise NodeArrayError(f"{what}: num_leaves {leaves} or num_cat {num_cat} is out of range")
    for key in _LEAF_ARRAYS + tuple(k for k in _OPTIONAL_LEAF_ARRAYS if k in block):
        _numbers(block, key, leaves, what, whole=key == "leaf_count")
    if block.get("is_linear", "0") not in ("0", "1"):
        raise NodeArrayError(f"{what}: is_linear is {block['is_linear']!r}")
    if block.get("is_linear") == "1":
        for key in ("leaf_const", "num_features", "leaf_features", "leaf_coeff"):
            if key not in block:
                raise NodeArrayError(f"{what}: a linear tree without {key}")
        used = [int(v) for v in block["leaf_features"].split() if _INT.match(v)]
        if any(not 0 <= f < n_features for f in used):
            raise NodeArrayError(f"{what}: a linear leaf uses a feature beyond the model's {n_features}")
    if leaves == 1:
        return
    splits = leaves - 1
    for key in _SPLIT_ARRAYS + tuple(k for k in _OPTIONAL_SPLIT_ARRAYS if k in block):
        _numbers(block, key, splits, what, whole=key in ("split_feature", "decision_type", "left_child",
                                                         "right_child", "internal_count"))  # fmt: skip

    # LightGBM numbers splits 0..L-2 and leaves ~0..~(L-1); here they become one node array,
    # splits first, then the leaves.
    def node(child: int) -> int:
        return child if child >= 0 else splits + ~child if ~child < leaves else -1

    left = [node(int(v)) for v in block["left_child"].split()]
    right = [node(int(v)) for v in block["right_child"].split()]
    features = [int(v) for v in block["split_feature"].split()] + [0] * leaves
    left += [-1] * leaves
    right += [-1] * leaves
    internal = [True] * splits + [False] * leaves
    sides = (("left", block["left_child"].split()), ("right", block["right_child"].split()))
    for i in range(splits):  # a split child can never be a leaf's slot and vice versa
        for side, raw in sides:
            child = int(raw[i])
            if child >= splits or (child < 0 and ~child >= leaves):
                raise NodeArrayError(f"{what}: node {i} has {side} child {child}, outside the tree")
    check_tree_nodes(left, right, features, internal, n_features, what)
    decision = [int(v) for v in block["decision_type"].split()]
    if num_cat > 0:
        bounds = [int(v) for v in _numbers(block, "cat_boundaries", num_cat + 1, what, whole=True)]
        if bounds[0] != 0 or any(b > a for a, b in zip(bounds[1:], bounds[:-1], strict=True)):
            raise NodeArrayError(f"{what}: cat_boundaries do not rise from 0")
        _numbers(block, "cat_threshold", bounds[-1], what, whole=True)
    thresholds = block["threshold"].split()
    for i, kind in enumerate(decision):
        if kind & 1:  # a categorical split: its threshold indexes cat_boundaries
            value = float(thresholds[i])
            if not value.is_integer() or not 0 <= int(value) < num_cat:
                raise NodeArrayError(f"{what}: categorical split {i} refers to category set {thresholds[i]}")


def _check_tree_sizes(lines: list[str], starts: list[int], sizes_text: str) -> None:
    sizes = sizes_text.split()
    if len(sizes) != len(starts) or not all(_INT.match(s) for s in sizes):
        raise NodeArrayError(f"tree_sizes lists {len(sizes)} trees, the file holds {len(starts)}")
    offsets = [0]
    for line in lines[: starts[-1]]:
        offsets.append(offsets[-1] + len(line.encode("utf-8")) + 1)
    first = offsets[starts[0]]
    expected = first
    for start, size in zip(starts, sizes, strict=True):
        if offsets[start] != expected:
            raise NodeArrayError("tree_sizes do not match where the trees start")
        expected += int(size)


def _model_text(file: Path) -> str:
    try:
        return file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelLoadError(
            f"model {file} is not LightGBM model text ({exc})",
            hint="save the model with booster.save_model()",
        ) from None


def load_lightgbm(
    file: Path, *, classes: Sequence[Any] | None = None, feature_names: Sequence[str] | None = None
) -> LightGBMModel:
    """Load a LightGBM text model file as a checked :class:`LightGBMModel`."""
    lgb = import_framework("lightgbm", file)
    text = _model_text(file)
    checked = check_lightgbm_text(text, f"model {file}")
    try:
        booster = lgb.Booster(model_str=_TREE_SIZES.sub("", text, count=1))
    except Exception as exc:  # LightGBMError for content its parser refuses
        installed = framework_version("lightgbm") or "?"
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"model {file} could not be read by LightGBM {installed}: {detail}",
            hint=f"the file is damaged or written by a LightGBM version this one cannot read (the file says "
            f"{checked.header.get('version')}): save it again with booster.save_model(), or install the "
            "LightGBM version that wrote it",
        ) from None
    objective = checked.objective
    task = "classification" if objective.startswith(("binary", "multiclass")) else "regression"
    labels: list[Any] | None = None
    if task == "classification":
        n_classes = 2 if objective.startswith("binary") else checked.n_classes
        labels = check_classes(classes, n_classes, f"model {file}") or list(range(n_classes))
    names = feature_names if feature_names is not None else checked.feature_names
    return LightGBMModel(
        booster, task=task, n_features=checked.n_features, feature_names=names, classes=labels,
        categories=_pandas_categories(text, checked),
    )  # fmt: skip


def _pandas_categories(text: str, checked: LightGBMText) -> dict[str, list[Any] | None]:
    """The categorical columns of a model trained on a DataFrame, with their categories.

    LightGBM writes the categories of the DataFrame's category columns (``pandas_categorical``,
    in column order) and marks categorical features in ``feature_infos`` by their category
    codes instead of a ``[min:max]`` range.
    """
    _, found, tail = text.rpartition("\npandas_categorical:")
    names = checked.header.get("feature_names", "").split()
    infos = checked.header.get("feature_infos", "").split()
    try:
        lists = json.loads(tail.strip() or "null") if found else None
    except ValueError:
        return {}
    categorical = [
        n for n, info in zip(names, infos, strict=False) if not info.startswith("[") and info != "none"
    ]
    if (
        not isinstance(lists, list)
        or len(lists) != len(categorical)
        or not all(isinstance(c, list) for c in lists)
    ):
        return {}
    return dict(zip(categorical, lists, strict=True))


def check_skops_boosters(file: Path) -> int:
    """Check the model text of every LightGBM Booster inside a skops file, before skops loads it.

    skops restores a Booster through ``Booster.__setstate__``, which hands the text to LightGBM's
    parallel parser: a damaged text would abort the process there, so it is checked first.
    """
    try:
        with zipfile.ZipFile(file) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError):
        return 0  # not readable as skops: skops' own loading reports it
    found = 0
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("__module__") == "lightgbm.basic" and node.get("__class__") == "Booster":
            found += 1
            check_lightgbm_text(_skops_booster_text(node, file), f"model {file}: LightGBM booster {found}")
        stack.extend(node.values())
    return found


def _skops_booster_text(node: dict[str, Any], file: Path) -> str:
    try:
        state = node["content"]["content"]
        handle = state.get("_handle", state.get("handle"))
        if handle.get("__class__") == "str" and handle.get("__loader__") == "JsonNode":
            text = json.loads(handle["content"])
            if isinstance(text, str):
                return text
    except (KeyError, TypeError, AttributeError, ValueError):
        pass
    raise UnsafeModelError(
        f"model {file}: a LightGBM booster inside it does not hold its model as text",
        hint="the file was damaged or crafted; save the model again from its training code",
    )


def save_lightgbm(estimator: Any, folder: Path) -> Path:
    """Write a LightGBM model (LGBMModel or Booster) in LightGBM's text format; return the file."""
    booster = getattr(estimator, "booster_", estimator)
    target = folder / FILE_NAME
    tmp = folder / f".{FILE_NAME}.tmp"
    booster.save_model(str(tmp))
    tmp.replace(target)
    return target
