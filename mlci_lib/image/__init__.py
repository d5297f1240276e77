"""The serving image: build it, smoke-test it, push it.

Only the engine module imports the docker SDK, inside functions; importing this package is cheap.
"""

from __future__ import annotations

from mlci_lib.image.build import BuildStep, ImageBuildResult, build_image, tags_from_git
from mlci_lib.image.context import serving_requirements
from mlci_lib.image.push import PushImageResult, push_image
from mlci_lib.image.release import ImageReleaseResult, release_image
from mlci_lib.image.smoke import Latency, Mismatch, SmokeResult, smoke_test_image

__all__ = [
    "BuildStep",
    "ImageBuildResult",
    "ImageReleaseResult",
    "Latency",
    "Mismatch",
    "PushImageResult",
    "SmokeResult",
    "build_image",
    "push_image",
    "release_image",
    "serving_requirements",
    "smoke_test_image",
    "tags_from_git",
]
