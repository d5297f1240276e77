"""`mlci deploy`: render the manifests of a released model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mlci_lib.cli.framework import Context, Outcome, add_command, add_group
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
    parser.add_argument("--result-file", metavar="FILE", help="also write the render result (JSON) here")


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
