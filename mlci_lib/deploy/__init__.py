"""Deploying a released model: manifests rendered from the release, validated offline."""

from __future__ import annotations

from mlci_lib.deploy.config import DeployConfig, parse_deploy_config
from mlci_lib.deploy.manifests import Release, container_spec
from mlci_lib.deploy.render import DeployRenderResult, make_release, release_from_result, render_deployment

__all__ = [
    "DeployConfig",
    "DeployRenderResult",
    "Release",
    "container_spec",
    "make_release",
    "parse_deploy_config",
    "release_from_result",
    "render_deployment",
]
