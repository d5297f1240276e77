"""A bounded load generator: a fixed number of POST requests from a few threads, paced."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit


def send_load(
    url: str,
    bodies: Callable[[int], object],
    *,
    requests: int,
    threads: int = 4,
    path: str = "/predict",
    pause: float = 0.0,
) -> Counter[int]:
    """POST ``bodies(i)`` (JSON) for i in range(requests) to ``url + path``; the status counts.

    Each thread waits ``pause`` seconds between its requests, so the
    traffic spreads over several scrapes of a Prometheus watching the server.
    """
    parts = urlsplit(url)
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    next_index = iter(range(requests))

    def worker() -> None:
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            body = json.dumps(bodies(index)).encode()
            # One connection a request: the count does not depend on the server's keep-alive.
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            try:
                connection.request("POST", path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
            finally:
                connection.close()
            with lock:
                statuses[response.status] += 1
            if pause:
                time.sleep(pause)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=300)
    return statuses
