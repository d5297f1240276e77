"""The serving runtime under hostile clients, over real sockets on loopback.

Slow-loris floods, requests trickled a byte at a time, smuggling-shaped framing, JSON built to
exhaust the parser, requests that expand to huge tables: each must get a bounded, one-line
answer (or a closed connection), and the server must keep serving everyone else, with its
threads, time and memory bounded, and no traceback in its log.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlci_lib.models import save_model
from mlci_lib.serving import ModelServer
from tests.helpers.components import free_port, wait_until


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "plan": ["x", "y"] * 100})
    numeric = frame[["a", "b"]]
    model = LogisticRegression().fit(numeric, (numeric.a > 0).astype(int))
    return save_model(model, tmp_path_factory.mktemp("m") / "model", sample_input=numeric.head(), name="m")


@pytest.fixture()
def server(model_dir: Path) -> Iterator[ModelServer]:
    with ModelServer(
        model_dir, request_timeout=1.5, max_connections=400, max_body_bytes=20_000_000
    ) as running:
        running.wait_ready(60)
        yield running


def _address(server: ModelServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _raw(server: ModelServer, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(_address(server), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
        return b"".join(chunks)


def _complete(reply: bytes) -> bool:
    head, _, body = reply.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return True


def _post(server: ModelServer, body: bytes) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(*_address(server), timeout=20)
    try:
        connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


GOOD = json.dumps({"rows": [{"a": 0.5, "b": -1.0}]}).encode()


@pytest.mark.slow
def test_a_slow_loris_flood_holds_no_threads_and_others_are_served_meanwhile(server: ModelServer) -> None:
    threads_before = threading.active_count()
    sockets = []
    try:
        for _ in range(300):
            sock = socket.create_connection(_address(server), timeout=5)
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # and then nothing more
            sockets.append(sock)
        time.sleep(0.3)
        # A stalled connection costs a socket, not a thread: only complete requests take one.
        assert threading.active_count() - threads_before <= 4
        started = time.monotonic()
        answer = _post(server, GOOD)
        assert answer[0] == 200, answer  # an ordinary client is not kept waiting
        assert time.monotonic() - started < 1.0
        for sock in sockets:
            sock.settimeout(4)
            try:
                assert sock.recv(4096) == b""  # cut off at the request timeout, unanswered
            except TimeoutError:
                pytest.fail("a slow connection stayed open past the request timeout")
            except ConnectionResetError:
                pass
    finally:
        for sock in sockets:
            sock.close()


def test_connections_over_the_limit_get_503_at_once(model_dir: Path) -> None:
    with ModelServer(model_dir, request_timeout=5.0, max_connections=8) as small:
        small.wait_ready(60)
        held = [socket.create_connection(_address(small), timeout=5) for _ in range(8)]
        try:
            time.sleep(0.2)
            started = time.monotonic()
            reply = _raw(small, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in reply
            assert time.monotonic() - started < 2
        finally:
            for sock in held:
                sock.close()
        wait_until(lambda: _post(small, GOOD)[0] == 200, 10, "the server once the connections closed")


@pytest.mark.slow
def test_the_timeout_bounds_the_whole_request_not_each_read(server: ModelServer) -> None:
    with socket.create_connection(_address(server), timeout=10) as sock:
        started = time.monotonic()
        closed_at = None
        for byte in b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n" + b" " * 200:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed_at = time.monotonic()
                break
            time.sleep(0.05)  # each byte well within the timeout; the request as a whole is not
        else:
            pytest.fail("the server accepted a request trickled over 10 s")
    assert closed_at is not None and closed_at - started < 4


@pytest.mark.parametrize(
    ("head", "status", "message"),
    [
        pytest.param(
            "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
            400,
            "both Transfer-Encoding and Content-Length",
            id="te-and-cl",
        ),
        pytest.param("Content-Length: 4\r\nContent-Length: 5\r\n", 400, "more than once", id="two-lengths"),
        pytest.param("Content-Length: +4\r\n", 400, "whole number", id="signed-length"),
        pytest.param("Transfer-Encoding: chunked\r\n", 411, "chunked", id="chunked"),
    ],
)
def test_smuggling_shaped_framing_is_refused_and_the_connection_closed(
    server: ModelServer, head: str, status: int, message: str
) -> None:
    reply = _raw(server, f"POST /predict HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + b"{}\r\n")
    assert reply.startswith(f"HTTP/1.1 {status}".encode()), reply[:200]
    assert b"Connection: close" in reply
    assert message in json.loads(reply.partition(b"\r\n\r\n")[2])["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "nests JSON too deeply", id="deep-json"),
        pytest.param(b'{"rows": [{"a": ' + b"9" * 400 + b', "b": 1}]}', "digits", id="400-digit-integer"),
        pytest.param(b'{"rows": [{"a": 1e999, "b": 1}]}', "beyond the range", id="float-overflow"),
    ],
)
def test_parser_bombs_get_400_and_no_traceback(
    server: ModelServer, body: bytes, message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    status, answer = _post(server, body)
    assert status == 400
    assert message in answer["error"]
    assert _post(server, GOOD)[0] == 200
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.slow
def test_a_request_with_200000_extra_columns_is_refused_quickly(server: ModelServer) -> None:
    row = {"a": 0.5, "b": -1.0, **{f"x{i}": i for i in range(200_000)}}
    body = json.dumps({"rows": [row, {"a": 1, "b": 2, "plan": "z"}]}).encode()
    started = time.monotonic()
    status, answer = _post(server, body)
    assert time.monotonic() - started < 5
    assert status == 400 and "more than the limit of 10000" in answer["error"]


def _rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_concurrent_huge_requests_keep_memory_bounded(model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlci_lib", "serve", str(model_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "wb"),  # noqa: SIM115 - the process owns it
    )
    try:
        url = f"http://127.0.0.1:{port}/health"
        import urllib.request

        wait_until(lambda: urllib.request.urlopen(url, timeout=2).status == 200, 60, "mlci serve")
        before = _rss_peak_mb(process.pid)
        row = {f"c{i}": 1 for i in range(700_000)}
        body = json.dumps({"rows": [row]}).encode()
        assert len(body) > 9_000_000
        answers: list[int] = []

        def send() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            answers.append(connection.getresponse().status)
            connection.close()

        workers = [threading.Thread(target=send) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
        assert answers == [400] * 4
        grown = _rss_peak_mb(process.pid) - before
        # Before the limits these four requests took the server from about 220 MB to 2.2 GB.
        assert grown < 700, f"peak memory grew by {grown:.0f} MB"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
