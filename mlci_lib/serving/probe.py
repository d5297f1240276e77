"""The image's health check: ``python -m mlci_lib.serving.probe`` exits 0 when /health answers 200.

Standard library only, so the check costs a few milliseconds. The port comes from
``MLCI_SERVE_PORT`` (the same variable ``mlci serve`` reads), default 8080.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def probe(port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main() -> int:
    try:
        port = int(os.environ.get("MLCI_SERVE_PORT") or 8080)
    except ValueError:
        print("MLCI_SERVE_PORT must be a port number", file=sys.stderr)
        return 1
    return 0 if probe(port) else 1


if __name__ == "__main__":
    raise SystemExit(main())
