"""The HTTP/1.1 transport of the serving runtime, built to stay up under hostile clients.

Connections are read on one asyncio event loop and requests are answered on a small pool of
worker threads, so a connection costs a socket and a buffer while it is idle or slow, and a
thread only while its complete request is being predicted. The limits, each answered with a
one-line JSON error:

- **connections**: at most ``max_connections`` are open at once; one more is answered ``503`` at
  once and closed. A slow-loris flood therefore neither grows the thread count nor keeps
  ordinary clients out: their requests go to the workers as soon as they are complete;
- **time**: ``request_timeout`` bounds the *whole* request, from the wait for its first line to
  the last byte of its body, and writing the answer; an idle keep-alive connection is closed
  after it too;
- **framing**: a request carrying both ``Transfer-Encoding`` and ``Content-Length`` is refused
  (RFC 9112 section 6.1: a request-smuggling vector), chunked bodies are refused (411), and so
  are repeated ``Content-Length`` headers that disagree, oversized request lines and headers;
- **work and memory**: at most ``max_concurrent_work`` requests are parsed and predicted at once
  (a body of a few megabytes can expand to hundreds of megabytes of Python objects), and bodies
  over 64 KiB are read only a few at a time, so buffered bodies stay bounded too;
- **errors**: nothing a client sends makes the server print a traceback.

Why not uvicorn: it is asyncio too, but it bounds neither the time to send a request's headers nor
concurrent work, so these limits would be written on top of it anyway, and the serving image would
carry its dependencies. The figures under a flood are from ``bench/serving_hostile.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from mlci_lib.results import to_jsonable

#: Connections open at once; one more is answered 503 and closed.
DEFAULT_MAX_CONNECTIONS = 1024
#: Requests parsed and predicted at once (the rest wait for a worker).
DEFAULT_MAX_CONCURRENT_WORK = 4
#: Bodies up to this size are read without waiting for a body slot.
SMALL_BODY_BYTES = 64 * 1024
MAX_REQUEST_LINE = 8192
MAX_HEADER_BYTES = 65536
MAX_HEADERS = 100

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    422: "Unprocessable Content",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


@dataclasses.dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    request_timeout: float
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_concurrent_work: int = DEFAULT_MAX_CONCURRENT_WORK


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclasses.dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        try:
            text = json.dumps(data, allow_nan=False, separators=(",", ":"))
        except ValueError:  # NaN or infinity in predictions: JSON spells them null
            text = json.dumps(to_jsonable(data), allow_nan=False, separators=(",", ":"))
        return cls(status, text.encode(), "application/json", headers)


#: What the server calls, on a worker thread, for every complete request.
App = Callable[[Request], Response]


class _Refused(Exception):
    """A request the transport answers itself; the connection is closed after the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HTTPServer:
    """Serve ``app`` on ``address`` from a background thread: ``start()``, ``url``, ``stop()``."""

    def __init__(self, address: tuple[str, int], app: App, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.open_connections = 0
        self.refused_connections = 0
        self._workers = concurrent.futures.ThreadPoolExecutor(
            max_workers=limits.max_concurrent_work, thread_name_prefix="mlci-predict"
        )
        self._loop = asyncio.new_event_loop()
        # Bound here, so that an address in use fails in the caller's thread, at once.
        self._socket = socket.create_server(address, reuse_port=False, backlog=512)
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mlci-serve", daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._body_slots = asyncio.Semaphore(max(2, self.limits.max_concurrent_work))
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, sock=self._socket, limit=MAX_HEADER_BYTES)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def stop(self) -> None:
        if self._thread is None:
            self._socket.close()
            return

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            pending = set(self._tasks)
            while pending:
                # Cancelled again until done: Python 3.11's asyncio.wait_for loses a cancellation
                # that arrives as its inner future completes (fixed in 3.12), and the connection
                # then waits for its next request, up to the request timeout.
                for task in pending:
                    task.cancel()
                _, pending = await asyncio.wait(pending, timeout=0.05)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        self._workers.shutdown(wait=False, cancel_futures=True)
        self._socket.close()

    # -- one connection -------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        if self.open_connections >= self.limits.max_connections:
            self.refused_connections += 1
            self._tasks.discard(task)
            busy = Response.json(503, {"error": "the server is at its connection limit; retry shortly"})
            await self._write(writer, busy, close=True, extra=(("Retry-After", "1"),))
            await _linger(reader, writer)
            writer.close()
            return
        self.open_connections += 1
        try:
            while True:
                deadline = time.monotonic() + self.limits.request_timeout
                try:
                    request, keep_alive = await self._read_request(reader, writer, deadline)
                except _Refused as refused:
                    await self._write(
                        writer, Response.json(refused.status, {"error": str(refused)}), close=True
                    )
                    return
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return  # a slow, silent or vanished client: closed without an answer
                if request is None:
                    return
                response = await self._loop.run_in_executor(self._workers, self._answer, request)
                if not await self._write(writer, response, close=not keep_alive):
                    return
                if not keep_alive:
                    return
        except asyncio.CancelledError:
            pass
        finally:
            self.open_connections -= 1
            self._tasks.discard(task)
            writer.close()

    def _answer(self, request: Request) -> Response:
        try:
            return self.app(request)
        except MemoryError:
            return Response.json(503, {"error": "the request needed more memory than the server has"})
        except Exception as exc:  # one request's failure is answered, never a traceback in the log
            # Nothing the client chose (its path, the data in the error) reaches the log, which a
            # CI runner may read for workflow commands: the method and the error's type only.
            print(f"mlci serve: a {request.method} request failed: {type(exc).__name__}", file=sys.stderr)
            return Response.json(500, {"error": f"internal error: {type(exc).__name__}"})

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deadline: float
    ) -> tuple[Request | None, bool]:
        def left() -> float:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            return remaining

        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), left())
        except asyncio.IncompleteReadError as exc:
            if not exc.partial.strip():
                return None, False  # the client closed an idle keep-alive connection
            raise
        except asyncio.LimitOverrunError:
            raise _Refused(
                431, f"the request line and headers are longer than {MAX_HEADER_BYTES} bytes"
            ) from None
        lines = head[:-4].split(b"\r\n")
        while lines and not lines[0]:
            lines.pop(0)  # RFC 9112 2.2: empty lines before a request line are ignored
        if not lines:
            raise _Refused(400, "empty request")
        method, path, version = _request_line(lines[0])
        headers: dict[str, str] = {}
        seen: dict[str, list[str]] = {}
        if len(lines) - 1 > MAX_HEADERS:
            raise _Refused(431, f"a request may carry at most {MAX_HEADERS} headers")
        for raw in lines[1:]:
            if raw[:1] in (b" ", b"\t"):
                raise _Refused(400, "folded header lines are not accepted")
            name, sep, value = raw.partition(b":")
            if not sep or not name or name != name.strip():
                raise _Refused(400, "malformed header line")
            key = name.decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            seen.setdefault(key, []).append(text)
            headers[key] = text
        length = _body_length(seen)
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        if length > self.limits.max_body_bytes:
            raise _Refused(413, f"request body is {length} bytes, the limit is {self.limits.max_body_bytes}")
        body = b""
        if length:
            if headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            if length > SMALL_BODY_BYTES:
                await asyncio.wait_for(self._body_slots.acquire(), left())
                try:
                    body = await asyncio.wait_for(reader.readexactly(length), left())
                finally:
                    self._body_slots.release()
            else:
                body = await asyncio.wait_for(reader.readexactly(length), left())
        return Request(method, path, headers, body), keep_alive

    async def _write(
        self,
        writer: asyncio.StreamWriter,
        response: Response,
        *,
        close: bool,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> bool:
        lines = [
            f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}",
            "Server: mlci-serve",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            *(f"{name}: {value}" for name, value in (*response.headers, *extra)),
        ]
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)
        try:
            await asyncio.wait_for(writer.drain(), self.limits.request_timeout)
        except (TimeoutError, ConnectionError):
            return False  # a client that does not read its answer loses the connection
        return True


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close after an early answer without losing it: read what the client already sent.

    Closing a socket with unread input makes the kernel send a reset, which can destroy the
    answer before the client reads it; so the write side is shut first and the rest drained
    for a moment.
    """
    try:
        if writer.can_write_eof():
            writer.write_eof()
        deadline = time.monotonic() + 0.5
        while (remaining := deadline - time.monotonic()) > 0:
            if not await asyncio.wait_for(reader.read(65536), remaining):
                break
    except (TimeoutError, ConnectionError, OSError):
        pass


def _request_line(line: bytes) -> tuple[str, str, str]:
    if len(line) > MAX_REQUEST_LINE:
        raise _Refused(400, f"the request line is longer than {MAX_REQUEST_LINE} bytes")
    parts = line.split(b" ")
    if len(parts) != 3:
        raise _Refused(400, "malformed request line")
    method, target, version = (part.decode("latin-1") for part in parts)
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise _Refused(505, f"{version[:20]} is not served: use HTTP/1.1")
    if not method.isalpha() or not method.isupper() or not target.startswith("/"):
        raise _Refused(400, "malformed request line")
    return method, target.split("?", 1)[0], version


def _body_length(seen: dict[str, list[str]]) -> int:
    transfer, lengths = seen.get("transfer-encoding"), seen.get("content-length")
    if transfer and lengths:
        raise _Refused(400, "a request must not carry both Transfer-Encoding and Content-Length")
    if transfer:
        raise _Refused(411, "chunked request bodies are not accepted: send a Content-Length")
    if not lengths:
        return 0
    if len(set(lengths)) != 1:
        raise _Refused(400, "Content-Length is given more than once, with different values")
    text = lengths[0]
    if not text.isdigit() or len(text) > 15:
        raise _Refused(400, "Content-Length must be a whole number of bytes")
    return int(text)
