"""Copies of a user's folder never carry host files: links out of the folder, links to folders and
special files are refused; a link to a file inside the folder is copied as that file's content."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from mlci_lib.errors import InputError
from mlci_lib.files import check_output_folder, copy_folder, folder_files
from mlci_lib.image.context import prepare_context


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "model.skops").write_bytes(b"model bytes")
    (root / "sub" / "weights.bin").write_bytes(b"weights")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("hidden")
    return root


def test_plain_folder_is_copied_file_by_file(folder: Path, tmp_path: Path) -> None:
    copied = copy_folder(folder, tmp_path / "copy", what="model folder")
    assert copied == ["model.skops", "sub/weights.bin"]
    assert (tmp_path / "copy" / "sub" / "weights.bin").read_bytes() == b"weights"
    assert not (tmp_path / "copy" / ".git").exists()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda root, outside: os.symlink("/etc/passwd", root / "passwd"), "passwd is a link to /etc/passwd"),
        (lambda root, outside: os.symlink(outside / "secret.txt", root / "s.txt"), "outside the folder"),
        (lambda root, outside: os.symlink("../../outside/secret.txt", root / "sub" / "r.txt"), "outside"),
        (lambda root, outside: os.symlink(outside, root / "out"), "link to a folder"),
        (lambda root, outside: os.symlink(root / "sub", root / "loop"), "link to a folder"),
        (lambda root, outside: os.symlink(root / "gone", root / "broken"), "broken link"),
        (lambda root, outside: os.mkfifo(root / "pipe"), "pipe is a FIFO"),
    ],
    ids=[
        "etc-passwd",
        "file-outside",
        "relative-escape",
        "folder-outside",
        "folder-inside",
        "broken",
        "fifo",
    ],
)
def test_host_files_and_special_files_are_refused(folder: Path, tmp_path: Path, make, expected: str) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    make(folder, outside)
    with pytest.raises(InputError, match=expected):
        copy_folder(folder, tmp_path / "copy", what="model folder")
    assert not (tmp_path / "copy").exists(), "nothing is written before every file is checked"


def test_a_socket_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(root / "s.sock"))
        with pytest.raises(InputError, match=r"s\.sock is a socket"):
            folder_files(root, what="model folder")
    finally:
        server.close()


def test_a_link_to_a_file_inside_is_copied_as_a_regular_file(folder: Path, tmp_path: Path) -> None:
    os.symlink("sub/weights.bin", folder / "current.bin")
    copy_folder(folder, tmp_path / "copy", what="model folder")
    copied = tmp_path / "copy" / "current.bin"
    assert not copied.is_symlink() and copied.read_bytes() == b"weights"


def test_a_hidden_link_out_is_skipped_never_followed(folder: Path, tmp_path: Path) -> None:
    os.symlink("/etc/passwd", folder / ".passwd")
    assert copy_folder(folder, tmp_path / "copy", what="model folder") == ["model.skops", "sub/weights.bin"]


def test_the_image_context_refuses_a_model_folder_linking_to_etc_passwd(folder: Path, tmp_path: Path) -> None:
    os.symlink("/etc/passwd", folder / "passwd")
    with pytest.raises(InputError, match=r"model folder .*passwd is a link to /etc/passwd"):
        prepare_context(
            tmp_path / "context",
            model=folder,
            base_image="python:3.12-slim",
            requirements=["numpy==2.0.0"],
            wheelhouse=False,
            python_version="3.12",
            platform="manylinux_2_28_x86_64",
            info={},
            warmup_rows=None,
        )
    assert not (tmp_path / "context" / "bundle" / "model" / "passwd").exists()


def test_plots_folder_that_links_out_is_refused(tmp_path: Path) -> None:
    os.symlink("/etc", tmp_path / "plots-link")
    with pytest.raises(InputError, match=r"plots folder .* is a link"):
        check_output_folder(tmp_path / "plots-link", what="plots folder")
    (tmp_path / "plots").mkdir()
    os.symlink("/etc/passwd", tmp_path / "plots" / "roc.png")
    with pytest.raises(InputError, match="outside the folder"):
        check_output_folder(tmp_path / "plots", what="plots folder")


def test_report_plots_refuse_a_plots_folder_holding_a_link_out(tmp_path: Path) -> None:
    from mlci_lib.report.plots import write_plots

    predictions = tmp_path / "predictions.csv"
    predictions.write_text(
        "id,label,prediction,score\n" + "".join(f"r{i},{i % 2},{i % 2},0.7\n" for i in range(20))
    )
    plots = tmp_path / "mlci-plots"
    plots.mkdir()
    os.symlink("/etc/passwd", plots / "passwd")
    with pytest.raises(InputError, match="outside the folder"):
        write_plots(predictions, plots)
    assert [p.name for p in plots.iterdir()] == ["passwd"]
