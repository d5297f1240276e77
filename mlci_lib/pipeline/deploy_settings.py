"""The settings of the pipeline's deploy stage (``stages.deploy``), checked once.

Apart from the stage itself (``pipeline.deployment``) so that loading ``mlci.yaml`` checks them
without importing the deploy machinery.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mlci_lib.errors import ConfigError

MODES = ("render", "apply", "gitops")


@dataclasses.dataclass(frozen=True)
class DeploySettings:
    """``stages.deploy``, checked once."""

    mode: str
    output: str | None
    url: str | None
    gate: str | None
    requests: int
    apply: Mapping[str, Any]
    gitops: Mapping[str, Any]


def parse_deploy_stage(settings: Mapping[str, Any], where: str = "stages.deploy") -> DeploySettings:
    """The stage's settings; a combination that cannot work is a ConfigError naming the key.

    The schema checks each key's type; this checks what the keys mean together.
    """
    mode = str(settings.get("mode", "render"))
    if mode not in MODES:
        raise ConfigError(f"{where}.mode must be one of {', '.join(MODES)}, got {mode!r}")
    for other in ("apply", "gitops"):
        if settings.get(other) and mode != other:
            raise ConfigError(
                f"{where}.{other} is read only with mode: {other} (mode is {mode})",
                hint=f"set {where}.mode: {other}, or remove {where}.{other}",
            )
    verify = settings.get("verify") or {}
    if verify and mode == "gitops":
        raise ConfigError(
            f"{where}.verify cannot run with mode: gitops: the stage opens a pull request, "
            "nothing is deployed yet",
            hint="verify once the manifests are synced (mlci deploy verify URL in a later job)",
        )
    return DeploySettings(
        mode=mode,
        output=settings.get("output"),
        url=verify.get("url"),
        gate=verify.get("gate"),
        requests=int(verify.get("requests", 50)),
        apply=dict(settings.get("apply") or {}),
        gitops=dict(settings.get("gitops") or {}),
    )


__all__ = ["MODES", "DeploySettings", "parse_deploy_stage"]
