"""Batch scoring on Spark: the model broadcast to the executors and applied with ``mapInPandas``.

The driver loads the model under mlci's safety rules and scores the first rows itself (the checks
of the pandas engine: columns, types, the prediction column's type, the ONNX conversion check),
before any Spark job. The executors get the model's files as bytes (a broadcast variable; inside
the function for Spark Connect, which has none) and load them with the same loader and the same
rules, once per Python worker. Each Arrow batch Spark hands over (``--chunk-rows`` rows at most)
is scored by :class:`~mlci_lib.predict.scoring.Scorer`, the pandas engine's code. Spark writes the
Parquet folder; nothing but the first rows and the written files' footers reaches the driver.

A cluster's executors need mlci (and the model's framework) installed, as any Python UDF needs
its libraries.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci_lib.errors import InputError, MlciError
from mlci_lib.predict.columns import OutputColumns
from mlci_lib.predict.scoring import Scorer

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

#: Rows the driver scores before the Spark job: enough to meet a type problem early and to check
#: an ONNX conversion, few enough to cost nothing.
PROBE_ROWS = 1000
#: Marks an mlci error raised on an executor, so the driver can report it as one line.
_MARKER = "mlci-executor-error:"
_MARKED = re.compile(re.escape(_MARKER) + r" (.*?)(?:\\n|\n|$)")


@dataclasses.dataclass(frozen=True)
class ModelPayload:
    """A model as bytes, for the executors: its files, and the rules to load them with."""

    key: str
    files: Mapping[str, bytes]  # relative path -> content; "" for a model that is one file
    name: str
    onnx: bool
    allow_pickle: bool
    trusted_types: tuple[str, ...]
    source: str
    metadata: Mapping[str, Any]

    @classmethod
    def of(
        cls, path: Path, *, key: str, allow_pickle: bool, trusted_types: tuple[str, ...], onnx: bool = False,
        source: str | None = None, metadata: Mapping[str, Any] | None = None,
    ) -> ModelPayload:  # fmt: skip
        if path.is_dir():
            files = {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}
        else:
            files = {"": path.read_bytes()}
        return cls(
            key,
            files,
            path.name,
            onnx,
            allow_pickle,
            trusted_types,
            source or str(path),
            dict(metadata or {}),
        )

    def load(self) -> Any:
        """The model, loaded on this machine from the bytes (the same loader as the driver's)."""
        from mlci_lib.models import load_model
        from mlci_lib.models.onnx_format import load_onnx

        with tempfile.TemporaryDirectory(prefix="mlci-predict-") as scratch:
            root = Path(scratch) / self.name
            if "" in self.files:
                root.write_bytes(self.files[""])
            else:
                for relative, content in self.files.items():
                    file = root / relative
                    file.parent.mkdir(parents=True, exist_ok=True)
                    file.write_bytes(content)
            if self.onnx:
                return load_onnx(root, source=Path(self.source), metadata=dict(self.metadata))
            # Every format loads into memory: the files need not outlive the load.
            return load_model(root, allow_pickle=self.allow_pickle, trusted_types=self.trusted_types)


#: Models of this Python worker by payload key. Spark reuses a worker for many tasks; loading the
#: model once per worker instead of once per task is what keeps small partitions cheap. Only the
#: model is kept: a task's columns and types come with the task.
_WORKER_MODELS: dict[str, Any] = {}


def _worker_model(payload: ModelPayload) -> Any:
    model = _WORKER_MODELS.get(payload.key)
    if model is None:
        model = payload.load()
        _WORKER_MODELS.clear()  # one model per worker at a time
        _WORKER_MODELS[payload.key] = model
    return model


def score_partition(
    model: Any, columns: dict[str, Any], prediction_type: str, batches: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    """The ``mapInPandas`` function: each batch of rows in, its predictions out."""
    import pyarrow as pa

    payload: ModelPayload = model.value if hasattr(model, "value") else model
    layout = OutputColumns.from_dict(columns)
    kind = pa.type_for_alias(prediction_type)
    try:
        scorer = Scorer(_worker_model(payload), layout, prediction_type=kind)
        for frame in batches:
            if len(frame) == 0:
                continue
            ids = frame[layout.id]
            table = scorer.score(frame, ids.to_numpy(), where="a Spark batch of the input")
            out = table.drop_columns([layout.id]).to_pandas()
            out.insert(0, layout.id, ids.reset_index(drop=True))
            yield out
    except MlciError as error:
        # Spark wraps an executor's exception in its own; the marker lets the driver find the line.
        raise RuntimeError(f"{_MARKER} {error.one_line()}") from None


def executor_error(error: BaseException) -> InputError | None:
    """The mlci error an executor raised, found in Spark's wrapped exception, or None."""
    found = _MARKED.search(str(error))
    if found is None:
        return None
    return InputError(found.group(1).strip())


def spark_type(kind: Any) -> Any:
    from pyspark.sql.pandas.types import from_arrow_type

    return from_arrow_type(kind)


def probe(frame: DataFrame) -> pd.DataFrame:
    """The first rows, on the driver."""
    return frame.limit(PROBE_ROWS).toPandas()


def map_predictions(frame: DataFrame, model: Any, columns: OutputColumns, prediction_type: Any) -> DataFrame:
    """``frame`` (the id and the model's inputs) as its predictions, lazily."""
    from pyspark.sql.types import DoubleType, StructField, StructType

    fields = [
        frame.schema[columns.id],
        StructField(columns.prediction, spark_type(prediction_type), True),
        *(StructField(name, DoubleType(), True) for name, _ in columns.probabilities),
    ]
    function = functools.partial(score_partition, model, columns.to_dict(), str(prediction_type))
    return frame.mapInPandas(function, StructType(fields))
