"""The wheel users install ships the whole package: templates, the example, the schema.

Tests elsewhere run from the work tree, where every file is at hand; this one builds the wheel from
the files git tracks, as a release would, and runs the installed CLI from the wheel alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers.components import REPO_ROOT

pytestmark = pytest.mark.slow


def tracked_files() -> list[str]:
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [name for name in listing.split("\0") if name]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("packaging")
    source = folder / "source"
    for name in tracked_files():
        origin = REPO_ROOT / name
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_symlink():
            target.symlink_to(os.readlink(origin))
        elif origin.is_file():
            shutil.copy2(origin, target)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = (folder / "dist").glob("mlci-*.whl")
    return built


def test_wheel_holds_every_tracked_package_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    package_files = [name for name in tracked_files() if name.startswith("mlci_lib/")]
    assert len(package_files) > 50
    missing = [name for name in package_files if name not in shipped]
    assert not missing, f"the wheel lacks {missing}"
    assert any(name.endswith(".dist-info/entry_points.txt") for name in shipped)


def test_cli_from_the_wheel_alone_writes_a_project(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)

    def python(*args: str) -> str:
        # Dependencies come from this environment; mlci_lib itself only from the unpacked wheel,
        # which comes first on the path (and the work tree is not the current folder).
        done = subprocess.run(
            [sys.executable, *args],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(site)},
            cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    where = python("-c", "import mlci_lib; print(mlci_lib.__file__)")
    assert Path(where).is_relative_to(site), where
    project = tmp_path / "project"
    project.mkdir()
    python("-m", "mlci_lib", "init", "--dir", str(project), "--model-name", "churn")
    for name in (
        "mlci.yaml",
        "gate.yaml",
        ".github/workflows/mlci-pr.yml",
        ".github/workflows/mlci-release.yml",
    ):
        assert (project / name).is_file(), name
    # The written pipeline file validates against the JSON Schema the wheel ships.
    python(
        "-c",
        "import sys; from mlci_lib.pipeline.config import load_config; load_config(sys.argv[1])",
        str(project / "mlci.yaml"),
    )
    example = Path(python("-c", "from mlci_lib.demo import example_source; print(example_source())"))
    assert example.is_relative_to(site) and (example / "data" / "train.csv").is_file()
