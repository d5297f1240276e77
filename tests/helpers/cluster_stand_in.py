"""The cluster's part in workflow tests: run a rendered Deployment's pod on the Docker engine.

No Kubernetes API server runs on the test machines. A workflow step that would apply the manifests
starts this script in the background instead::

    python cluster_stand_in.py MANIFESTS PORT STATE_DIR

It reads ``MANIFESTS/deployment.yaml``, runs its container spec with ``run_container_spec`` (the
image by digest, its numeric user, read-only root, tmpfs, dropped capabilities, limits, probes),
writes ``STATE_DIR/ready`` once the probes answered (or ``STATE_DIR/failed`` with the reason), and
keeps the container running until ``STATE_DIR/stop`` appears or ``--timeout`` seconds pass; the
container is always removed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("manifests", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("state", type=Path)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    args.state.mkdir(parents=True, exist_ok=True)
    try:
        from mlci_lib.deploy.podrun import run_container_spec

        deployment = yaml.safe_load((args.manifests / "deployment.yaml").read_text())
        pod = deployment["spec"]["template"]["spec"]

        def serve_until_stopped() -> None:
            (args.state / "ready").write_text(pod["containers"][0]["image"])
            deadline = time.monotonic() + args.timeout
            while not (args.state / "stop").exists() and time.monotonic() < deadline:
                time.sleep(0.2)

        ran = run_container_spec(
            pod["containers"][0],
            port=args.port,
            pod_security=pod.get("securityContext"),
            while_running=serve_until_stopped,
        )
    except Exception as exc:  # the test reads the reason from the state folder
        (args.state / "failed").write_text(f"{type(exc).__name__}: {exc}")
        return 2
    if not ran.passed:
        (args.state / "failed").write_text(ran.message)
        return 1
    (args.state / "stopped").write_text(ran.message)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
