"""``mlci deploy verify``: prove that what answers at a URL is the release that was tested.

Against a running deployment (a Service, an ingress, a port-forward): the runtime is live and
ready; ``/version`` reports the released model digest (and verdict digest, given the release);
the sample rows the smoke test recorded give the predictions it recorded, within its tolerance;
and, given a gate file with latency rules, latency over a number of requests holds those rules
(``max`` alone, or against the smoke test's latency). The image digest comes from the release
and is recorded, not checked: a container cannot see the digest of its own image; the cluster
(the pod's ``imageID``) is where that is read.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from mlci_lib.errors import InputError, ServiceError
from mlci_lib.gate.results import FAIL, PASS, SKIPPED, RuleResult
from mlci_lib.gate.rules import GateRules
from mlci_lib.results import Result

SMOKE_SCHEMA = "mlci.image-smoke"
RELEASE_SCHEMA = "mlci.image-release"
DEFAULT_REQUESTS = 50


@dataclasses.dataclass(frozen=True)
class VerifyCheck:
    name: str  # health | version | predictions | latency ...
    outcome: str  # pass | fail | skipped
    message: str
    expected: Any = None
    observed: Any = None


@dataclasses.dataclass(frozen=True)
class DeployVerdict(Result):
    """Whether the deployment at ``url`` serves the release, check by check."""

    SCHEMA: ClassVar[str] = "mlci.deploy-verdict"
    SCHEMA_VERSION: ClassVar[int] = 1

    passed: bool
    url: str
    model_name: str | None
    model_version: str | None
    model_digest: str | None
    image: str | None
    image_digest: str | None
    verdict_digest: str | None
    checks: tuple[VerifyCheck, ...]
    latency_rules: tuple[RuleResult, ...]
    latency: Mapping[str, float] | None
    checked_at: str

    def text(self) -> str:
        word = "VERIFIED" if self.passed else "NOT VERIFIED"
        lines = [f"deployment at {self.url} {word}: {self.model_name} {self.model_digest or ''}".rstrip()]
        for check in self.checks:
            lines.append(f"  {check.outcome:<8} {check.name}: {check.message}")
        for rule in self.latency_rules:
            value = "" if rule.value is None else f"{rule.value:.4g}"
            lines.append(f"  {rule.outcome:<8} {rule.rule}: {value} vs {rule.threshold:g}")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the deployment must show, from the smoke result and (optionally) the release."""

    rows: tuple[dict[str, Any], ...]
    predictions: tuple[Any, ...]
    probabilities: tuple[Any, ...] | None
    tolerance: float
    model_name: str | None
    model_version: str | None
    model_digest: str | None
    verdict_digest: str | None
    image: str | None
    image_digest: str | None
    latency: Mapping[str, float] | None


def expected_from(smoke: Mapping[str, Any], release: Mapping[str, Any] | None, *, source: str) -> Expected:
    """Read a smoke result (or a release result or pipeline verdict holding one) and the release's
    identity."""
    from mlci_lib.pipeline.verdict import PipelineVerdict, release_of

    if smoke.get("schema") == RELEASE_SCHEMA:
        release = release or smoke
        smoke = smoke.get("smoke") or {}
    elif smoke.get("schema") == PipelineVerdict.SCHEMA:
        release = release or smoke
        stages = smoke.get("stages")
        parts = release_of(s for s in stages if isinstance(s, Mapping)) if isinstance(stages, list) else {}
        if "smoke" not in parts:
            raise InputError(
                f"option --smoke: {source}: the pipeline run has no passed image-smoke stage: "
                "nothing to verify against",
                hint="verify after a run that smoke-tested and pushed its image",
            )
        smoke = parts["smoke"]
    if smoke.get("schema") != SMOKE_SCHEMA:
        raise InputError(
            f"option --smoke: {source} is not a smoke result (schema {SMOKE_SCHEMA})",
            hint="pass the --output of mlci image smoke, the release result of mlci image release, "
            "or the verdict of an mlci run that smoke-tested its image",
        )
    if not smoke.get("passed"):
        raise InputError(
            f"option --smoke: {source} records a smoke test that failed: nothing to verify against"
        )
    sample = smoke.get("sample")
    if not isinstance(sample, Mapping) or not sample.get("rows"):
        raise InputError(
            f"option --smoke: {source} records no sample rows and predictions",
            hint="rerun mlci image smoke with this version of mlci, which records them",
        )
    version = (smoke.get("version") or {}).get("model") or {}
    model_digest = version.get("digest")
    verdict_digest = (smoke.get("version") or {}).get("verdict_digest")
    image = image_digest = None
    name, model_version = version.get("name"), version.get("version")
    if release is not None:
        from mlci_lib.deploy.render import release_from_result

        found = release_from_result(release, source="option --release")
        image, image_digest = found.image, found.image_digest
        name, model_version = found.model_name, found.model_version or model_version
        model_digest = found.model_digest or model_digest
        verdict_digest = found.verdict_digest or verdict_digest
    latency = smoke.get("latency")
    return Expected(
        rows=tuple(sample["rows"]),
        predictions=tuple(sample.get("predictions") or ()),
        probabilities=None if sample.get("probabilities") is None else tuple(sample["probabilities"]),
        tolerance=float(sample.get("tolerance", 1e-9)),
        model_name=name,
        model_version=model_version,
        model_digest=model_digest,
        verdict_digest=verdict_digest,
        image=image,
        image_digest=image_digest,
        latency={k: float(v) for k, v in latency.items() if k.endswith("_ms")}
        if isinstance(latency, Mapping)
        else None,
    )


def check_url(url: str) -> urllib.parse.SplitResult:
    """The deployment's address, split; InputError unless it is an http(s) URL with a host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"URL {url!r} is not an http(s) address", hint="e.g. http://churn.ml.svc")
    return parts


class _Client:
    """One keep-alive connection to the deployment; a refused connection names the URL."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = check_url(url)
        self.url = url.rstrip("/")
        self.prefix = parts.path.rstrip("/")
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.connection = kind(str(parts.hostname), parts.port, timeout=timeout)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            self.connection.request(method, self.prefix + path, body, headers)
            response = self.connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.connection.close()
            raise ServiceError(
                f"the deployment at {self.url} does not answer: {getattr(exc, 'strerror', None) or exc}",
                hint="check the URL (a Service, an ingress or a port-forward to the model server)",
            ) from None
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None


def _check(name: str, ok: bool, message: str, expected: Any = None, observed: Any = None) -> VerifyCheck:
    return VerifyCheck(name, PASS if ok else FAIL, message, expected, observed)


def verify_deployment(
    url: str,
    expected: Expected,
    *,
    gate_rules: GateRules | None = None,
    requests: int = DEFAULT_REQUESTS,
    timeout: float = 10.0,
) -> DeployVerdict:
    """Check the deployment at ``url`` against ``expected``; see the module's docstring."""

    if requests < 1:
        raise InputError("option --requests must be at least 1")
    client = _Client(url, timeout)
    try:
        return _verify(client, expected, gate_rules, requests)
    finally:
        client.connection.close()


def _verify(
    client: _Client, expected: Expected, gate_rules: GateRules | None, requests: int
) -> DeployVerdict:
    from mlci_lib.image.smoke import Mismatch, _compare, latency_of

    checks: list[VerifyCheck] = []
    live, _ = client.call("GET", "/v2/health/live")
    ready, body = client.call("GET", "/v2/health/ready")
    checks.append(
        _check("health", live == 200 and ready == 200, f"live {live}, ready {ready}", observed=body)
    )
    status, version = client.call("GET", "/version")
    model = (version or {}).get("model") or {} if isinstance(version, Mapping) else {}
    if status != 200 or not model:
        checks.append(_check("version", False, f"GET /version answered {status} without model details"))
    else:
        served = model.get("digest")
        if expected.model_digest:
            checks.append(
                _check(
                    "model digest",
                    served == expected.model_digest,
                    f"served {served}"
                    + ("" if served == expected.model_digest else f", released {expected.model_digest}"),
                    expected.model_digest,
                    served,
                )
            )
        else:
            checks.append(VerifyCheck("model digest", SKIPPED, "the smoke result and release name no digest"))
        if expected.verdict_digest:
            got = version.get("verdict_digest")
            checks.append(
                _check(
                    "verdict digest",
                    got == expected.verdict_digest,
                    f"served {got}"
                    + ("" if got == expected.verdict_digest else f", released {expected.verdict_digest}"),
                    expected.verdict_digest,
                    got,
                )
            )
    mismatches: list[Mismatch] = []
    bad = 0
    failed_status = None
    rows = list(expected.rows)
    for start in range(0, len(rows), 100):
        status, answer = client.call(
            "POST", "/predict", json.dumps({"rows": rows[start : start + 100]}).encode()
        )
        if status != 200:
            failed_status = f"POST /predict answered {status}: {(answer or {}).get('error', answer)}"
            break
        bad += _compare(
            answer, start, expected.predictions, expected.probabilities, expected.tolerance, mismatches
        )
    if failed_status:
        checks.append(_check("predictions", False, failed_status))
    else:
        checks.append(
            _check(
                "predictions",
                bad == 0,
                f"{len(rows)} recorded rows served the recorded predictions"
                if bad == 0
                else f"{bad} of {len(rows)} recorded rows served another prediction (first: row "
                f"{mismatches[0].row} {mismatches[0].field}: recorded {mismatches[0].expected!r}, "
                f"served {mismatches[0].served!r})"
                if mismatches
                else f"{bad} rows differ",
                observed=[dataclasses.asdict(m) for m in mismatches[:20]] or None,
            )
        )
    latency_rules: tuple[RuleResult, ...] = ()
    measured = None
    if gate_rules is not None and gate_rules.latency:
        from mlci_lib.gate.checks import latency_checks

        body_one = json.dumps({"rows": rows[:1]}).encode()
        durations = []
        for _ in range(requests):
            began = time.perf_counter()
            status, _ = client.call("POST", "/predict", body_one)
            durations.append(time.perf_counter() - began)
            if status != 200:
                checks.append(_check("latency", False, f"POST /predict answered {status} while timing"))
                break
        else:
            figures = latency_of(durations, 1)
            measured = {k: getattr(figures, k) for k in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "max_ms")}
            needs_base = any(c != "max" for r in gate_rules.latency for c in r.checks)
            latency_rules = tuple(
                latency_checks(
                    gate_rules, measured, expected.latency if needs_base and expected.latency else None
                )
            )
    passed = all(c.outcome != FAIL for c in checks) and all(
        r.outcome == PASS for r in latency_rules if r.required
    )
    return DeployVerdict(
        passed=passed,
        url=client.url,
        model_name=expected.model_name,
        model_version=expected.model_version,
        model_digest=expected.model_digest,
        image=expected.image,
        image_digest=expected.image_digest,
        verdict_digest=expected.verdict_digest,
        checks=tuple(checks),
        latency_rules=latency_rules,
        latency=measured,
        checked_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def load_expected(smoke_path: str, release_path: str | None) -> Expected:
    from mlci_lib.files import read_json

    smoke = read_json(smoke_path, what="smoke result", option="--smoke")
    if not isinstance(smoke, Mapping):
        raise InputError(f"option --smoke: {smoke_path} is not a JSON object")
    release = None
    if release_path:
        release = read_json(release_path, what="release result", option="--release")
        if not isinstance(release, Mapping):
            raise InputError(f"option --release: {release_path} is not a JSON object")
    return expected_from(smoke, release, source=str(smoke_path))


__all__: Sequence[str] = ("DeployVerdict", "Expected", "VerifyCheck", "load_expected", "verify_deployment")
