"""ONNX models, loaded and run with onnxruntime: the way in for PyTorch, Keras and converted models.

An ONNX file is a protobuf ``ModelProto``. Every ONNX writer serializes field 1 (``ir_version``,
a varint) first, so the file starts with byte 0x08; that makes a candidate, and parsing decides
(with the ``onnx`` package where it is installed, else with onnxruntime itself: the serving image
carries onnxruntime only).

What the graph cannot say about itself (the table's columns, the class labels, whether a single
score output holds probabilities or logits) comes from mlci's metadata, one JSON value stored in
the model's ``metadata_props`` under the key ``mlci`` (see :func:`annotate_onnx`; the converter in
:mod:`mlci_lib.models.onnx_convert` writes it), or from the caller.

The estimator of the :class:`~mlci_lib.models.LoadedModel` is an adapter with scikit-learn's
interface (``predict``, and for classifiers ``predict_proba`` and ``classes_``) that maps table
columns to the graph's inputs, in one of two layouts:

- one input per column (what skl2onnx makes for mixed types), each ``[batch, 1]``, matched by name;
- one tensor of all features ``[batch, k]`` (what ``torch.onnx.export`` makes), filled from the
  signature's columns in order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError, ModelLoadError
from mlci_lib.models.loaded import LoadedModel
from mlci_lib.models.signature import ModelSignature

if TYPE_CHECKING:
    import numpy as np

    from mlci_lib.models.plain_table import PlainTable

#: Key of mlci's JSON metadata in an ONNX model's ``metadata_props``.
METADATA_KEY = "mlci"
ONNX_REQUIREMENTS: tuple[str, ...] = ("onnxruntime",)

_NUMPY_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}
_LABEL_TYPES = ("tensor(int64)", "tensor(string)", "tensor(int32)")


def looks_like_onnx(head: bytes) -> bool:
    """True when the first bytes can start an ONNX ModelProto (field 1, ir_version, as a varint)."""
    return head[:1] == b"\x08" and len(head) > 1 and 0 < head[1] < 0x80


def annotate_onnx(
    path: str | os.PathLike[str],
    *,
    signature: ModelSignature | None = None,
    classes: Sequence[Any] | None = None,
    task: str | None = None,
    scores: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Record mlci's metadata in the ONNX file at ``path`` (rewritten in place, atomically).

    ``scores`` says what a classifier's single score output holds: ``"probabilities"`` or
    ``"logits"`` (softmax is applied). Needs the ``onnx`` package.
    """
    onnx = _import_onnx()
    file = Path(path)
    model = onnx.load(str(file), load_external_data=False)
    meta = dict(extra or {})
    if signature is not None:
        meta["signature"] = signature.to_dict()
    if classes is not None:
        meta["classes"] = [c.item() if hasattr(c, "item") else c for c in classes]
    if task is not None:
        meta["task"] = task
    if scores is not None:
        if scores not in ("probabilities", "logits"):
            raise InputError(f"scores must be 'probabilities' or 'logits', got {scores!r}")
        meta["scores"] = scores
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(meta, sort_keys=True)
    tmp = file.with_name(f".{file.name}.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(file)


def load_onnx(
    path: str | os.PathLike[str],
    *,
    signature: ModelSignature | None = None,
    metadata: Mapping[str, Any] | None = None,
    source: Path | None = None,
    digest: str | None = None,
    threads: int = 1,
) -> LoadedModel:
    """Load the ONNX model at ``path`` for prediction with onnxruntime.

    ``signature`` and ``metadata`` (from an MLflow folder, say) take precedence over what the file
    records. The graph's inputs are checked against the signature here, so a model that cannot
    take the data's columns is refused at load, not at the first request.
    """
    from mlci_lib.models.digest import model_digest

    file = Path(path)
    ort = _import_onnxruntime(file)
    graph_classes = _parse_with_onnx(file)
    options = ort.SessionOptions()
    # Requests already run in parallel on the server's threads; one thread per run avoids
    # oversubscribing the cores (the same reason as the server's OpenMP limit).
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise _session_error(file, exc, ort.__version__) from None
    meta = _file_metadata(file, session)
    meta.update(metadata or {})
    if signature is None and isinstance(meta.get("signature"), dict):
        try:
            signature = ModelSignature.from_dict(meta["signature"])
        except (KeyError, TypeError) as exc:
            raise ModelLoadError(f"model {file}: malformed mlci signature in its metadata ({exc})") from None
    adapter = _make_adapter(file, session, signature, meta, graph_classes)
    task = "classification" if isinstance(adapter, OnnxClassifier) else "regression"
    meta.setdefault("task", task)
    return LoadedModel(
        adapter,
        source or file,
        "onnx",
        digest or model_digest(file),
        signature,
        meta,
        framework="onnx",
        requirements=ONNX_REQUIREMENTS,
    )


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ModelLoadError(
            "writing ONNX metadata needs the onnx package", hint="pip install onnx"
        ) from None
    return onnx


def _import_onnxruntime(file: Path) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ModelLoadError(
            f"model {file} is an ONNX model but onnxruntime is not installed",
            hint="pip install onnxruntime",
        ) from None
    return onnxruntime


def _parse_with_onnx(file: Path) -> list[Any] | None:
    """Parse with ``onnx`` where it is installed: a clear message for damaged files, and the class
    labels the graph's classifier nodes carry. Returns None when onnx is not installed."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(file), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelLoadError(
            f"model {file} is truncated or not a valid ONNX file ({type(exc).__name__})",
            hint="export or convert the model again",
        ) from None
    if model.ir_version <= 0 or not model.graph.output:
        raise ModelLoadError(
            f"model {file} is not an ONNX model (no IR version or no graph outputs)",
            hint="export or convert the model again",
        )
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings" and attribute.strings:
                return [s.decode() for s in attribute.strings]
            if attribute.name == "classlabels_int64s" and attribute.ints:
                return list(attribute.ints)
    return []


def _session_error(file: Path, exc: Exception, version: str) -> ModelLoadError:
    text = " ".join(str(exc).split())
    if "opset" in text.lower() or "ir version" in text.lower() or "IR_VERSION" in text:
        return ModelLoadError(
            f"model {file} uses an opset or IR version that onnxruntime {version} cannot run",
            hint="export it again with an older opset (e.g. torch.onnx.export(..., opset_version=17)) "
            "or install a newer onnxruntime",
        )
    if "INVALID_PROTOBUF" in text or "Protobuf parsing failed" in text:
        return ModelLoadError(
            f"model {file} is truncated or not a valid ONNX file", hint="export or convert the model again"
        )
    return ModelLoadError(
        f"model {file} could not be loaded by onnxruntime {version}: {text[:300]}",
        hint="check that the graph is valid (onnx.checker.check_model)",
    )


def _file_metadata(file: Path, session: Any) -> dict[str, Any]:
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if not raw:
        return {}
    try:
        meta = json.loads(raw)
    except ValueError:
        raise ModelLoadError(
            f"model {file}: its '{METADATA_KEY}' metadata is not valid JSON",
            hint="write it with mlci_lib.models.onnx_format.annotate_onnx",
        ) from None
    if not isinstance(meta, dict):
        raise ModelLoadError(f"model {file}: its '{METADATA_KEY}' metadata must be a JSON object")
    return meta


def _width(shape: Sequence[Any]) -> int | None:
    """Values per row of an input or output: the last static dimension (None when dynamic)."""
    if len(shape) < 2:
        return 1
    last = shape[-1]
    return int(last) if isinstance(last, int) else None


class _Input:
    __slots__ = ("dtype", "name", "width")

    def __init__(self, name: str, dtype: str, width: int | None) -> None:
        self.name = name
        self.dtype = dtype
        self.width = width


def _make_adapter(
    file: Path,
    session: Any,
    signature: ModelSignature | None,
    meta: Mapping[str, Any],
    graph_classes: list[Any] | None,
) -> OnnxRegressor:
    inputs = []
    for item in session.get_inputs():
        dtype = _NUMPY_TYPES.get(item.type)
        if dtype is None:
            raise ModelLoadError(
                f"model {file}: graph input {item.name!r} has type {item.type}, "
                "which mlci cannot fill from a table",
                hint="export the model with float, double, int64, bool or string inputs",
            )
        inputs.append(_Input(item.name, dtype, _width(item.shape)))
    names = signature.names if signature is not None else None
    if len(inputs) > 1:
        layout = "columns"
        if names is not None:
            missing = [i.name for i in inputs if i.name not in names]
            if missing:
                raise ModelLoadError(
                    f"model {file}: the graph's inputs {', '.join(missing)} are not columns of the "
                    f"model's signature ({', '.join(names)})",
                    hint="export the graph with one input per column, named like the table's columns",
                )
        columns = [i.name for i in inputs]
    else:
        layout = "tensor"
        only = inputs[0]
        columns = list(names) if names is not None else []
        if names is not None and only.width is not None and only.width != len(names):
            raise ModelLoadError(
                f"model {file}: graph input {only.name!r} takes {only.width} values per row but the "
                f"signature has {len(names)} columns ({', '.join(names)})",
                hint="record the signature of the columns the graph was exported for",
            )
        if signature is not None:
            text = [c.name for c in signature.columns if c.kind not in ("integer", "float", "boolean")]
            if text and only.dtype != "object":
                raise ModelLoadError(
                    f"model {file}: graph input {only.name!r} is a numeric tensor but the signature's "
                    f"columns {', '.join(text)} are not numeric",
                    hint="encode those columns inside the exported graph, or export one input per column",
                )
    matrix_columns = list(names) if names is not None else None
    outputs = session.get_outputs()
    output_names = [o.name for o in outputs]
    classes = meta.get("classes")
    task = meta.get("task")
    if len(outputs) >= 2 and outputs[0].type in _LABEL_TYPES:
        found = classes if classes is not None else graph_classes
        if not found:
            raise ModelLoadError(
                f"model {file}: its classifier outputs do not say the class labels",
                hint="record them with mlci_lib.models.onnx_format.annotate_onnx(path, classes=[...])",
            )
        return OnnxClassifier(
            session,
            file,
            layout,
            inputs,
            columns,
            matrix_columns,
            output_names,
            # "argmax": labels as scikit-learn derives them, the first class of highest probability
            # (a graph's own label output can break ties between equal votes the other way).
            label=None if meta.get("labels") == "argmax" else 0,
            scores=1,
            classes=list(found),
            logits=False,
        )
    first = outputs[0]
    if first.type not in ("tensor(float)", "tensor(double)"):
        raise ModelLoadError(
            f"model {file}: first output {first.name!r} has type {first.type}; mlci expects a label "
            "and a probability output, or one float output of scores or values",
            hint="export the model with float outputs",
        )
    width = _width(first.shape)
    if task == "classification" or classes is not None:
        if not classes:
            raise ModelLoadError(
                f"model {file}: a classification model without its class labels",
                hint="record them with annotate_onnx(path, classes=[...])",
            )
        scores = meta.get("scores", "probabilities")
        return OnnxClassifier(
            session,
            file,
            layout,
            inputs,
            columns,
            matrix_columns,
            output_names,
            label=None,
            scores=0,
            classes=list(classes),
            logits=scores == "logits",
        )
    if width not in (1, None) or (width is None and task != "regression"):
        raise ModelLoadError(
            f"model {file}: output {first.name!r} has {width or 'a dynamic number of'} values per row and "
            "nothing says whether they are class scores or values",
            hint="record it with annotate_onnx(path, task='classification', classes=[...], "
            "scores='logits') or annotate_onnx(path, task='regression')",
        )
    return OnnxRegressor(session, file, layout, inputs, columns, matrix_columns, output_names, value=0)


class OnnxRegressor:
    """scikit-learn's ``predict`` over an onnxruntime session (regression, or the base of classifiers)."""

    def __init__(
        self,
        session: Any,
        file: Path,
        layout: str,
        inputs: list[_Input],
        columns: list[str],
        matrix_columns: list[str] | None,
        output_names: list[str],
        *,
        value: int = 0,
    ) -> None:
        self.session = session
        self.file = file
        self.layout = layout
        self.inputs = inputs
        #: Table columns the graph reads: one per input, or the tensor's columns in order.
        self.columns = columns
        self._matrix_columns = matrix_columns
        self._output_names = output_names
        self._value = value
        if layout == "tensor" and inputs[0].width is not None:
            #: Values per row of the single feature tensor (what warm-up rows are built from).
            self.n_features_in_ = inputs[0].width

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.file.name})"

    def feed(self, rows: Any) -> dict[str, Any]:
        """The graph's inputs from a DataFrame, a PlainTable (the serving image's table, without
        pandas), or a float matrix in signature column order."""
        import numpy as np

        from mlci_lib.models.plain_table import PlainTable

        if isinstance(rows, np.ndarray):
            return self._feed_matrix(rows)
        if isinstance(rows, PlainTable):
            return self._feed_plain(rows)
        present = set(rows.columns)
        if self.layout == "tensor":
            only = self.inputs[0]
            columns = self.columns or list(rows.columns)
            self._require(columns, present)
            if only.width is not None and len(columns) != only.width:
                raise InputError(
                    f"input: the ONNX graph's input {only.name!r} takes {only.width} columns per row, "
                    f"got {len(columns)} ({', '.join(columns)})"
                )
            # Selecting columns costs about a millisecond in pandas 3, more than the graph takes on
            # a few rows: skipped when the frame already holds exactly these columns in order.
            same = len(columns) == rows.shape[1] and all(
                a == b for a, b in zip(columns, rows.columns, strict=True)
            )
            return {only.name: self._tensor(rows if same else rows[columns], only)}
        self._require(self.columns, present)
        return {i.name: self._column(rows[i.name], i) for i in self.inputs}

    def _feed_plain(self, table: PlainTable) -> dict[str, Any]:
        import numpy as np

        present = set(table.columns)
        if self.layout == "tensor":
            only = self.inputs[0]
            columns = self.columns or table.columns
            self._require(columns, present)
            if only.width is not None and len(columns) != only.width:
                raise InputError(
                    f"input: the ONNX graph's input {only.name!r} takes {only.width} columns per row, "
                    f"got {len(columns)} ({', '.join(columns)})"
                )
            parts = [self._plain_column(table.column(c), c, only.dtype) for c in columns]
            return {only.name: np.hstack(parts) if parts else np.empty((len(table), 0), only.dtype)}
        self._require(self.columns, present)
        return {i.name: self._plain_column(table.column(i.name), i.name, i.dtype) for i in self.inputs}

    @staticmethod
    def _plain_column(values: Sequence[Any], name: str, dtype: str) -> Any:
        """One column as a ``[rows, 1]`` tensor of ``dtype``; the PlainTable twin of :meth:`_column`."""
        import numpy as np

        from mlci_lib.models.plain_table import numbers_of
        from mlci_lib.values import is_missing

        if dtype == "object":
            text = ["" if is_missing(v) else str(v) for v in values]  # as in _column: no missing string
            return np.array(text, dtype=object).reshape(-1, 1)
        column = (
            values
            if getattr(values, "dtype", None) == np.float64
            else numbers_of(values, f"input: column {name!r}")
        )
        if dtype in ("int64", "int32", "bool") and np.isnan(column).any():
            raise InputError(f"input: column {name!r} has missing values; the ONNX graph takes whole numbers")
        return np.asarray(column).astype(dtype, copy=False).reshape(-1, 1)

    def _require(self, columns: Sequence[str], present: set[Any]) -> None:
        missing = [c for c in columns if c not in present]
        if missing:
            raise InputError(
                f"input: the ONNX graph reads columns {', '.join(columns)}; missing {', '.join(missing)}",
                hint="send every column the model was exported with",
            )

    def _feed_matrix(self, matrix: np.ndarray) -> dict[str, Any]:
        if self.layout == "tensor":
            only = self.inputs[0]
            return {only.name: matrix.astype(only.dtype, copy=False)}
        order = self._matrix_columns or self.columns
        position = {name: i for i, name in enumerate(order)}
        return {
            i.name: matrix[:, position[i.name] : position[i.name] + 1].astype(i.dtype, copy=False)
            for i in self.inputs
        }

    @staticmethod
    def _tensor(frame: Any, spec: _Input) -> Any:
        import numpy as np

        if spec.dtype == "object":
            return frame.astype(str).to_numpy(dtype=object)
        if all(dtype.kind in "fiub" for dtype in frame.dtypes):
            # Plain numpy columns (NaN is already their missing value): pandas' na_value path
            # costs about a millisecond per call, longer than the graph takes on one row.
            return frame.to_numpy(dtype=spec.dtype)
        try:
            matrix = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise InputError(f"input: the ONNX graph's input {spec.name!r} needs numbers ({exc})") from None
        return matrix.astype(spec.dtype, copy=False)

    @staticmethod
    def _column(series: Any, spec: _Input) -> Any:
        import numpy as np
        import pandas as pd

        if spec.dtype == "object":
            # onnxruntime's string tensors have no missing value: missing text is the empty string,
            # which is what skl2onnx's imputers and encoders treat as missing.
            values = [
                ("" if v is None or (isinstance(v, float) and v != v) or v is pd.NA else str(v))
                for v in series
            ]
            return np.array(values, dtype=object).reshape(-1, 1)
        try:
            if series.dtype.kind in "fiub":
                column = series.to_numpy(dtype=np.float64)
            else:
                column = series.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise InputError(f"input: column {spec.name!r} must be numeric for the ONNX graph") from None
        if spec.dtype in ("int64", "int32", "bool") and np.isnan(column).any():
            raise InputError(
                f"input: column {spec.name!r} has missing values; the ONNX graph takes whole numbers"
            )
        return column.astype(spec.dtype, copy=False).reshape(-1, 1)

    def run(self, rows: Any) -> list[Any]:
        try:
            return list(self.session.run(self._output_names, self.feed(rows)))
        except InputError:
            raise
        except Exception as exc:  # onnxruntime raises its own types for shape/type mismatches
            text = " ".join(str(exc).split())
            raise ValueError(f"onnxruntime refused the rows: {text[:300]}") from None

    def predict(self, rows: Any) -> Any:
        values = self.run(rows)[self._value]
        return values.reshape(-1) if values.ndim > 1 and values.shape[-1] == 1 else values


class OnnxClassifier(OnnxRegressor):
    """``predict``, ``predict_proba`` and ``classes_`` of an ONNX classifier."""

    def __init__(
        self,
        session: Any,
        file: Path,
        layout: str,
        inputs: list[_Input],
        columns: list[str],
        matrix_columns: list[str] | None,
        output_names: list[str],
        *,
        label: int | None,
        scores: int,
        classes: list[Any],
        logits: bool,
    ) -> None:
        import numpy as np

        super().__init__(session, file, layout, inputs, columns, matrix_columns, output_names)
        self.classes_ = np.asarray(classes)
        self._label = label
        self._scores = scores
        self._logits = logits

    def predict_with_probabilities(self, rows: Any) -> tuple[Any, Any]:
        """Labels and class probabilities (rows x classes) from one run of the graph."""
        import numpy as np

        outputs = self.run(rows)
        scores = outputs[self._scores]
        if isinstance(scores, list):  # ZipMap: one {class: probability} per row
            scores = np.array([[row[c] for c in self.classes_.tolist()] for row in scores], dtype=np.float64)
        scores = np.asarray(scores)
        if scores.ndim == 1 or scores.shape[-1] == 1:
            positive = scores.reshape(-1)
            if self._logits:
                positive = 1.0 / (1.0 + np.exp(-positive))
            scores = np.column_stack([1.0 - positive, positive])
        elif self._logits:
            shifted = scores - scores.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            scores = exp / exp.sum(axis=1, keepdims=True)
        if scores.shape[1] != len(self.classes_):
            raise ValueError(
                f"the ONNX graph gives {scores.shape[1]} class scores but the model has "
                f"{len(self.classes_)} classes"
            )
        if self._label is not None:
            labels = np.asarray(outputs[self._label]).reshape(-1)
        else:
            labels = self.classes_[scores.argmax(axis=1)]
        return labels, scores

    def predict(self, rows: Any) -> Any:
        return self.predict_with_probabilities(rows)[0]

    def predict_proba(self, rows: Any) -> Any:
        return self.predict_with_probabilities(rows)[1]
