"""Prediction logs written by the real serving runtime, and labels for them, for the monitor tests."""

from __future__ import annotations

import http.client
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlci_lib.cli import main
from mlci_lib.runner import CiRunner
from mlci_lib.serving import ModelServer
from mlci_lib.serving.prediction_log import LogSettings

BATCH = 500


def serve_and_log(
    model: Path, rows: pd.DataFrame, folder: Path, *, prefix: str = "r", batch: int = BATCH
) -> list[str]:
    """Send ``rows`` to a real server logging into ``folder``; return each row's request id."""
    ids: list[str] = []
    with ModelServer(model, prediction_log=LogSettings(directory=folder, max_rows=2000)) as server:
        server.wait_ready(60)
        host, port = server.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        records: list[dict[str, Any]] = rows.to_dict("records")
        for k, start in enumerate(range(0, len(records), batch)):
            chunk = records[start : start + batch]
            request_id = f"{prefix}{k}"
            connection.request(
                "POST", "/predict", json.dumps({"rows": chunk}).encode(), headers={"X-Request-Id": request_id}
            )
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            ids += [request_id] * len(chunk)
        connection.close()
    return ids


def labels_frame(ids: list[str], labels: Any, batch: int = BATCH) -> pd.DataFrame:
    """A labels file's rows for rows sent by :func:`serve_and_log`: request id, row in request, label."""
    return pd.DataFrame(
        {"request_id": ids, "row": [i % batch for i in range(len(ids))], "label": np.asarray(labels)}
    )


def run_check(*argv: str) -> tuple[int, dict[str, Any], str]:
    """``mlci --json monitor check ARGV``: exit code, verdict, standard error."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["--json", "monitor", "check", *argv], runner=CiRunner({}, stdout=out, stderr=err))
    text = out.getvalue()
    return code, (json.loads(text) if text.strip() else {}), err.getvalue()


def rule(version: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in version["rules"] if r["rule"] == name)
