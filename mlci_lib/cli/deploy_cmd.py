"""`mlci deploy`: render the manifests of a released model, verify it once deployed, judge a canary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command, add_group, add_result_file, number
from mlci_lib.errors import UsageError

_RENDER = """\
Render the Kubernetes (Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget,
NetworkPolicy, ServiceMonitor) or KServe (InferenceService) manifests of a released image from
the deploy: section of mlci.yaml, validate them offline against the Kubernetes schemas of
deploy.kubernetes-version (strict: no unknown field), and write them with a kustomization.yaml
under OUTPUT/base (default: deploy.output). The image is named by digest, never by a tag:
give the release result of 'mlci image release --push' (--release), or --image REF@sha256:...
with the model's name. Nothing is written unless everything validated.

examples:
  mlci deploy render --release .mlci/image-release.json
  mlci deploy render --image registry/churn@sha256:... --model-name churn --config mlci.yaml
"""


def register(subparsers: Any) -> None:
    group = add_group(subparsers, "deploy", "render and check deployments of a released model")
    parser = add_command(
        group, "render", handle_render, "render and validate the deployment manifests", _RENDER
    )
    parser.add_argument(
        "--release", metavar="FILE", help="result of mlci image release (image digest, model, user)"
    )
    parser.add_argument("--image", metavar="REF", help="the image by digest: REGISTRY/REPO@sha256:<digest>")
    parser.add_argument("--model-name", metavar="NAME", help="with --image: the model's name")
    parser.add_argument("--model-version", metavar="VERSION", help="with --image: the model's version")
    parser.add_argument("--model-digest", metavar="DIGEST", help="with --image: the model's content digest")
    parser.add_argument("--verdict-digest", metavar="DIGEST", help="with --image: the verdict's digest")
    parser.add_argument(
        "--user", metavar="UID:GID", default="10001:10001", help="with --image: the image's numeric user"
    )
    parser.add_argument("--config", metavar="FILE", default="mlci.yaml", help="the pipeline file (mlci.yaml)")
    parser.add_argument(
        "--output", metavar="DIR", help="the folder to write base/ into (default: deploy.output)"
    )
    add_result_file(
        parser,
        "--result-file",
        what="render result",
        metavar="FILE",
        help="also write the render result (JSON) here",
    )
    parser.add_argument(
        "--rollout",
        action="store_true",
        help="an Argo Rollout with canary steps instead of the Deployment (deploy.rollout, or its defaults)",
    )
    parser.add_argument(
        "--prometheus",
        metavar="URL",
        help="with --rollout: the cluster's Prometheus, for the canary analysis",
    )
    _register_verify(group)
    _register_analyze(group)


def handle_render(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.deploy import make_release, parse_deploy_config, release_from_result, render_deployment
    from mlci_lib.files import read_mapping, write_json_atomic
    from mlci_lib.pipeline.config import load_config

    if bool(args.release) == bool(args.image):
        raise UsageError(
            "give either --release FILE or --image REF@sha256:...", hint="see 'mlci deploy render --help'"
        )
    config = load_config(args.config)
    deploy = parse_deploy_config(config.raw.get("deploy"), default_name=config.model_name)
    if args.release:
        release = release_from_result(
            read_mapping(args.release, what="release result", option="--release"), source=str(args.release)
        )
    else:
        release = make_release(
            image=args.image,
            model_name=args.model_name or config.model_name or "",
            model_version=args.model_version,
            model_digest=args.model_digest,
            verdict_digest=args.verdict_digest,
            user=args.user,
        )
    if args.rollout and deploy.rollout is None:
        import dataclasses

        from mlci_lib.deploy.rollouts import parse_rollout

        settings = {"analysis": bool(args.prometheus), "prometheus": args.prometheus}
        deploy = dataclasses.replace(deploy, rollout=parse_rollout(settings, "option --rollout"))
    output = Path(args.output) if args.output else config.resolve(deploy.output)
    result = render_deployment(release, deploy, output)
    if args.result_file:
        write_json_atomic(args.result_file, result.to_dict())
    files = ", ".join(result.files)
    text = (
        f"rendered {deploy.target} manifests of {release.model_name} ({release.image_digest[:19]}) into "
        f"{result.folder}: {files}; {len(result.validated)} validated against Kubernetes "
        f"{result.kubernetes_version}, kustomize {result.kustomize}"
    )
    return Outcome(
        result=result,
        passed=True,
        text=text,
        outputs={"folder": result.folder, "image": result.image, "files": files},
    )


_ANALYZE = """\
Judge a canary against the stable version from what Prometheus scraped of their /metrics over a
window: the error rate (5xx and 4xx shares of prediction requests, Newcombe's interval of the
difference), latency quantiles (bucket counts resampled multinomially, the quantile interpolated
as histogram_quantile does) and the prediction distribution (class shares; mean predicted value).
Each rule ends pass, fail, inconclusive (too little traffic: the verdict says how much would
decide) or undefined, as the gate's rules do, and --on-inconclusive (or the rules) decides what
inconclusive means. Exit 0: promote; 1: roll back; 2: bad input or Prometheus unreachable.

examples:
  mlci deploy analyze --prometheus http://prometheus:9090 \\
      --stable 'job="churn",track="stable"' --canary 'job="churn",track="canary"' --window 10m
  mlci deploy analyze --prometheus URL --stable ... --canary ... --gate gate.yml --rules canary.yml
"""


def _register_analyze(group: Any) -> None:
    parser = add_command(
        group, "analyze", handle_analyze, "judge a canary against stable from Prometheus", _ANALYZE
    )
    parser.add_argument("--prometheus", metavar="URL", required=True, help="the Prometheus server's address")
    parser.add_argument(
        "--stable", metavar="SELECTOR", required=True, help='series of the stable version, e.g. job="stable"'
    )
    parser.add_argument(
        "--canary", metavar="SELECTOR", required=True, help='series of the canary, e.g. job="canary"'
    )
    parser.add_argument(
        "--window", metavar="DURATION", default="10m", help="how far back to count (default 10m)"
    )
    parser.add_argument(
        "--gate", metavar="FILE", help="a gate file: its latency rules, bootstrap settings and policy"
    )
    parser.add_argument(
        "--rules", metavar="FILE", help="canary rules (errors, client-errors, latency, predictions)"
    )
    parser.add_argument(
        "--on-inconclusive",
        choices=("fail", "warn", "pass"),
        help="what an inconclusive rule does (default fail)",
    )
    add_result_file(
        parser,
        "--verdict-file",
        what="verdict file",
        metavar="FILE",
        help="write the canary verdict (JSON) here",
    )


def handle_analyze(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.deploy.analyze import analyze_canary, load_canary_rules

    rules = load_canary_rules(gate=args.gate, rules=args.rules, on_inconclusive=args.on_inconclusive)
    verdict = analyze_canary(
        args.prometheus, stable=args.stable, canary=args.canary, window=args.window, rules=rules
    )
    from mlci_lib.deploy.summary import canary_markdown

    return _verdict_outcome(
        verdict, args.verdict_file, canary_markdown(verdict), {"decision": verdict.decision}
    )


_VERIFY = """\
Verify a running deployment (a Service, an ingress, a port-forward) serves what was released and
tested: it is live and ready; /version reports the released model digest (and verdict digest,
given --release); the sample rows the smoke test recorded give the predictions it recorded,
within its tolerance; and with --gate, latency over --requests requests holds the gate's
latency rules. The image digest is recorded from the release; the runtime cannot see it.
Exit 0: verified; 1: a check failed; 2: bad input or the URL does not answer.

examples:
  mlci deploy verify http://churn.ml.svc --smoke .mlci/smoke.json --release .mlci/image-release.json
  mlci deploy verify http://127.0.0.1:8080 --smoke .mlci/image-release.json --gate gate.yml
"""


def _register_verify(group: Any) -> None:
    parser = add_command(group, "verify", handle_verify, "verify a deployment serves the release", _VERIFY)
    parser.add_argument("url", metavar="URL", help="the deployment's address, e.g. http://churn.ml.svc")
    parser.add_argument(
        "--smoke", metavar="FILE", required=True, help="the smoke result (or the release result holding it)"
    )
    parser.add_argument(
        "--release", metavar="FILE", help="the release result: model, verdict and image digests"
    )
    parser.add_argument(
        "--gate", metavar="FILE", help="a gate file whose latency rules the deployment must hold"
    )
    parser.add_argument(
        "--requests",
        metavar="N",
        type=number(int, low=1, high=100_000),
        default=50,
        help="timed requests (default 50)",
    )
    add_result_file(
        parser,
        "--verdict-file",
        what="verdict file",
        metavar="FILE",
        help="write the deploy verdict (JSON) here",
    )


def handle_verify(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.deploy.verify import load_expected, verify_deployment
    from mlci_lib.gate.rules import load_gate_rules

    expected = load_expected(args.smoke, args.release)
    rules = load_gate_rules(args.gate) if args.gate else None
    verdict = verify_deployment(args.url, expected, gate_rules=rules, requests=args.requests)
    from mlci_lib.deploy.summary import deploy_markdown

    return _verdict_outcome(verdict, args.verdict_file, deploy_markdown(verdict), {})


def _verdict_outcome(verdict: Any, verdict_file: str | None, summary: str, extra: dict[str, str]) -> Outcome:
    """The outcome of a verify or analyze run: the verdict written where asked, text, summary, outputs."""
    from mlci_lib.files import write_json_atomic

    outputs = {"passed": "true" if verdict.passed else "false", **extra}
    text = verdict.text()
    if verdict_file:
        path = write_json_atomic(verdict_file, verdict.to_dict())
        outputs["verdict-file"] = str(path)
        text += f"\nverdict: {path}"
    return Outcome(result=verdict, passed=verdict.passed, text=text, summary=summary, outputs=outputs)
