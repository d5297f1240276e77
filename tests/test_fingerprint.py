"""One data fingerprint: the pipeline, the push and the gate agree on the same files."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlci_lib.cli.model_cmd import data_fingerprint_of
from mlci_lib.fingerprint import data_fingerprint
from mlci_lib.pipeline.run import data_fingerprint as pipeline_fingerprint


def _files(tmp_path: Path) -> list[Path]:
    (tmp_path / "a").mkdir()
    train = tmp_path / "a" / "train.csv"
    train.write_text("x,label\n1,0\n2,1\n")
    evaluation = tmp_path / "eval.csv"
    evaluation.write_text("x,label\n3,1\n")
    return [train, evaluation]


def test_the_pipeline_and_model_push_fingerprint_the_same_files_alike(tmp_path: Path) -> None:
    files = _files(tmp_path)
    from_pipeline = pipeline_fingerprint(files)
    from_push = data_fingerprint_of(
        argparse.Namespace(data=[str(f) for f in reversed(files)], data_fingerprint=None)
    )
    assert from_pipeline == from_push == data_fingerprint(files)
    assert from_pipeline is not None and from_pipeline.startswith("sha256:")


def test_the_fingerprint_changes_with_content_and_names(tmp_path: Path) -> None:
    files = _files(tmp_path)
    before = data_fingerprint(files)
    files[1].write_text("x,label\n3,0\n")
    assert data_fingerprint(files) != before
    renamed = files[1].with_name("holdout.csv")
    files[1].rename(renamed)
    after_change = data_fingerprint([files[0], renamed])
    files_again = [files[0], renamed.rename(files[1])]
    assert data_fingerprint(files_again) != after_change
    assert data_fingerprint([]) is None
    assert data_fingerprint([files[0]]) != data_fingerprint(files_again)
