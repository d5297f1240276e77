"""An HTTP proxy in front of a real server that injects faults on chosen requests.

Tests put it between mlci and a real MLflow tracking server to answer some requests with an
error status (optionally with ``Retry-After``) or to drop the connection halfway through a request
body (an artifact upload), and then let everything else through untouched.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

Match = Callable[[str, str], bool]  # (method, path) -> bool


@dataclasses.dataclass
class Fault:
    match: Match
    #: "status" answers ``status`` without contacting the server; "drop" reads half the body and
    #: closes the connection.
    kind: str
    remaining: int  # how many matching requests get the fault; -1 for all
    status: int = 503
    retry_after: str | None = None


@dataclasses.dataclass
class Hit:
    method: str
    path: str
    at: float
    fault: str | None


class FaultyProxy:
    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").rstrip("/").split(":")
        self.upstream = (host, int(port))
        self.faults: list[Fault] = []
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- configuration ---------------------------------------------------------------------------
    def fail(self, match: Match, times: int, status: int = 503, retry_after: str | None = None) -> None:
        with self._lock:
            self.faults.append(Fault(match, "status", times, status, retry_after))

    def drop(self, match: Match, times: int = -1) -> None:
        with self._lock:
            self.faults.append(Fault(match, "drop", times))

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def hits_to(self, match: Match) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if match(h.method, h.path)]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.remaining != 0 and fault.match(method, path):
                    if fault.remaining > 0:
                        fault.remaining -= 1
                    self.hits.append(Hit(method, path, time.monotonic(), fault.kind))
                    return fault
            self.hits.append(Hit(method, path, time.monotonic(), None))
            return None

    # -- serving ---------------------------------------------------------------------------------
    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                return

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                fault = proxy._take_fault(self.command, self.path)
                if fault is not None and fault.kind == "drop":
                    length = int(self.headers.get("Content-Length") or 0)
                    self.rfile.read(length // 2)
                    self.close_connection = True
                    with suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = self._body()
                if fault is not None:
                    payload = b"service unavailable (injected)"
                    self.send_response(fault.status)
                    if fault.retry_after is not None:
                        self.send_header("Retry-After", fault.retry_after)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        return Handler

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def faulty_proxy(upstream: str) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(upstream)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def path_contains(fragment: str, method: str | None = None) -> Match:
    return lambda m, p: fragment in p and (method is None or m == method)
