"""``predict_batch``: score a table with a model, on pandas in chunks or on Spark, into Parquet.

The model loads as ``mlci serve`` loads it (:func:`mlci_lib.models.load_model`: by content, no
pickle unless allowed, skops' trusted types), optionally converted to ONNX (``runtime="onnx"``,
checked against the native model on the first rows, as the serving runtime does on its warm-up
rows), and predicts through the serving runtime's own code path. Bad input (options, the model,
the data's columns, the output path) stops the run with an :class:`InputError` before any output
is written.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from mlci_lib.errors import InputError, ServiceError, UsageError
from mlci_lib.predict.columns import DEFAULT_PREDICTION_COLUMN, DEFAULT_PROBABILITY_PREFIX, output_columns
from mlci_lib.predict.output import (
    METADATA_KEY,
    SIDECAR,
    PredictionsMetadata,
    atomic_output,
    check_output,
    discard_previous,
    predictions_metadata,
    write_sidecar,
)
from mlci_lib.predict.scoring import Scorer, model_columns
from mlci_lib.results import Result

ENGINES = ("pandas", "spark")
RUNTIMES = ("native", "onnx")
DEFAULT_CHUNK_ROWS = 100_000
#: The largest chunk: beyond it a chunk is "the whole table" for most inputs, which chunking avoids.
MAX_CHUNK_ROWS = 10_000_000


@dataclasses.dataclass(frozen=True)
class PredictResult(Result):
    """What one ``mlci predict`` run scored and wrote."""

    SCHEMA: ClassVar[str] = "mlci.predict-result"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    engine: Literal["pandas", "spark"]
    data: str
    output: str
    rows: int
    #: Chunks scored (pandas: Parquet row groups written), and the rows of the largest one;
    #: None on Spark, where the batches are the executors' business.
    chunks: int | None
    largest_chunk_rows: int | None
    chunk_rows: int
    seconds: float
    rows_per_second: float | None
    model: dict[str, Any]
    columns: dict[str, Any]
    #: Where the output keeps its metadata.
    metadata: str
    mlci_version: str
    conversion: dict[str, Any] | None = None


def check_chunk_rows(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CHUNK_ROWS:
        raise InputError(
            f"option --chunk-rows must be a whole number from 1 to {MAX_CHUNK_ROWS}, got {value!r}"
        )
    return value


def predict_batch(
    model: str | os.PathLike[str],
    data: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    id_column: str = "id",
    engine: str = "pandas",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    runtime: str = "native",
    allow_pickle: bool = False,
    trusted_types: Iterable[str] = (),
    info: Mapping[str, Any] | None = None,
    prediction_column: str = DEFAULT_PREDICTION_COLUMN,
    probability_prefix: str = DEFAULT_PROBABILITY_PREFIX,
    spark: Any = None,
) -> PredictResult:
    """Score ``data`` with ``model`` into the Parquet ``output`` (a folder on Spark).

    ``spark`` is a :class:`~mlci_lib.spark.session.SparkSettings` (default: ``local[*]``, or the
    process's running session).
    """
    from mlci_lib.models import load_model
    from mlci_lib.serving.server import version_info

    if engine not in ENGINES:
        raise UsageError(f"option --engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if runtime not in RUNTIMES:
        raise UsageError(f"option --runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    check_chunk_rows(chunk_rows)
    if not str(id_column).strip():
        raise InputError("option --id-column is empty", hint="name the column that identifies each row")
    target = check_output(output, folder=engine == "spark", data=data)
    # From here on, whatever stops the run: no output of an earlier run stands for this one.
    discard_previous(target)
    trusted = tuple(trusted_types)
    loaded = load_model(model, allow_pickle=allow_pickle, trusted_types=trusted)
    identity = version_info(loaded, info or {})["model"]
    columns = output_columns(
        id_column,
        loaded.classes if loaded.is_classifier else None,
        prediction_column=prediction_column,
        probability_prefix=probability_prefix,
    )
    started = time.perf_counter()
    run = _Run(loaded, identity, columns, runtime, engine, Path(model), allow_pickle, trusted)
    chunks: int | None = None
    largest: int | None = None
    if engine == "pandas":
        rows, chunks, largest = run.on_pandas(data, target, chunk_rows)
        where = f"Parquet key-value metadata {METADATA_KEY!r}"
    else:
        rows = run.on_spark(data, target, chunk_rows, spark)
        where = f"{SIDECAR} in the output folder"
    seconds = time.perf_counter() - started
    from mlci_lib import __version__

    return PredictResult(
        passed=True,
        engine="spark" if engine == "spark" else "pandas",
        data=str(data),
        output=str(target),
        rows=rows,
        chunks=chunks,
        largest_chunk_rows=largest,
        chunk_rows=chunk_rows,
        seconds=round(seconds, 3),
        rows_per_second=round(rows / seconds, 1) if seconds > 0 else None,
        model=run.metadata.model if run.metadata else dict(identity),
        columns=columns.to_dict(),
        metadata=where,
        mlci_version=__version__,
        conversion=run.conversion.to_dict() if run.conversion is not None else None,
    )


class _Run:
    """The state of one run: the model as loaded, then as it scores (after the first rows)."""

    def __init__(
        self, loaded: Any, identity: Mapping[str, Any], columns: Any, runtime: str, engine: str,
        model_path: Path, allow_pickle: bool, trusted: tuple[str, ...],
    ) -> None:  # fmt: skip
        self.loaded = loaded
        self.identity = identity
        self.columns = columns
        self.runtime = runtime
        self.engine = engine
        self.model_path = model_path
        self.allow_pickle = allow_pickle
        self.trusted = trusted
        self.conversion: Any = None
        self.metadata: PredictionsMetadata | None = None
        self.onnx_bytes: bytes | None = None

    def scorer_for(self, rows: Any) -> Scorer:
        """The scorer, once the first rows are known (an ONNX conversion is checked on them)."""
        scoring = self.loaded
        if self.runtime == "onnx" and self.loaded.framework != "onnx":
            import tempfile

            from mlci_lib.serving.server import convert_to_onnx

            with tempfile.TemporaryDirectory(prefix="mlci-onnx-") as scratch:
                file = Path(scratch) / "model.onnx"
                scoring, self.conversion = convert_to_onnx(self.loaded, rows, file)
                self.onnx_bytes = file.read_bytes()
        self.metadata = predictions_metadata(
            self.identity,
            self.columns.to_dict(),
            engine=self.engine,
            runtime="onnx" if scoring.framework == "onnx" else "native",
        )
        return Scorer(scoring, self.columns, metadata={METADATA_KEY: self.metadata.to_json(indent=None)})

    def on_pandas(self, data: str | os.PathLike[str], target: Path, chunk_rows: int) -> tuple[int, int, int]:
        import pyarrow.parquet as pq

        from mlci_lib.predict.sources import open_chunks

        chunks = open_chunks(
            data, id_column=self.columns.id, columns=model_columns(self.loaded), chunk_rows=chunk_rows
        )
        rows = count = largest = 0
        scorer: Scorer | None = None
        with atomic_output(target) as temporary:
            writer = None
            try:
                for chunk in chunks:
                    if scorer is None:
                        scorer = self.scorer_for(chunk.frame)
                    size = len(chunk.frame)
                    where = f"input {data}, rows {chunk.start + 1}-{chunk.start + size}"
                    table = scorer.score(chunk.frame, chunk.ids, where=where)
                    if writer is None:
                        writer = pq.ParquetWriter(temporary, table.schema)
                    # One row group per chunk: the output is read back as it was written.
                    writer.write_table(table, row_group_size=max(1, size))
                    rows, count, largest = rows + size, count + 1, max(largest, size)
                if writer is None:
                    raise InputError(f"input {data} has no rows", hint="check the step that writes it")
            finally:
                if writer is not None:
                    writer.close()
        return rows, count, largest

    def on_spark(self, data: str | os.PathLike[str], target: Path, chunk_rows: int, settings: Any) -> int:
        from mlci_lib.predict import spark_engine
        from mlci_lib.predict.sources import require_columns
        from mlci_lib.spark.session import is_connect_session, spark_session
        from mlci_lib.spark.tables import read_table, spark_errors

        session = spark_session(settings)
        frame = read_table(session, str(data), what="input")
        wanted = require_columns(
            list(frame.columns), self.columns.id, model_columns(self.loaded), Path(str(data))
        )
        frame = frame.select(*wanted)
        with spark_errors(f"input {data}"):
            first = spark_engine.probe(frame)
        if len(first) == 0:
            raise InputError(f"input {data} has no rows", hint="check the step that writes it")
        scorer = self.scorer_for(first)
        scorer.score(first, first[self.columns.id].to_numpy(), where=f"input {data}, its first rows")
        if self.onnx_bytes is not None:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="mlci-onnx-") as scratch:
                file = Path(scratch) / "model.onnx"
                file.write_bytes(self.onnx_bytes)
                payload = spark_engine.ModelPayload.of(
                    file, key=f"onnx:{scorer.model.digest}", allow_pickle=False, trusted_types=(),
                    onnx=True, source=str(self.model_path), metadata=scorer.model.metadata,
                )  # fmt: skip
        else:
            # The rules are part of the key: a worker never reuses a model loaded under other rules.
            rules = f"{self.allow_pickle}:{','.join(self.trusted)}"
            payload = spark_engine.ModelPayload.of(
                self.model_path, key=f"native:{self.identity.get('digest')}:{rules}",
                allow_pickle=self.allow_pickle, trusted_types=self.trusted,
            )  # fmt: skip
        model: Any = payload
        if not is_connect_session(session):
            # Spark Connect has no SparkContext, so no broadcast: the payload travels inside the
            # function, once per task instead of once per executor.
            model = session.sparkContext.broadcast(payload)
        predictions = spark_engine.map_predictions(frame, model, self.columns, scorer.prediction_type)
        batch_key = "spark.sql.execution.arrow.maxRecordsPerBatch"
        previous = session.conf.get(batch_key, None)
        session.conf.set(batch_key, str(chunk_rows))
        try:
            with atomic_output(target) as temporary:
                try:
                    predictions.write.mode("error").parquet(str(temporary))
                except Exception as error:
                    found = spark_engine.executor_error(error)
                    if found is not None:
                        raise found from None
                    if not type(error).__module__.startswith(("pyspark", "py4j", "grpc")):
                        raise
                    first_line = next((x.strip() for x in str(error).splitlines() if x.strip()), "")
                    raise ServiceError(
                        f"Spark could not score input {data}: {type(error).__name__}: {first_line[:300]}",
                        hint="rerun with --debug for Spark's trace; check the executors' logs",
                    ) from None
                rows = _folder_rows(temporary)
                assert self.metadata is not None
                write_sidecar(temporary, dataclasses.replace(self.metadata, rows=rows))
        finally:
            if previous is None:
                session.conf.unset(batch_key)
            else:
                session.conf.set(batch_key, previous)
            if hasattr(model, "unpersist"):
                model.unpersist()
        return rows


def _folder_rows(folder: Path) -> int:
    """Rows of a Parquet folder, from its files' footers (no data read)."""
    import pyarrow.parquet as pq

    from mlci_lib.spark.tables import parquet_files

    return sum(pq.read_metadata(f).num_rows for f in parquet_files(folder) if f.suffix == ".parquet")
