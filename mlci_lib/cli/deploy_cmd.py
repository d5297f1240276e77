"""`mlci deploy`: render the manifests of a released model, verify it once deployed, judge a canary."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command, add_group, add_result_file, number
from mlci_lib.errors import InputError, MlciError, UsageError

_RENDER = """\
Render the Kubernetes (Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget,
NetworkPolicy, ServiceMonitor) or KServe (InferenceService) manifests of a released image from
the deploy: section of mlci.yaml, and with --alert-rules the alert rules of `mlci monitor render`
as a PrometheusRule (their job must be the Service's name, the job its ServiceMonitor gives the
series); validate them offline against the Kubernetes schemas of deploy.kubernetes-version and
custom resources against their operators' CRD schemas (strict: no unknown field), and write them
with a kustomization.yaml under OUTPUT/base (default: deploy.output). The image is named by
digest, never by a tag: give the release result of 'mlci image release --push' or the verdict of
an 'mlci run' that pushed its image (--release), or --image REF@sha256:... with the model's name.
Nothing is written unless everything validated.

examples:
  mlci deploy render --release .mlci/image-release.json
  mlci deploy render --release .mlci/pipeline-verdict.json --image-digest sha256:...
  mlci deploy render --image registry/churn@sha256:... --model-name churn --config mlci.yaml
  mlci deploy render --release .mlci/pipeline-verdict.json --alert-rules .mlci/monitoring/alerts.yml
"""


def register(subparsers: Any) -> None:
    group = add_group(subparsers, "deploy", "render and check deployments of a released model")
    parser = add_command(
        group, "render", handle_render, "render and validate the deployment manifests", _RENDER
    )
    _add_release_options(parser)
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
    _register_apply(group)
    _register_gitops(group)


def _add_release_options(parser: Any) -> None:
    """What is deployed, from where: the same options for render, apply and gitops."""
    parser.add_argument(
        "--release",
        metavar="FILE",
        help="result of mlci image release, or the verdict of mlci run (image digest, model, user)",
    )
    parser.add_argument(
        "--image-digest",
        metavar="DIGEST",
        help="with --release: refuse a release of any other image (e.g. the digest a release job output)",
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
        "--alert-rules",
        metavar="FILE",
        help="the alerts.yml of mlci monitor render, rendered as a PrometheusRule beside the manifests",
    )


def _release_and_config(args: argparse.Namespace, command: str) -> tuple[Any, Any, Any]:
    """The release, the deploy section and the pipeline config the options name."""
    from mlci_lib.deploy import make_release, parse_deploy_config, release_from_result
    from mlci_lib.files import read_mapping
    from mlci_lib.pipeline.config import load_config

    if bool(args.release) == bool(args.image):
        raise UsageError(
            "give either --release FILE or --image REF@sha256:...", hint=f"see 'mlci deploy {command} --help'"
        )
    config = load_config(args.config)
    deploy = parse_deploy_config(config.raw.get("deploy"), default_name=config.model_name)
    if args.alert_rules:
        from mlci_lib.deploy.config import with_alert_rules
        from mlci_lib.monitor.render import read_rules_file

        rules = read_rules_file(args.alert_rules, option="--alert-rules")
        deploy = with_alert_rules(deploy, rules, source=str(args.alert_rules))
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
    if args.image_digest and args.image_digest != release.image_digest:
        raise InputError(
            f"option --image-digest: the release names image {release.image_digest}, not {args.image_digest}",
            hint="pass the release result (or pipeline verdict) of the run that pushed that image",
        )
    return release, deploy, config


def handle_render(args: argparse.Namespace, ctx: Context) -> Outcome:
    from mlci_lib.deploy import render_deployment
    from mlci_lib.files import write_json_atomic

    release, deploy, config = _release_and_config(args, "render")
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
        f"{result.kubernetes_version} and the operators' CRD schemas, kustomize {result.kustomize}"
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
  mlci deploy verify https://churn.example.com --release .mlci/pipeline-verdict.json
"""


def _register_verify(group: Any) -> None:
    parser = add_command(group, "verify", handle_verify, "verify a deployment serves the release", _VERIFY)
    parser.add_argument("url", metavar="URL", help="the deployment's address, e.g. http://churn.ml.svc")
    parser.add_argument(
        "--smoke",
        metavar="FILE",
        help="the smoke result (or the release result or pipeline verdict holding it); default: --release",
    )
    parser.add_argument(
        "--release",
        metavar="FILE",
        help="the release result or pipeline verdict: model, verdict and image digests",
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

    if not args.smoke and not args.release:
        raise UsageError(
            "give --smoke FILE, or --release FILE holding the smoke result",
            hint="see 'mlci deploy verify --help'",
        )
    expected = load_expected(args.smoke or args.release, args.release)
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


_APPLY = """\
Deploy a release to the cluster of a kubeconfig with kubectl, and keep it only if it holds:
render into a temporary folder and validate everything offline; 'kubectl apply --dry-run=server'
(the API server admits every object, persists none); 'kubectl apply'; wait for the rollout
('kubectl rollout status --timeout', or for an InferenceService its new generation Ready);
run the checks of 'mlci deploy verify' against --url; and when the rollout or a check fails,
undo it ('kubectl rollout undo', or the previous InferenceService applied again). The kubeconfig
comes from a file (--kubeconfig) or from a variable holding its content (--kubeconfig-env, a CI
secret): its credentials are masked, and the content is written only to a 0600 temporary file
removed afterwards. Exit 0: deployed and verified; 1: rolled back (or could not be); 2: bad input,
or the cluster does not answer or refuses the manifests (nothing applied).

examples:
  mlci deploy apply --release .mlci/image-release.json --kubeconfig-env KUBECONFIG_CONTENT \\
      --url https://churn.example.com --verdict-file .mlci/deploy-apply.json
  mlci deploy apply --image REG/churn@sha256:... --model-name churn --kubeconfig ~/.kube/config \\
      --context staging --smoke .mlci/smoke.json --url http://churn.ml.svc --timeout 600
"""


def _register_apply(group: Any) -> None:
    parser = add_command(
        group, "apply", handle_apply, "apply the manifests with kubectl, verify, undo on failure", _APPLY
    )
    _add_release_options(parser)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--kubeconfig", metavar="FILE", help="the kubeconfig file of the cluster")
    source.add_argument(
        "--kubeconfig-env", metavar="NAME", help="the environment variable holding the kubeconfig's content"
    )
    parser.add_argument("--context", metavar="NAME", help="the kubeconfig context (default: its current one)")
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=number(int, low=1, high=86_400),
        default=300,
        help="how long the rollout may take (default 300)",
    )
    parser.add_argument("--url", metavar="URL", help="the deployment's address, for the post-deploy checks")
    parser.add_argument(
        "--no-verify", action="store_true", help="no post-deploy checks (the rollout alone decides)"
    )
    parser.add_argument(
        "--smoke", metavar="FILE", help="the smoke result the checks compare with (default: the --release)"
    )
    parser.add_argument("--gate", metavar="FILE", help="a gate file whose latency rules must hold")
    parser.add_argument(
        "--requests",
        metavar="N",
        type=number(int, low=1, high=100_000),
        default=50,
        help="timed requests for the latency rules (default 50)",
    )
    add_result_file(
        parser,
        "--verdict-file",
        what="verdict file",
        metavar="FILE",
        help="write the apply verdict (JSON: cluster, namespace, revision, checks) here",
    )


def handle_apply(args: argparse.Namespace, ctx: Context) -> Outcome:
    import os

    from mlci_lib.deploy.apply import Kubectl, apply_release, workload_of
    from mlci_lib.deploy.kubeconfig import kubeconfig_path, read_kubeconfig

    if not (args.kubeconfig or args.kubeconfig_env):
        raise UsageError(
            "give the cluster: --kubeconfig FILE or --kubeconfig-env NAME",
            hint="see 'mlci deploy apply --help'",
        )
    if bool(args.url) == bool(args.no_verify):
        raise UsageError(
            "give --url URL for the post-deploy checks, or --no-verify to skip them",
            hint="see 'mlci deploy apply --help'",
        )
    try:
        kube = read_kubeconfig(
            path=args.kubeconfig, variable=args.kubeconfig_env, environ=os.environ, context=args.context
        )
    except MlciError:
        if args.kubeconfig_env:
            # Content that does not parse has no credentials to pick out: every line of it is hidden.
            ctx.runner.mask(os.environ.get(args.kubeconfig_env, ""))
        raise
    for secret in kube.secrets:
        ctx.runner.mask(secret)
    release, deploy, _ = _release_and_config(args, "apply")
    workload_of(deploy)  # a Rollout is refused before kubectl is looked for
    check = None
    if args.url:
        from mlci_lib.deploy.verify import check_url, load_expected, verify_deployment
        from mlci_lib.gate.rules import load_gate_rules

        check_url(args.url)  # before anything is applied: a typo must not trigger an undo
        smoke = args.smoke or args.release
        if not smoke:
            raise UsageError(
                "give --smoke FILE (or --release FILE, which holds it) for the post-deploy checks"
            )
        expected = load_expected(smoke, args.release)
        rules = load_gate_rules(args.gate) if args.gate else None
        url = args.url

        def check() -> Any:
            return verify_deployment(url, expected, gate_rules=rules, requests=args.requests)

    with kubeconfig_path(kube, args.kubeconfig) as path:
        kubectl = Kubectl(path, kube.cluster.context)
        verdict = apply_release(
            release,
            deploy,
            kubectl=kubectl,
            cluster=kube.cluster,
            timeout=args.timeout,
            check=check,
            progress=ctx.progress,
        )
    from mlci_lib.deploy.summary import apply_markdown

    extra = {"revision": verdict.revision or "", "undone": "true" if verdict.undone else "false"}
    return _verdict_outcome(verdict, args.verdict_file, apply_markdown(verdict), extra)


_GITOPS = """\
Commit the rendered manifests to a branch of a manifests repository that Argo CD or Flux
watches, and open or update one pull request for them. Rendered and validated in a temporary
folder first; then, in a fresh clone of --repository (a local path or a clone URL), PATH/base is
replaced (overlays and everything else stay), a commit is made only when something changed and
pushed (never forced), and the open pull request from --branch to --base is updated, or one
opened, through the GitHub REST API. A rerun with the same release changes nothing. The token
(--token-env, default GITHUB_TOKEN) is masked and reaches git through its environment only.
Exit 0: done (or nothing to do); 2: bad input, or git or GitHub failed.

examples:
  mlci deploy gitops --release .mlci/image-release.json \\
      --repository https://github.com/acme/cluster-state.git --path apps/churn
  mlci deploy gitops --release .mlci/image-release.json --repository ../cluster-state \\
      --github-repository acme/cluster-state --base main
"""


def _register_gitops(group: Any) -> None:
    parser = add_command(
        group,
        "gitops",
        handle_gitops,
        "commit the manifests to a manifests repository and open a PR",
        _GITOPS,
    )
    _add_release_options(parser)
    parser.add_argument(
        "--repository",
        metavar="PATH_OR_URL",
        required=True,
        help="the manifests repository (path or clone URL)",
    )
    parser.add_argument(
        "--path",
        metavar="DIR",
        help="the folder in that repository to write base/ into (default: deploy.output)",
    )
    parser.add_argument("--branch", metavar="NAME", help="the branch to commit to (default mlci/deploy-NAME)")
    parser.add_argument(
        "--base", metavar="NAME", default="main", help="the pull request's base (default main)"
    )
    parser.add_argument(
        "--github-repository",
        metavar="OWNER/NAME",
        help="where the pull request goes (default: from a github.com --repository)",
    )
    parser.add_argument(
        "--api-url", metavar="URL", help="the GitHub API (default $GITHUB_API_URL or https://api.github.com)"
    )
    parser.add_argument(
        "--token-env",
        metavar="NAME",
        default="GITHUB_TOKEN",
        help="the variable holding the token for git and the API (default GITHUB_TOKEN)",
    )
    parser.add_argument("--no-pull-request", action="store_true", help="commit and push only")
    add_result_file(
        parser,
        "--result-file",
        what="gitops result",
        metavar="FILE",
        help="write the result (JSON: branch, commit, pull request) here",
    )


def handle_gitops(args: argparse.Namespace, ctx: Context) -> Outcome:
    import os
    import urllib.parse

    from mlci_lib.deploy.gitops import github_repository_of, publish
    from mlci_lib.files import write_json_atomic
    from mlci_lib.report.github import DEFAULT_API_URL, GitHubClient

    token = os.environ.get(args.token_env, "") if args.token_env else ""
    ctx.runner.mask(token)
    # A clone URL may carry credentials of its own (https://user:token@host/...): hidden as well.
    ctx.runner.mask(urllib.parse.urlsplit(args.repository).password)
    release, deploy, _ = _release_and_config(args, "gitops")
    github = None
    client_factory = None
    if not args.no_pull_request:
        github = args.github_repository or github_repository_of(args.repository)
        if not github or not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", github):
            raise UsageError(
                f"cannot tell the GitHub repository of {args.repository!r} for the pull request",
                hint="pass --github-repository OWNER/NAME, or --no-pull-request",
            )
        if not token:
            raise UsageError(
                f"${args.token_env} holds no token for the pull request",
                hint="set it (permissions: contents and pull-requests write), or pass --no-pull-request",
            )
        api_url = args.api_url or os.environ.get("GITHUB_API_URL", "") or DEFAULT_API_URL
        client_factory = lambda: GitHubClient(token, api_url=api_url)  # noqa: E731
    result = publish(
        release,
        deploy,
        repository=args.repository,
        path=args.path or deploy.output,
        branch=args.branch or f"mlci/deploy-{deploy.name}",
        base=args.base,
        github=github,
        client_factory=client_factory,
        token=token or None,
        progress=ctx.progress,
    )
    outputs = {
        "branch": result.branch,
        "commit": result.commit or "",
        "changed": "true" if result.changed else "false",
        "pull-request-number": str(result.pull_request.number) if result.pull_request else "",
        "pull-request-url": result.pull_request.url if result.pull_request else "",
    }
    text = result.text()
    if args.result_file:
        path = write_json_atomic(args.result_file, result.to_dict())
        outputs["result-file"] = str(path)
    from mlci_lib.deploy.summary import gitops_markdown

    return Outcome(result=result, passed=True, text=text, summary=gitops_markdown(result), outputs=outputs)
