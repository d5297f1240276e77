"""``mlci image smoke``: prove an image serves the right predictions, fast enough, before a push.

The container runs the way production should run it: read-only root file system, a tmpfs for
/tmp, the image's own non-root user, no capabilities. The image's HEALTHCHECK must report it
healthy; then the sample rows are sent and every prediction must equal the one the same model
gives in-process on the same rows. Latency is measured over a number of requests and written
as the latency JSON the gate's latency rules read. The container is always removed.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import math
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlci_lib.errors import InputError, ServiceError
from mlci_lib.image.engine import api_error, docker_client
from mlci_lib.results import Result, to_jsonable

LATENCY_SCHEMA = "mlci.latency"


@dataclasses.dataclass(frozen=True)
class Latency(Result):
    SCHEMA = LATENCY_SCHEMA
    SCHEMA_VERSION = 1

    requests: int
    rows_per_request: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float


@dataclasses.dataclass(frozen=True)
class Mismatch:
    row: int
    field: str  # "prediction" or "probability"
    expected: Any
    served: Any


#: Sample rows the smoke result keeps, with their predictions, for ``mlci deploy verify``.
RECORDED_ROWS = 100


@dataclasses.dataclass(frozen=True)
class SmokeSample:
    """Rows the image was proven on and what it served for them (equal, within ``tolerance``,
    to the model in-process): a deployment of the same image must serve the same."""

    rows: tuple[dict[str, Any], ...]
    predictions: tuple[Any, ...]
    probabilities: tuple[Any, ...] | None
    tolerance: float


def smoke_sample(
    rows: list[dict[str, Any]], predictions: Any, probabilities: Any, tolerance: float
) -> SmokeSample:
    """The first :data:`RECORDED_ROWS` rows and their in-process predictions, as JSON values."""
    n = min(len(rows), RECORDED_ROWS)
    return SmokeSample(
        rows=tuple(rows[:n]),
        predictions=tuple(to_jsonable(predictions[:n])),
        probabilities=None if probabilities is None else tuple(to_jsonable(probabilities[:n])),
        tolerance=tolerance,
    )


@dataclasses.dataclass(frozen=True)
class SmokeResult(Result):
    SCHEMA = "mlci.image-smoke"
    SCHEMA_VERSION = 1

    passed: bool
    image: str
    image_id: str
    user: str
    read_only: bool
    health: str
    rows: int
    mismatches: tuple[Mismatch, ...]
    mismatch_count: int
    latency: Latency | None
    latency_file: str | None
    version: dict[str, Any] | None
    message: str
    logs_tail: str
    #: Recorded when the predictions matched: what a deployment of the image must serve.
    sample: SmokeSample | None = None


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), without numpy."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_of(durations_s: list[float], rows_per_request: int) -> Latency:
    ms = [d * 1000.0 for d in durations_s]
    return Latency(
        requests=len(ms),
        rows_per_request=rows_per_request,
        p50_ms=round(percentile(ms, 50), 3),
        p95_ms=round(percentile(ms, 95), 3),
        p99_ms=round(percentile(ms, 99), 3),
        mean_ms=round(sum(ms) / len(ms), 3),
        max_ms=round(max(ms), 3),
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_root(user: str) -> bool:
    name = user.split(":")[0].strip()
    return name in ("", "0", "root")


def _same(expected: Any, served: Any, tolerance: float) -> bool:
    if isinstance(expected, float) or isinstance(served, float):
        try:
            e, s = float(expected), float(served)
        except (TypeError, ValueError):
            return False
        if math.isnan(e) or math.isnan(s):
            return math.isnan(e) and math.isnan(s)
        return abs(e - s) <= tolerance * max(1.0, abs(e))
    return bool(expected == served)


class _Client:
    def __init__(self, port: int, timeout: float) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        self.connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def get(self, path: str) -> tuple[int, Any]:
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def close(self) -> None:
        self.connection.close()


def smoke_test_image(
    image: str,
    model: str | os.PathLike[str],
    sample_data: str | os.PathLike[str],
    *,
    requests: int = 100,
    rows_per_request: int = 1,
    latency_output: str | os.PathLike[str] | None = None,
    max_rows: int = 1000,
    tolerance: float = 1e-9,
    health_timeout: float = 120.0,
    allow_root: bool = False,
    allow_pickle: bool = False,
    trusted_types: Iterable[str] = (),
) -> SmokeResult:
    """Run ``image`` locked down, compare its predictions on ``sample_data`` with ``model``'s.

    ``passed`` is False (never an exception) when the container does not become healthy, runs as
    root, or serves any prediction that differs; bad inputs and an unreachable engine raise.
    """
    from mlci_lib.files import write_json_atomic
    from mlci_lib.models import load_model
    from mlci_lib.serving.server import read_rows_file

    if requests < 1 or rows_per_request < 1:
        raise InputError("options --requests and --rows-per-request must be at least 1")
    reference = load_model(Path(model), allow_pickle=allow_pickle, trusted_types=trusted_types)
    frame = read_rows_file(sample_data, what="sample data", option="--sample-data").head(max_rows)
    if frame.empty:
        raise InputError(f"sample data {sample_data} has no rows", hint="give a few evaluation rows")
    ready = reference.prepare(frame, source=f"sample data {sample_data}")
    rows = to_jsonable(ready.to_dict(orient="records"))

    client = docker_client()
    try:
        found = client.images.get(image)
    except Exception as exc:
        raise api_error(f"finding image {image}", exc) from None
    config = found.attrs.get("Config") or {}
    user = str(config.get("User") or "")
    image_id = str(found.id)
    health_cmd = (config.get("Healthcheck") or {}).get("Test")

    def result(passed: bool, message: str, **more: Any) -> SmokeResult:
        fields: dict[str, Any] = {
            "passed": passed,
            "image": image,
            "image_id": image_id,
            "user": user,
            "read_only": True,
            "health": "none",
            "rows": len(rows),
            "mismatches": (),
            "mismatch_count": 0,
            "latency": None,
            "latency_file": None,
            "version": None,
            "message": message,
            "logs_tail": "",
        }
        fields.update(more)
        return SmokeResult(**fields)

    if _is_root(user) and not allow_root:
        return result(
            False, f"image {image} runs as root (USER {user or 'unset'}); set a numeric non-root USER"
        )
    if not health_cmd or health_cmd == ["NONE"]:
        return result(False, f"image {image} has no HEALTHCHECK; add one (the mlci template has it)")

    port = _free_port()
    container = None
    health = "starting"
    try:
        try:
            container = client.containers.run(
                image,
                detach=True,
                network_mode="host",
                read_only=True,
                tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
                environment={"MLCI_SERVE_PORT": str(port), "MLCI_SERVE_HOST": "127.0.0.1"},
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                # Same check as the image's, run every half second so the wait is short.
                healthcheck={"interval": 500_000_000, "start_period": int(health_timeout * 1e9)},
                labels={"io.mlci.smoke": "true"},
            )
        except Exception as exc:
            raise api_error(f"starting a container of {image}", exc) from None
        deadline = time.monotonic() + health_timeout
        while time.monotonic() < deadline:
            container.reload()
            state = container.attrs.get("State") or {}
            health = str((state.get("Health") or {}).get("Status") or "none")
            if state.get("Status") in ("exited", "dead"):
                logs = _logs(container)
                return result(
                    False,
                    f"the container exited (code {state.get('ExitCode')}) before it became healthy: "
                    f"{_last_line(logs)}",
                    health=health,
                    logs_tail=logs,
                )
            if health == "healthy":
                break
            time.sleep(0.25)
        else:
            logs = _logs(container)
            return result(
                False,
                f"the container did not become healthy within {health_timeout:.0f} s (health: {health})",
                health=health,
                logs_tail=logs,
            )
        try:
            expected_pred, expected_proba = reference.predict(ready, source=f"sample data {sample_data}")
        except Exception as exc:  # the model itself cannot predict: nothing to compare with, fail closed
            return result(
                False,
                f"the model {model} cannot predict on the sample rows in-process: "
                f"{type(exc).__name__}: {exc}",
                health=health,
            )
        http_client = _Client(port, timeout=30.0)
        try:
            status, version = http_client.get("/version")
            mismatches: list[Mismatch] = []
            count = 0
            batch = 100
            for start in range(0, len(rows), batch):
                chunk = rows[start : start + batch]
                status, answer = http_client.post("/predict", json.dumps({"rows": chunk}).encode())
                if status != 200:
                    return result(
                        False,
                        f"POST /predict answered {status}: {(answer or {}).get('error', answer)}",
                        health=health,
                        version=version,
                        logs_tail=_logs(container),
                    )
                count += _compare(answer, start, expected_pred, expected_proba, tolerance, mismatches)
            durations = []
            timed_rows = (rows * (rows_per_request // len(rows) + 1))[:rows_per_request]
            body = json.dumps({"rows": timed_rows}).encode()
            for _ in range(requests):
                began = time.perf_counter()
                status, _answer = http_client.post("/predict", body)
                durations.append(time.perf_counter() - began)
                if status != 200:
                    return result(
                        False,
                        f"POST /predict answered {status} while measuring latency",
                        health=health,
                        version=version,
                    )
        finally:
            http_client.close()
        latency = latency_of(durations, rows_per_request)
        latency_file = None
        if latency_output:
            write_json_atomic(latency_output, latency.to_dict())
            latency_file = str(latency_output)
        passed = count == 0
        message = (
            f"{len(rows)} rows served identically; p50 {latency.p50_ms} ms, p99 {latency.p99_ms} ms"
            if passed
            else f"{count} of {len(rows)} rows served a different prediction than the model in-process"
        )
        return result(
            passed,
            message,
            health=health,
            mismatches=tuple(mismatches[:20]),
            mismatch_count=count,
            latency=latency,
            latency_file=latency_file,
            version=version,
            sample=smoke_sample(rows, expected_pred, expected_proba, tolerance) if passed else None,
        )
    except (OSError, http.client.HTTPException, ValueError) as exc:
        logs = _logs(container) if container is not None else ""
        return result(
            False,
            f"talking to the container failed: {type(exc).__name__}: {exc}",
            health=health,
            logs_tail=logs,
        )
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except Exception as exc:  # the verdict stands; a leftover container is reported
                raise ServiceError(f"could not remove smoke container {container.id[:12]}: {exc}") from None


def _compare(
    answer: Any,
    start: int,
    expected_pred: Any,
    expected_proba: Any,
    tolerance: float,
    mismatches: list[Mismatch],
) -> int:
    served = (answer or {}).get("predictions") or []
    probabilities = (answer or {}).get("probabilities")
    bad = 0
    for offset, value in enumerate(served):
        index = start + offset
        row_bad = False
        expected = to_jsonable(expected_pred[index])
        if not _same(expected, value, tolerance):
            row_bad = True
            mismatches.append(Mismatch(index + 1, "prediction", expected, value))
        if expected_proba is not None:
            got = (probabilities or [None] * (offset + 1))[offset]
            want = to_jsonable(expected_proba[index])
            if (
                not isinstance(got, list)
                or len(got) != len(want)
                or not all(_same(w, g, tolerance) for w, g in zip(want, got, strict=True))
            ):
                if not row_bad:
                    mismatches.append(Mismatch(index + 1, "probability", want, got))
                row_bad = True
        bad += row_bad
    expected_count = min(len(expected_pred) - start, 100)
    if len(served) != expected_count:
        mismatches.append(Mismatch(start + 1, "row count", expected_count, len(served)))
        bad += abs(expected_count - len(served)) or 1
    return bad


def _logs(container: Any) -> str:
    try:
        text = str(container.logs(tail=30).decode("utf-8", "replace"))
    except Exception:
        return ""
    return text.strip()[-3000:]


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:400] if lines else "no output"
