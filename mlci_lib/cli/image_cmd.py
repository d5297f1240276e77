"""`mlci image`: build, smoke-test and push the serving image."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command, add_group, add_result_file
from mlci_lib.errors import UsageError
from mlci_lib.runner import Annotation

DEFAULT_BUILD_FILE = "mlci-image-build.json"
DEFAULT_SMOKE_FILE = "mlci-smoke.json"
DEFAULT_LATENCY_FILE = "mlci-latency.json"
DEFAULT_PUSH_FILE = "mlci-image-push.json"
DEFAULT_RELEASE_FILE = "mlci-image-release.json"

_BUILD = """\
Build the serving image of a model: dependencies in layers before the model (a new model
rebuilds only the last layer), a non-root user, a health check, OCI and mlci labels. In
wheelhouse mode (the default) the wheels are downloaded here and installed in the image with
no network; pass --wheelhouse false to let pip inside the build use the package index.

The image knows the model's framework: the packages it needs (xgboost, lightgbm, the package of
each trusted type) are pinned to the versions installed here, the system libraries their wheels
need (libgomp1) are installed when the base lacks them, and the trusted types are baked in for
the image's mlci serve. A pickle model becomes an image only with --allow-pickle, and its labels
and /version then say so.

Tags default to the commit, model-<version> and, on the default branch, latest.

examples:
  mlci image build model/ --repository ghcr.io/acme/churn --sample-data eval.csv
  mlci image build model/ --repository registry.local/churn \
      --base-image python:3.11-slim --python-version 3.11
"""

_SMOKE = """\
Run the image read-only as its non-root user, wait until its health check reports healthy,
send the sample rows and require every prediction to equal the model's own in-process
prediction; measure latency and write it as mlci.latency JSON for the gate. The container is
always removed. Exit 1 when the smoke test fails.

example:
  mlci image smoke ghcr.io/acme/churn:abc123 --model model/ --sample-data eval.csv --requests 200
"""

_PUSH = """\
Push an image that passed its smoke test, then check that the registry has its digest.
Credentials: --username or $MLCI_REGISTRY_USERNAME, and $MLCI_REGISTRY_PASSWORD or
--password-stdin (never a command-line argument).

example:
  echo "$TOKEN" | mlci image push ghcr.io/acme/churn:abc123 --username bot --password-stdin
"""


def _build_args(parser: argparse.ArgumentParser, *, release: bool = False) -> None:
    group = parser.add_argument_group("build")
    group.add_argument(
        "--reference",
        metavar="DATA",
        help="training data (or its reference.json): summarised into the image, exported on /metrics "
        "for the alert rules of mlci monitor render",
    )
    group.add_argument(
        "--repository", required=not release, metavar="NAME", help="image repository, e.g. ghcr.io/o/m"
    )
    group.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="a tag, repeatable (replaces the defaults)"
    )
    group.add_argument(
        "--base-image",
        default="python:3.12-slim",
        metavar="IMAGE",
        help="base image (a digest pin is honoured)",
    )
    group.add_argument(
        "--wheelhouse",
        default="true",
        metavar="BOOL",
        help="install from wheels downloaded here (default: true)",
    )
    group.add_argument(
        "--python-version", default="3.12", metavar="X.Y", help="the base image's Python, for the wheels"
    )
    group.add_argument(
        "--platform", default="manylinux_2_28_x86_64", metavar="TAG", help="wheel platform tag"
    )
    group.add_argument(
        "--requirement",
        action="append",
        default=[],
        metavar="SPEC",
        help="an extra requirement, repeatable (the model's framework is added and pinned already)",
    )
    group.add_argument(
        "--system-package",
        action="append",
        default=[],
        metavar="NAME",
        help="a Debian package the image needs, repeatable (libgomp1 for LightGBM/XGBoost is added already); "
        "installed only when the base image lacks it",
    )
    group.add_argument(
        "--dockerfile", metavar="FILE", help="your own Dockerfile template (same placeholders)"
    )
    group.add_argument("--model-name", metavar="NAME", help="model name for labels and /version")
    group.add_argument(
        "--model-version", metavar="VERSION", help="model version for labels, tags and /version"
    )
    group.add_argument("--model-uri", metavar="URI", help="registry URI of the model, for the labels")
    group.add_argument(
        "--verdict-file",
        metavar="FILE",
        help="the verdict that let the model through (its digest is a label)",
    )
    group.add_argument("--user", default="10001:10001", metavar="UID:GID", help="numeric non-root user")
    group.add_argument("--port", default="8080", metavar="PORT", help="port the server listens on")
    group.add_argument(
        "--runtime",
        default="native",
        metavar="RUNTIME",
        help="native (default) or onnx: convert the model to ONNX, check it on the sample data, and "
        "build an image with onnxruntime instead of scikit-learn and SciPy",
    )


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept pickle models (runs their code); for a build, the image then unpickles the model "
        "wherever it runs, and its labels and /version say so",
    )
    parser.add_argument(
        "--trust-type", action="append", default=[], metavar="TYPE", help="an extra type skops may load"
    )


def _smoke_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("smoke test")
    group.add_argument("--requests", default="100", metavar="N", help="timed requests (default: 100)")
    group.add_argument(
        "--rows-per-request", default="1", metavar="N", help="rows in each timed request (default: 1)"
    )
    group.add_argument(
        "--max-rows", default="1000", metavar="N", help="sample rows compared at most (default: 1000)"
    )
    group.add_argument(
        "--health-timeout", default="120", metavar="SECONDS", help="wait for healthy at most (default: 120)"
    )
    add_result_file(
        parser,
        "--latency-output",
        what="latency file",
        group=group,
        default=DEFAULT_LATENCY_FILE,
        metavar="FILE",
        help="latency JSON for the gate",
    )


def _push_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("push")
    group.add_argument("--username", metavar="NAME", help="registry user (default: $MLCI_REGISTRY_USERNAME)")
    group.add_argument("--password-stdin", action="store_true", help="read the registry password from stdin")


_RELEASE = """\
Build the serving image, smoke-test it and push it, each stage switchable; a push only follows
a smoke test that passed on the same image. Exit 1 when the smoke test fails (nothing is pushed).

example:
  mlci image release model/ --repository ghcr.io/acme/churn --sample-data eval.csv --push true
"""


def register(subparsers: Any) -> None:
    group = add_group(subparsers, "image", "build, smoke-test and push the serving image")

    build = add_command(group, "build", handle_build, "build the serving image of a model", _BUILD)
    build.add_argument("model", metavar="MODEL", help="mlci model folder, MLflow model folder or .skops file")
    _build_args(build)
    build.add_argument(
        "--sample-data", metavar="FILE", help="a few input rows; the first five warm the server up"
    )
    _model_args(build)
    add_result_file(
        build,
        "--output",
        what="result file",
        default=DEFAULT_BUILD_FILE,
        metavar="FILE",
        help=f"result JSON (default: {DEFAULT_BUILD_FILE})",
    )

    smoke = add_command(group, "smoke", handle_smoke, "smoke-test a serving image before pushing it", _SMOKE)
    smoke.add_argument("image", metavar="IMAGE", help="image id or reference")
    smoke.add_argument(
        "--model", required=True, metavar="MODEL", help="the model the image serves, to compare with"
    )
    smoke.add_argument(
        "--sample-data", required=True, metavar="FILE", help="rows to send (CSV, Parquet, JSON Lines, JSON)"
    )
    _smoke_args(smoke)
    _model_args(smoke)
    add_result_file(
        smoke,
        "--output",
        what="result file",
        default=DEFAULT_SMOKE_FILE,
        metavar="FILE",
        help=f"result JSON (default: {DEFAULT_SMOKE_FILE})",
    )

    push = add_command(group, "push", handle_push, "push a smoke-tested image and verify its digest", _PUSH)
    push.add_argument("image", metavar="IMAGE", help="image id or reference")
    push.add_argument(
        "--repository", metavar="NAME", help="repository to push to (default: the image reference's)"
    )
    push.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="a tag to push, repeatable (default: all)"
    )
    push.add_argument(
        "--smoke-file",
        default=DEFAULT_SMOKE_FILE,
        metavar="FILE",
        help="the smoke result that must have passed",
    )
    push.add_argument(
        "--require-smoke", default="true", metavar="BOOL", help="refuse images without a passed smoke test"
    )
    _push_args(push)
    add_result_file(
        push,
        "--output",
        what="result file",
        default=DEFAULT_PUSH_FILE,
        metavar="FILE",
        help=f"result JSON (default: {DEFAULT_PUSH_FILE})",
    )

    release = add_command(
        group,
        "release",
        handle_release,
        "build, smoke-test and push in one go (what the action runs)",
        _RELEASE,
    )
    release.add_argument(
        "model", metavar="MODEL", help="mlci model folder, MLflow model folder or .skops file"
    )
    release.add_argument("--build", default="true", metavar="BOOL", help="build the image (default: true)")
    release.add_argument("--smoke", default="true", metavar="BOOL", help="smoke-test it (default: true)")
    release.add_argument("--push", default="false", metavar="BOOL", help="push it (default: false)")
    release.add_argument(
        "--image", metavar="IMAGE", help="an existing image to smoke-test or push (with --build false)"
    )
    release.add_argument(
        "--require-smoke", default="true", metavar="BOOL", help="refuse to push without a passed smoke test"
    )
    release.add_argument("--sample-data", metavar="FILE", help="rows for the warm-up and the smoke test")
    _build_args(release, release=True)
    _smoke_args(release)
    _push_args(release)
    _model_args(release)
    add_result_file(
        release,
        "--output",
        what="result file",
        default=DEFAULT_RELEASE_FILE,
        metavar="FILE",
        help=f"result JSON (default: {DEFAULT_RELEASE_FILE})",
    )


def _positive(value: str, option: str, kind: type = int) -> Any:
    from mlci_lib.options import parse_number

    return parse_number(value, option=option, kind=kind, low=0, low_open=True)


def _build_kwargs(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from mlci_lib.cli.serve_cmd import parse_port
    from mlci_lib.models import trusted_types_from
    from mlci_lib.options import parse_bool

    if not args.repository:
        raise UsageError("option --repository is required to build an image", hint="e.g. ghcr.io/acme/churn")
    return {
        "repository": args.repository,
        "tags": [t.strip() for t in args.tag if t.strip()] or None,
        "base_image": args.base_image,
        "wheelhouse": parse_bool(args.wheelhouse, option="--wheelhouse"),
        "python_version": args.python_version,
        "platform": args.platform,
        "extra_requirements": args.requirement,
        "system_packages": args.system_package,
        "dockerfile": args.dockerfile,
        "model_name": args.model_name,
        "model_version": args.model_version,
        "model_uri": args.model_uri,
        "verdict_file": args.verdict_file,
        "reference_data": args.reference or None,
        "user": args.user,
        "port": parse_port(args.port),
        "allow_pickle": args.allow_pickle,
        "trusted_types": trusted_types_from(args.trust_type),
        "runtime": _runtime(args.runtime),
        "log": None if ctx.json_output else (lambda line: ctx.runner.print(line, to_stderr=True)),
    }


def _runtime(value: str) -> str:
    if value not in ("native", "onnx"):
        raise UsageError(f"option --runtime must be native or onnx, got {value!r}")
    return value


def _smoke_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    from mlci_lib.models import trusted_types_from

    return {
        "requests": _positive(args.requests, "--requests"),
        "rows_per_request": _positive(args.rows_per_request, "--rows-per-request"),
        "max_rows": _positive(args.max_rows, "--max-rows"),
        "health_timeout": _positive(args.health_timeout, "--health-timeout", float),
        "latency_output": args.latency_output or None,
        "allow_pickle": args.allow_pickle,
        "trusted_types": trusted_types_from(args.trust_type),
    }


def _credentials(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    username = args.username or os.environ.get("MLCI_REGISTRY_USERNAME") or None
    password = os.environ.get("MLCI_REGISTRY_PASSWORD") or None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n") or None
        if password is None:
            raise UsageError("--password-stdin was given but stdin was empty", hint="pipe the password in")
    ctx.runner.mask(password)
    if username is not None and password is None:
        raise UsageError(
            "a registry username was given without a password",
            hint="set MLCI_REGISTRY_PASSWORD or pass --password-stdin",
        )
    if password is not None and username is None:
        raise UsageError("a registry password was given without a username", hint="pass --username")
    return {
        "username": username,
        "password": password,
        "on_retry": lambda attempt, error, wait: ctx.progress(
            ctx.runner.redact(f"push attempt {attempt} failed ({error}); retrying in {wait:.1f} s")
        ),
    }


def _build_report(result: Any) -> tuple[str, str, dict[str, str]]:
    size_mb = result.size_bytes / 1e6
    rebuilt = ", ".join(f"`{step[:40]}`" for step in result.built_steps[-3:])
    text = (
        f"built {result.reference} ({result.image_id[:19]}, {size_mb:.0f} MB) in {result.duration_s:.0f} s; "
        f"{len(result.cached_steps)} of {len(result.steps)} steps from cache"
    )
    summary = (
        "### Serving image built\n\n| | |\n| --- | --- |\n"
        f"| image | `{result.reference}` |\n| id | `{result.image_id}` |\n"
        f"| tags | {', '.join(f'`{t}`' for t in result.tags)} |\n| size | {size_mb:.0f} MB |\n"
        f"| model digest | `{result.model_digest}` |\n| last rebuilt steps | {rebuilt or 'none'} |\n"
    )
    outputs = {
        "image-id": result.image_id,
        "image": result.reference,
        "tags": "\n".join(result.tags),
        "references": "\n".join(result.references),
        "size-bytes": str(result.size_bytes),
    }
    return text, summary, outputs


def _smoke_report(result: Any) -> tuple[str, str, dict[str, str], list[Annotation]]:
    from mlci_lib.report.escape import (
        code,  # served values are data
        text as cell,
    )

    lat = result.latency
    rows = [
        f"| result | {'passed' if result.passed else '**failed**'} |",
        f"| image | `{result.image}` |",
        f"| user / read-only / health | `{result.user}` / {result.read_only} / {result.health} |",
        f"| rows compared | {result.rows} ({result.mismatch_count} differ) |",
    ]
    if lat is not None:
        rows.append(
            f"| latency ({lat.requests} requests of {lat.rows_per_request} rows) | "
            f"p50 {lat.p50_ms} ms, p95 {lat.p95_ms} ms, p99 {lat.p99_ms} ms |"
        )
    summary = "### Serving image smoke test\n\n| | |\n| --- | --- |\n" + "\n".join(rows) + "\n"
    if result.mismatches:
        summary += "\n| row | field | expected | served |\n| --- | --- | --- | --- |\n" + "".join(
            f"| {m.row} | {cell(m.field)} | {code(m.expected)} | {code(m.served)} |\n"
            for m in result.mismatches[:10]
        )
    annotations = []
    if not result.passed:
        annotations.append(
            Annotation(
                "error",
                f"smoke test of {result.image} failed: {result.message}; nothing was pushed",
                title="mlci image smoke",
            )
        )
    outputs = {"passed": "true" if result.passed else "false"}
    if lat is not None:
        outputs.update(
            {
                "latency-file": str(result.latency_file or ""),
                "p50-ms": str(lat.p50_ms),
                "p95-ms": str(lat.p95_ms),
                "p99-ms": str(lat.p99_ms),
            }
        )
    text = f"smoke test {'passed' if result.passed else 'FAILED'}: {result.message}"
    if not result.passed and result.logs_tail:
        text += "\ncontainer log (last lines):\n" + result.logs_tail
    return text, summary, outputs, annotations


def _push_report(result: Any) -> tuple[str, str, dict[str, str]]:
    summary = (
        "### Serving image pushed\n\n| | |\n| --- | --- |\n"
        f"| digest | `{result.digest_reference}` |\n"
        f"| tags | {', '.join(f'`{r}`' for r in result.references)} |\n| verified in registry | yes |\n"
    )
    text = f"pushed {', '.join(result.references)}; the registry has {result.digest_reference}"
    outputs = {
        "digest": result.digest,
        "reference": result.digest_reference,
        "references": "\n".join(result.references),
    }
    return text, summary, outputs


def handle_build(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.files import write_json_atomic
    from mlci_lib.image.build import build_image

    result = build_image(args.model, sample_data=args.sample_data, **_build_kwargs(args, ctx))
    write_json_atomic(args.output, result.to_dict())
    text, summary, outputs = _build_report(result)
    outputs["result-file"] = str(args.output)
    return Outcome(result=result, passed=True, text=text, summary=summary, outputs=outputs)


def handle_smoke(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.files import write_json_atomic
    from mlci_lib.image.smoke import smoke_test_image

    result = smoke_test_image(args.image, args.model, args.sample_data, **_smoke_kwargs(args))
    write_json_atomic(args.output, result.to_dict())
    text, summary, outputs, annotations = _smoke_report(result)
    outputs["smoke-file"] = str(args.output)
    return Outcome(
        result=result,
        passed=result.passed,
        text=text,
        summary=summary,
        outputs=outputs,
        annotations=annotations,
    )


def handle_push(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.files import read_json, write_json_atomic
    from mlci_lib.image.push import push_image
    from mlci_lib.options import parse_bool

    credentials = _credentials(args, ctx)
    require = parse_bool(args.require_smoke, option="--require-smoke")
    smoke = read_json(args.smoke_file, what="smoke result", option="--smoke-file") if require else None
    result = push_image(
        args.image,
        repository=args.repository,
        tags=[t.strip() for t in args.tag if t.strip()] or None,
        smoke=smoke,
        require_smoke=require,
        **credentials,
    )
    write_json_atomic(args.output, result.to_dict())
    text, summary, outputs = _push_report(result)
    outputs["result-file"] = str(args.output)
    return Outcome(result=result, passed=True, text=text, summary=summary, outputs=outputs)


def handle_release(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.files import write_json_atomic
    from mlci_lib.image.release import release_image
    from mlci_lib.options import parse_bool

    build = parse_bool(args.build, option="--build")
    smoke = parse_bool(args.smoke, option="--smoke")
    push = parse_bool(args.push, option="--push")
    push_options: dict[str, Any] = _credentials(args, ctx) if push else {}
    if push and not build:
        push_options["repository"] = args.repository
        push_options["tags"] = [t.strip() for t in args.tag if t.strip()] or None
    result = release_image(
        args.model,
        image=args.image,
        build=build,
        smoke=smoke,
        push=push,
        require_smoke=parse_bool(args.require_smoke, option="--require-smoke"),
        sample_data=args.sample_data,
        build_options=_build_kwargs(args, ctx) if build else None,
        smoke_options=_smoke_kwargs(args) if smoke else None,
        push_options=push_options,
        progress=ctx.progress,
    )
    write_json_atomic(args.output, result.to_dict())
    texts, summaries, annotations = [], [], []
    outputs: dict[str, str] = {
        "passed": "true" if result.passed else "false",
        "result-file": str(args.output),
    }
    if result.build is not None:
        text, summary, more = _build_report(result.build)
        texts.append(text)
        summaries.append(summary)
        outputs.update(more)
    if result.smoke is not None:
        text, summary, more, notes = _smoke_report(result.smoke)
        texts.append(text)
        summaries.append(summary)
        outputs.update(more)
        annotations.extend(notes)
    if result.push is not None:
        text, summary, more = _push_report(result.push)
        texts.append(text)
        summaries.append(summary)
        outputs.update(more)
    return Outcome(
        result=result,
        passed=result.passed,
        text="\n".join(texts),
        summary="\n".join(summaries),
        outputs=outputs,
        annotations=annotations,
    )
