"""An Alertmanager webhook receiver that turns a firing drift alert into one retrain dispatch.

Alertmanager posts its notifications (webhook payload version 4) to ``mlci monitor receive``;
each firing alert whose name is one of ``alerts`` (by default the drift alerts of ``mlci
monitor render``: error rates, latency and no traffic are serving problems a new model does not
fix) becomes the retrain reason of a drift of its model, ``monitor <model>: drift`` (the alert's
``model`` label, else its ``job``), dispatched through
:func:`mlci_lib.monitor.dispatch.dispatch_retrain` with its guard rails. Alertmanager repeats a
notification (``repeat_interval``) and may send one per feature or class; the reason leaves them
out, and it is the reason ``mlci monitor check --on-fail dispatch`` gives the same drift, so the
guard rails make one incident one dispatch whichever route saw it first.

Answers: 200 with what was done for each reason; 400 for a body that is not a version 4
notification (nothing is dispatched); 502 when GitHub refused or failed (Alertmanager retries a
5xx later, and the guard rails keep the retry from dispatching twice). The transport is the
serving runtime's (:mod:`mlci_lib.serving.http_server`), with its limits on connections, time
and body size.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

from mlci_lib.errors import InputError, MlciError, ServiceError
from mlci_lib.monitor.dispatch import DispatchResult, DispatchTarget, dispatch_retrain, drift_reason
from mlci_lib.results import Result
from mlci_lib.serving.http_server import HTTPServer, Limits, Request, Response

#: The alerts of ``mlci monitor render`` that a model trained on fresh data can answer.
RETRAIN_ALERTS = (
    "MlciFeatureMeanShift",
    "MlciFeatureVarianceShift",
    "MlciPredictionShareShift",
    "MlciPredictionMeanShift",
)
#: Alertmanager's notifications are small; a megabyte holds thousands of alerts.
MAX_BODY_BYTES = 1024 * 1024
LIMITS = Limits(
    max_body_bytes=MAX_BODY_BYTES, request_timeout=10.0, max_connections=64, max_concurrent_work=2
)
WEBHOOK_VERSION = "4"


@dataclasses.dataclass(frozen=True)
class FiringAlert:
    name: str
    labels: dict[str, str]
    link: str


def parse_notification(body: bytes) -> tuple[str, list[FiringAlert]]:
    """The notification's status and its firing alerts; InputError when it is not version 4."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError("the body is not an Alertmanager notification (a JSON object)")
    if str(data.get("version")) != WEBHOOK_VERSION:
        raise InputError(
            f"Alertmanager webhook version {data.get('version')!r} is not {WEBHOOK_VERSION}",
            hint="point an Alertmanager webhook_configs url at this receiver",
        )
    status, alerts, external = data.get("status"), data.get("alerts"), data.get("externalURL")
    if status not in ("firing", "resolved") or not isinstance(alerts, list):
        raise InputError("the notification needs a status (firing or resolved) and a list of alerts")
    firing = []
    for i, alert in enumerate(alerts):
        labels = alert.get("labels") if isinstance(alert, dict) else None
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise InputError(f"alert {i} of the notification has no labels of strings")
        if not isinstance(labels.get("alertname"), str) or not labels["alertname"]:
            raise InputError(f"alert {i} of the notification has no alertname label")
        if alert.get("status") not in ("firing", "resolved"):
            raise InputError(f"alert {i} of the notification has no status (firing or resolved)")
        if alert["status"] == "firing":
            link = alert.get("generatorURL") or external or ""
            firing.append(FiringAlert(labels["alertname"], dict(labels), str(link)))
    return str(status), firing


def retrain_reasons(alerts: Sequence[FiringAlert], wanted: Sequence[str]) -> dict[str, str]:
    """``{reason: link}``: one reason per model, whatever the alert, feature or class."""
    reasons: dict[str, str] = {}
    for alert in alerts:
        if alert.name in wanted:
            model = alert.labels.get("model") or alert.labels.get("job") or "an unnamed job"
            reasons.setdefault(drift_reason(model), alert.link)
    return reasons


@dataclasses.dataclass(frozen=True)
class ReceiverSummary(Result):
    SCHEMA = "mlci.alert-receiver"
    SCHEMA_VERSION = 1

    url: str
    notifications: int
    refused: int
    dispatched: int
    held_back: int
    stopped_by: str


class AlertReceiver:
    """The receiver's app: called by the transport, on a worker thread, for each request."""

    def __init__(
        self,
        target: DispatchTarget,
        *,
        token: str,
        alerts: Sequence[str] = RETRAIN_ALERTS,
        log: Callable[[str], None] | None = None,
        policy: Any = None,
    ) -> None:
        self.target = target
        self.alerts = tuple(alerts)
        self._token = token
        self._policy = policy
        self._log = log or (lambda _text: None)
        # One dispatch at a time in this process (the state file's lock covers other processes).
        self._lock = threading.Lock()
        self.notifications = 0
        self.refused = 0
        self.results: list[DispatchResult] = []

    def __call__(self, request: Request) -> Response:
        if request.method == "GET" and request.path in ("/-/healthy", "/healthz"):
            return Response.json(200, {"status": "ok"})
        if request.method != "POST":
            return Response.json(405, {"error": "POST Alertmanager notifications here"})
        try:
            status, firing = parse_notification(request.body)
        except InputError as exc:
            with self._lock:
                self.refused += 1
            self._log(f"mlci monitor receive: refused a notification: {exc.message}")
            return Response.json(400, {"error": exc.message})
        reasons = retrain_reasons(firing, self.alerts)
        names = ", ".join(sorted({a.name for a in firing})) or "none"
        self._log(
            f"mlci monitor receive: {status} notification, {len(firing)} firing ({names}), "
            f"{len(reasons)} retrain reasons"
        )
        done: list[dict[str, Any]] = []
        with self._lock:
            self.notifications += 1
            for reason, link in reasons.items():
                try:
                    result = dispatch_retrain(
                        reason, link, self.target, token=self._token, policy=self._policy
                    )
                except ServiceError as exc:
                    self._log(f"mlci monitor receive: {reason}: dispatch FAILED: {exc.one_line()}")
                    return Response.json(502, {"error": exc.one_line(), "done": done})
                except MlciError as exc:  # a state file that cannot be read or written
                    self._log(f"mlci monitor receive: {reason}: {exc.one_line()}")
                    return Response.json(500, {"error": exc.one_line(), "done": done})
                self.results.append(result)
                self._log(f"mlci monitor receive: {reason}: {result.action} ({result.detail})")
                done.append(result.to_dict())
        if not reasons:
            note = "no firing alert that retraining answers" if firing else f"{status}: nothing to do"
            self._log(f"mlci monitor receive: {note}")
            return Response.json(200, {"done": [], "note": note})
        return Response.json(200, {"done": done})


def serve_receiver(
    receiver: AlertReceiver,
    host: str,
    port: int,
    *,
    log: Callable[[str], None],
    stop_event: threading.Event | None = None,
    limits: Limits = LIMITS,
) -> ReceiverSummary:
    """Serve ``receiver`` in the foreground until SIGTERM/SIGINT (or ``stop_event``)."""
    import signal

    server = HTTPServer((host, port), receiver, limits)
    server.start()
    stop = stop_event or threading.Event()
    stopped_by = ["stop event"]
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):

            def handler(received: int, _frame: Any) -> None:
                stopped_by[0] = signal.Signals(received).name
                stop.set()

            previous[signum] = signal.signal(signum, handler)
    bound_host, bound_port = server.server_address
    url = f"http://{bound_host}:{bound_port}"
    try:
        log(
            f"mlci monitor receive: listening on {url}; firing {', '.join(receiver.alerts)} dispatch "
            f"{receiver.target.workflow} of {receiver.target.repository} on {receiver.target.ref}"
        )
        stop.wait()
    finally:
        server.stop()
        for number, old in previous.items():
            signal.signal(number, old)
    results = list(receiver.results)
    return ReceiverSummary(
        url=url,
        notifications=receiver.notifications,
        refused=receiver.refused,
        dispatched=sum(1 for r in results if r.dispatched),
        held_back=sum(1 for r in results if not r.dispatched),
        stopped_by=stopped_by[0],
    )
