"""Build, smoke-test and push in one call, failing closed between the stages.

This is what ``mlci image release`` and ``actions/image-build`` run: each stage can be switched
off, but a push only ever follows a smoke test that passed on the very image being pushed
(unless the smoke stage is switched off *and* the caller said so with ``require_smoke=False``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

from mlci_lib.errors import UsageError
from mlci_lib.image.build import ImageBuildResult, build_image
from mlci_lib.image.push import PushImageResult, push_image
from mlci_lib.image.smoke import SmokeResult, smoke_test_image
from mlci_lib.results import Result


@dataclasses.dataclass(frozen=True)
class ImageReleaseResult(Result):
    SCHEMA = "mlci.image-release"
    SCHEMA_VERSION = 1

    passed: bool
    failed_stage: str | None
    image: str | None
    build: ImageBuildResult | None
    smoke: SmokeResult | None
    push: PushImageResult | None


def release_image(
    model: str | os.PathLike[str],
    *,
    image: str | None = None,
    build: bool = True,
    smoke: bool = True,
    push: bool = False,
    require_smoke: bool = True,
    sample_data: str | os.PathLike[str] | None = None,
    build_options: Mapping[str, Any] | None = None,
    smoke_options: Mapping[str, Any] | None = None,
    push_options: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImageReleaseResult:
    say = progress or (lambda _text: None)
    if not build and not image:
        raise UsageError("with build switched off, name the image to smoke-test or push", hint="pass --image")
    if smoke and sample_data is None:
        raise UsageError("the smoke test needs sample rows", hint="pass --sample-data, or --smoke false")
    built = None
    reference = image
    if build:
        say("building the serving image")
        built = build_image(model, sample_data=sample_data, **dict(build_options or {}))
        reference = built.reference
        say(f"built {reference} ({built.image_id[:19]})")
    assert reference is not None
    smoked = None
    if smoke:
        say(f"smoke-testing {reference}")
        options = dict(smoke_options or {})
        if built is not None and built.conversion is not None:
            # An ONNX image matches the native model within the tolerance its conversion check used.
            options.setdefault("tolerance", built.conversion["tolerance"])
        smoked = smoke_test_image(reference, model, sample_data, **options)  # type: ignore[arg-type]
        if not smoked.passed:
            return ImageReleaseResult(False, "image-smoke", reference, built, smoked, None)
    pushed = None
    if push:
        say(f"pushing {reference}")
        options = dict(push_options or {})
        if built is not None:
            options.setdefault("repository", built.repository)
            options.setdefault("tags", list(built.tags))
        pushed = push_image(reference, smoke=smoked, require_smoke=require_smoke, **options)
    return ImageReleaseResult(True, None, reference, built, smoked, pushed)
