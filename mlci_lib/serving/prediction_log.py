"""The prediction log: what the serving runtime predicted, row by row, for monitoring.

Optional and sampled. A request hands its rows to :meth:`PredictionLog.submit`, which only
appends them to a bounded queue (in rows) and returns: when the queue is full the rows are
dropped and counted (``mlci_prediction_log_dropped_rows_total{reason="queue_full"}``), so a slow
disk never slows a request. One writer thread drains the queue into files in a folder, or into
JSON lines on standard output for a log shipper.

Each row holds the request id, the time, the model's name, version and digest, the inputs, the
prediction and the class probabilities. In a folder the files rotate by rows, size and age; a
file is written under a hidden temporary name and renamed when it is closed, so a reader (``mlci
monitor``, a shipper, a copy to a bucket) never sees half a file. A write that fails (a full
disk, a folder that went away) drops that file's rows, counted under ``reason="write_error"``,
and logging pauses for a while before trying a new file: serving goes on either way.

JSON Lines rows are nested (``{"inputs": {...}, "probabilities": {...}}``); Parquet files hold
the same row flattened (``inputs.<column>``, ``probabilities.<class>``, ``model.name``...), which
is also what :func:`read_prediction_logs` returns for both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import glob
import json
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mlci_lib.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from mlci_lib.serving.metrics import ServingMetrics

FORMATS = ("jsonl", "parquet")
#: A client's ``X-Request-Id`` is kept when it looks like an id; anything else gets a new one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}\Z")
#: Seconds logging pauses after a failed write before it tries a new file.
RETRY_AFTER_WRITE_ERROR = 10.0
FILE_PREFIX = "predictions-"
#: Rows encoded and written at once.
_CHUNK_ROWS = 1000
#: Seconds between the writer's rounds (it writes everything queued in one go).
WRITE_EVERY = 0.2


def request_id_of(header: str | None) -> str:
    """The client's request id when it is a plain token of at most 128 characters, else a new one."""
    if header and _REQUEST_ID.match(header):
        return header
    return os.urandom(16).hex()


@dataclasses.dataclass(frozen=True)
class LogSettings:
    """Where and how the serving runtime logs its predictions."""

    directory: Path | None = None
    stdout: bool = False
    sample_rate: float = 1.0
    format: str = "jsonl"
    max_rows: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    max_seconds: float = 300.0
    queue_rows: int = 10_000

    def __post_init__(self) -> None:
        if (self.directory is None) == (not self.stdout):
            raise InputError(
                "the prediction log needs exactly one destination",
                hint="pass --log-dir DIR or --log-stdout, not both",
            )
        if not 0.0 <= self.sample_rate <= 1.0:
            raise InputError(
                f"option --log-sample-rate must be between 0 and 1, got {self.sample_rate}",
                hint="1 logs every row, 0.1 one row in ten",
            )
        if self.format not in FORMATS:
            raise InputError(f"option --log-format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.format == "parquet":
            import importlib.util

            if importlib.util.find_spec("pyarrow") is None:
                raise InputError(
                    "Parquet prediction logs need pyarrow, which is not installed here (the serving "
                    "image does not carry it)",
                    hint="use --log-format jsonl",
                )
        if self.stdout and self.format != "jsonl":
            raise InputError("--log-stdout writes JSON lines", hint="drop --log-format parquet")
        for option, value in (
            ("--log-max-rows", self.max_rows),
            ("--log-max-bytes", self.max_bytes),
            ("--log-max-seconds", self.max_seconds),
            ("--log-queue-rows", self.queue_rows),
        ):
            if not value > 0:
                raise InputError(f"option {option} must be positive, got {value}")


@dataclasses.dataclass
class _Batch:
    timestamp: float
    request_id: str
    inputs: Any  # a float matrix (with ``columns``) or a data frame
    columns: Sequence[str] | None
    predictions: Any
    probabilities: Any
    rows: Sequence[int] | None  # the sampled rows, None for all


class PredictionLog:
    """A bounded queue of predicted rows and the thread that writes them out."""

    def __init__(
        self,
        settings: LogSettings,
        model: Mapping[str, Any],
        metrics: ServingMetrics,
        *,
        classes: Sequence[Any] | None = None,
        integer_columns: Iterable[str] = (),
        stdout: IO[str] | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.model = {
            "name": model.get("name"),
            "version": model.get("version"),
            "digest": model.get("digest"),
        }
        self.metrics = metrics
        #: Columns the numeric fast path carries as floats that the signature says are integers.
        self.integer_columns = frozenset(integer_columns)
        self.classes = (
            [c.item() if hasattr(c, "item") else c for c in classes] if classes is not None else None
        )
        self._stdout = stdout
        self._say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self._lock = threading.Lock()
        self._queue: list[_Batch] = []
        self._queued_rows = 0
        self._wake = threading.Event()
        # The writer wakes every WRITE_EVERY seconds, or sooner when half the queue is used:
        # waking it for each request cost a thread switch and a write per request.
        self._wake_rows = max(1, settings.queue_rows // 2)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._random = random.Random()
        self._writer: _Writer | None = None
        if settings.directory is not None:
            self.check_folder(settings.directory)

    @staticmethod
    def check_folder(folder: Path) -> None:
        """Create the log folder and check that a file can be written in it (InputError if not)."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".{FILE_PREFIX}probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise InputError(
                f"the prediction log folder {folder} (option --log-dir) is not writable: {exc.strerror}",
                hint="mount a writable volume there (docker run -v HOST_DIR:DIR, or a Kubernetes volume)",
            ) from None

    def start(self) -> PredictionLog:
        self._thread = threading.Thread(target=self._run, name="mlci-prediction-log", daemon=True)
        self._thread.start()
        return self

    # -- the request side: never blocks ----------------------------------------------------------

    def submit(
        self,
        request_id: str,
        inputs: Any,
        predictions: Any,
        probabilities: Any = None,
        *,
        columns: Sequence[str] | None = None,
    ) -> None:
        """Queue a request's rows (sampled), or drop and count them when the queue is full."""
        count = len(predictions)
        rate = self.settings.sample_rate
        rows: list[int] | None = None
        if rate < 1.0:
            draw = self._random.random
            rows = [i for i in range(count) if draw() < rate]
            count = len(rows)
            if not count:
                return
        batch = _Batch(time.time(), request_id, inputs, columns, predictions, probabilities, rows)
        with self._lock:
            if self._stopping or self._queued_rows + count > self.settings.queue_rows:
                full = True
            else:
                full = False
                self._queue.append(batch)
                self._queued_rows += count
                wake = self._queued_rows >= self._wake_rows
        if full:
            self.metrics.log_dropped(count, "queue_full")
        elif wake:
            self._wake.set()

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        tick = min(WRITE_EVERY, self.settings.max_seconds)
        while True:
            self._wake.wait(tick)
            self._wake.clear()
            with self._lock:
                batches, self._queue = self._queue, []
                self._queued_rows = 0
                stopping = self._stopping
            try:
                self._write(batches)
                if self._writer is not None:
                    self._writer.rotate_if_due(time.monotonic())
            except Exception as exc:  # the log must never take the server down; counted and said once
                self._say(f"mlci serve: prediction log: {type(exc).__name__}: {exc}")
                self.metrics.log_dropped(sum(_rows_of(b) for b in batches), "write_error")
            if stopping:
                if self._writer is not None:
                    self._writer.close()
                return

    def _write(self, batches: list[_Batch]) -> None:
        if not batches:
            return
        records = [record for batch in batches for record in self._records(batch)]
        if self.settings.stdout:
            out = self._stdout or sys.stdout
            try:
                out.write("".join(_json_line(r) for r in records))
                out.flush()
            except (OSError, ValueError):
                self.metrics.log_dropped(len(records), "write_error")
                return
            self.metrics.log_written(len(records))
            return
        if self._writer is None:
            assert self.settings.directory is not None
            self._writer = _Writer(self.settings, self.metrics, self._say)
        self._writer.add(records, time.monotonic())

    def _records(self, batch: _Batch) -> Iterable[dict[str, Any]]:
        inputs = batch.inputs
        if batch.columns is not None:  # a float matrix in column order
            values = inputs.tolist()
            columns = list(batch.columns)
            input_rows = [dict(zip(columns, row, strict=True)) for row in values]
            whole = [c for c in columns if c in self.integer_columns]
            for values_of in input_rows:
                for name in whole:
                    if values_of[name] == values_of[name]:  # not NaN
                        values_of[name] = int(values_of[name])  # a whole number: the fast path checked
        else:
            input_rows = inputs.to_dict("records")
        predictions = (
            batch.predictions.tolist() if hasattr(batch.predictions, "tolist") else list(batch.predictions)
        )
        probabilities = batch.probabilities.tolist() if batch.probabilities is not None else None
        stamp = (
            datetime.datetime.fromtimestamp(batch.timestamp, datetime.timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        rows = batch.rows if batch.rows is not None else range(len(predictions))
        classes = self.classes
        for i in rows:
            record: dict[str, Any] = {
                "request_id": batch.request_id,
                "row": i,
                "timestamp": stamp,
                "model": self.model,
                "inputs": input_rows[i],
                "prediction": predictions[i],
            }
            if probabilities is not None and classes is not None:
                record["probabilities"] = {str(c): p for c, p in zip(classes, probabilities[i], strict=True)}
            yield record

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, close the open file (renamed into place) and stop the thread."""
        with self._lock:
            self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _rows_of(batch: _Batch) -> int:
    return len(batch.rows) if batch.rows is not None else len(batch.predictions)


def _json_line(record: Mapping[str, Any]) -> str:
    try:
        return json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n"
    except (TypeError, ValueError):  # NaN, numpy or date values: JSON's spelling of them
        from mlci_lib.results import to_jsonable

        return json.dumps(to_jsonable(record), allow_nan=False, separators=(",", ":"), default=str) + "\n"


class _Writer:
    """The open log file of a folder: rows appended, renamed into place when it rotates."""

    def __init__(self, settings: LogSettings, metrics: ServingMetrics, say: Callable[[str], None]) -> None:
        assert settings.directory is not None
        self.folder = settings.directory
        self.settings = settings
        self.metrics = metrics
        self.say = say
        self.sequence = 0
        self._tag = os.urandom(4).hex()
        self.file: IO[str] | None = None
        self.buffer: list[dict[str, Any]] = []  # Parquet rows, written when the file closes
        self.rows = 0
        self.bytes = 0
        self.opened = 0.0
        self.temp: Path | None = None
        self.final: Path | None = None
        self.paused_until = 0.0

    def _open(self, now: float) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
        self.sequence += 1
        # The time and pid alone collide: two replicas in containers are both pid 1, and two logs
        # in one process (two served models) open files in the same second; a random tag keeps
        # one log from replacing another's file.
        name = f"{FILE_PREFIX}{stamp}Z-{os.getpid()}-{self._tag}-{self.sequence:06d}.{self.settings.format}"
        self.final = self.folder / name
        self.temp = self.folder / f".{name}.partial"
        if self.settings.format == "jsonl":
            self.file = open(self.temp, "w", encoding="utf-8")  # noqa: SIM115 - closed on rotation
        self.rows = self.bytes = 0
        self.buffer = []
        self.opened = now

    def add(self, records: list[dict[str, Any]], now: float) -> None:
        """Append ``records``; a file closes at ``max_rows`` rows, or with the line that reaches
        ``max_bytes`` (JSON Lines; Parquet's size is estimated)."""
        if now < self.paused_until:
            self.metrics.log_dropped(len(records), "write_error")
            return
        start = 0
        while start < len(records):
            if self.temp is None:
                try:
                    self._open(now)
                except OSError as exc:
                    self._fail(exc, len(records) - start, now)
                    return
            room = max(1, min(self.settings.max_rows - self.rows, _CHUNK_ROWS))
            chunk = records[start : start + room]
            try:
                if self.file is not None:
                    lines, budget = [], self.settings.max_bytes - self.bytes
                    for record in chunk:
                        lines.append(_json_line(record))  # ASCII (json's default): chars are bytes
                        budget -= len(lines[-1])
                        if budget <= 0:
                            break
                    chunk = chunk[: len(lines)]
                    text = "".join(lines)
                    self.file.write(text)
                    self.file.flush()
                    self.bytes += len(text)
                else:
                    self.buffer.extend(chunk)
                    self.bytes += len(chunk) * (len(chunk[0]) + len(chunk[0]["inputs"])) * 16
                self.rows += len(chunk)
            except OSError as exc:
                self._fail(exc, len(records) - start, now)
                return
            start += len(chunk)
            if self.rows >= self.settings.max_rows or self.bytes >= self.settings.max_bytes:
                self.close(now)
                if now < self.paused_until:  # the close failed: counted, logging paused
                    self.metrics.log_dropped(len(records) - start, "write_error")
                    return

    def rotate_if_due(self, now: float) -> None:
        if self.temp is not None and self.rows and now - self.opened >= self.settings.max_seconds:
            self.close(now)

    def close(self, now: float | None = None) -> None:
        if self.temp is None or self.final is None:
            return
        try:
            if self.file is not None:
                self.file.flush()
                os.fsync(self.file.fileno())
                self.file.close()
                self.file = None
            elif self.buffer:
                _write_parquet(self.buffer, self.temp)
            if self.rows:
                os.replace(self.temp, self.final)
                self.metrics.log_written(self.rows)
            else:
                self.temp.unlink(missing_ok=True)
        except OSError as exc:
            self._fail(exc, 0, time.monotonic() if now is None else now)
            return
        self.temp = self.final = None
        self.rows = self.bytes = 0
        self.buffer = []

    def _fail(self, exc: OSError, more_rows: int, now: float) -> None:
        """Drop the open file and its rows (counted), and pause before the next file."""
        lost = self.rows + more_rows
        self.metrics.log_dropped(lost, "write_error")
        self.say(
            f"mlci serve: prediction log: cannot write to {self.folder}: {exc.strerror or exc}; "
            f"{lost} rows dropped, logging pauses {RETRY_AFTER_WRITE_ERROR:.0f} s (serving goes on)"
        )
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None
        if self.temp is not None:
            with contextlib.suppress(OSError):
                self.temp.unlink(missing_ok=True)
        self.temp = self.final = None
        self.rows = self.bytes = 0
        self.buffer = []
        self.paused_until = now + RETRY_AFTER_WRITE_ERROR


def _flat(record: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping):
            for inner, item in value.items():
                flat[f"{key}.{inner}"] = item
        else:
            flat[key] = value
    return flat


def _write_parquet(records: list[dict[str, Any]], path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame([_flat(r) for r in records])
    try:
        frame.to_parquet(path, index=False)
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency of mlci
        raise OSError(f"Parquet needs pyarrow: {exc}") from None


def log_files(patterns: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The closed log files named by files, folders or glob patterns, in name (time) order."""
    found: set[Path] = set()
    for pattern in patterns:
        text = str(pattern)
        path = Path(text)
        if path.is_dir():
            candidates = [p for p in path.iterdir() if p.is_file()]
        elif any(ch in text for ch in "*?["):
            candidates = [Path(p) for p in glob.glob(text, recursive=True)]
        elif path.is_file():
            candidates = [path]
        else:
            raise InputError(f"prediction log {text} does not exist", hint="pass a file, a folder or a glob")
        found.update(
            p for p in candidates if p.suffix in (".jsonl", ".parquet") and not p.name.startswith(".")
        )
    return sorted(found)


def read_prediction_logs(files: Sequence[Path]) -> pd.DataFrame:
    """The rows of closed log files as one flat frame (``inputs.<column>``, ``model.digest``...)."""
    import pandas as pd

    frames = []
    for file in files:
        try:
            if file.suffix == ".parquet":
                frames.append(pd.read_parquet(file))
            else:
                with open(file, encoding="utf-8") as handle:
                    records = [_flat(json.loads(line)) for line in handle if line.strip()]
                frames.append(pd.DataFrame(records))
        except (OSError, ValueError) as exc:
            raise InputError(f"prediction log {file} cannot be read: {exc}") from None
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
