"""The content digest: the same trained state gives the same digest whatever the bytes.

Models are trained in separate Python processes (tests/helpers/seeded_training.py), as two CI runs
would train them: object ids, zip write times and CatBoost's GUID differ, the state does not.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlci_lib.fingerprint import fingerprint_path
from mlci_lib.models import load_model, model_digest
from mlci_lib.registry import push_model
from tests.test_registry import git

REPO_ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ["catboost", "xgboost", "lightgbm"]


def train(out: Path, seed: int, data_seed: int = 0, frameworks: tuple[str, ...] = ()) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.helpers.seeded_training",
            str(out),
            str(seed),
            str(data_seed),
            *frameworks,
        ],
        cwd=REPO_ROOT,
        check=True,
        timeout=300,
    )
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "first": train(root / "first", seed=1, frameworks=tuple(FRAMEWORKS)),
        "again": train(root / "again", seed=1, frameworks=tuple(FRAMEWORKS)),
        "other-seed": train(root / "other-seed", seed=2, frameworks=tuple(FRAMEWORKS)),
        "other-data": train(root / "other-data", seed=1, data_seed=5),
    }


@pytest.mark.slow
@pytest.mark.parametrize("model", ["pipeline", "hgb"])
def test_two_trainings_with_one_seed_give_one_digest(runs: dict[str, Path], model: str) -> None:
    first, again = runs["first"] / model, runs["again"] / model
    # The bytes differ (object ids, member names, write times): the old byte digest split them.
    assert fingerprint_path(first / "model.skops") != fingerprint_path(again / "model.skops")
    assert model_digest(first) == model_digest(again)
    assert load_model(first).digest == load_model(again).digest == model_digest(first)
    stored = json.loads((first / "mlci-model.json").read_text())["digest"]
    assert stored == model_digest(first)
    assert model_digest(runs["other-seed"] / model) != model_digest(first)
    assert model_digest(runs["other-data"] / model) != model_digest(first)


@pytest.mark.slow
@pytest.mark.parametrize("file", ["model.cbm", "model.json", "model.ubj", "model.txt"])
def test_framework_files_digest_the_trained_state(runs: dict[str, Path], file: str) -> None:
    first, again, other = (runs[k] / file for k in ("first", "again", "other-seed"))
    assert model_digest(first) == model_digest(again)
    assert model_digest(first) != model_digest(other)
    if file == "model.cbm":
        # CatBoost writes a random GUID, the training end time and train_dir into every file.
        assert first.read_bytes() != again.read_bytes()
    else:
        # XGBoost and LightGBM write the same bytes for the same training: digested by bytes.
        assert first.read_bytes() == again.read_bytes()
        assert model_digest(first) == fingerprint_path(first)


def _rewrite(
    source: Path, target: Path, change: dict[str, bytes] | None = None, rename: bool = False
) -> None:
    """Copy a skops archive member by member (new write times), optionally changing members."""
    with zipfile.ZipFile(source) as old:
        members = {info.filename: old.read(info.filename) for info in old.infolist()}
    schema = members["schema.json"].decode()
    names = {n: n for n in members}
    if rename:
        # Give every array a new name, as a save in another process would (ids are addresses).
        for index, name in enumerate(sorted(n for n in members if n.endswith(".npy"))):
            names[name] = f"{9_000_000 + index}.npy"
            schema = schema.replace(f'"{name}"', f'"{names[name]}"')
        members["schema.json"] = schema.encode()
    with zipfile.ZipFile(target, "w") as new:
        for name, content in reversed(list(members.items())):
            new.writestr(names[name], (change or {}).get(name, content))


def _flip_one_value(npy: bytes) -> bytes:
    array = np.load(io.BytesIO(npy), allow_pickle=False)
    flat = array.reshape(-1).copy()
    flat[0] = flat[0] + 1 if array.dtype != bool else not flat[0]
    buffer = io.BytesIO()
    np.save(buffer, flat.reshape(array.shape), allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.slow
def test_a_flipped_array_value_changes_the_digest_and_a_rewrite_does_not(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    source = runs["first"] / "hgb" / "model.skops"
    rewritten, renamed, flipped = (
        tmp_path / "rewritten.skops",
        tmp_path / "renamed.skops",
        tmp_path / "flipped.skops",
    )
    _rewrite(source, rewritten)
    _rewrite(source, renamed, rename=True)
    assert model_digest(rewritten) == model_digest(renamed) == model_digest(source)
    with zipfile.ZipFile(source) as archive:
        # The largest array: the tree nodes' thresholds and values.
        target = max(
            (n for n in archive.namelist() if n.endswith(".npy")), key=lambda n: archive.getinfo(n).file_size
        )
        changed = _flip_one_value(archive.read(target))
    _rewrite(source, flipped, change={target: changed})
    assert model_digest(flipped) != model_digest(source)


@pytest.mark.slow
def test_metadata_counts_only_where_it_changes_predictions(runs: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    folder = shutil.copytree(runs["first"] / "pipeline", tmp_path / "model")
    meta_file = folder / "mlci-model.json"
    meta = json.loads(meta_file.read_text())
    before = model_digest(folder)
    meta_file.write_text(json.dumps({**meta, "name": "renamed", "trained_at": "2030-01-01", "digest": "x"}))
    assert model_digest(folder) == before
    signature = meta["signature"]
    signature["inputs"][0]["dtype"] = "string"
    meta_file.write_text(json.dumps({**meta, "signature": signature}))
    assert model_digest(folder) != before


def test_a_damaged_archive_is_digested_by_its_bytes(tmp_path: Path) -> None:
    broken = tmp_path / "model.skops"
    broken.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    assert model_digest(broken) == fingerprint_path(broken)


def _gate_verdict(path: Path, model: Path) -> Path:
    """A real gate verdict of ``model`` (the push accepts only a verdict about the model it pushes)."""
    import pandas as pd

    from mlci_lib.gate import run_gate
    from tests.helpers.seeded_training import training_data

    frame, label = training_data(0)
    predicted, proba = load_model(model).predict(frame)
    assert proba is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    predictions = path.with_name("predictions.csv")
    pd.DataFrame({"label": label, "prediction": predicted, "score": proba[:, 1]}).to_csv(
        predictions, index=False
    )
    path.write_text(run_gate(predictions, rule=["accuracy min=0"], resamples=0, model=model).to_json())
    return path


@pytest.mark.mlflow
@pytest.mark.slow
def test_two_trainings_pushed_register_one_version(
    mlflow_server: str, runs: dict[str, Path], tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    verdict = _gate_verdict(tmp_path / "verdict.json", runs["first"] / "pipeline")
    commit = git("5eed" * 10)
    first = push_model(
        runs["first"] / "pipeline", "seeded", verdict=verdict, tracking_uri=mlflow_server, git=commit
    )
    again = push_model(
        runs["again"] / "pipeline", "seeded", verdict=verdict, tracking_uri=mlflow_server, git=commit
    )
    assert first.created and not again.created
    assert again.version == first.version and again.push_key == first.push_key
    versions = MlflowClient(tracking_uri=mlflow_server).search_model_versions("name = 'seeded'")
    assert [v.version for v in versions] == [first.version]
    other_verdict = _gate_verdict(tmp_path / "other" / "verdict.json", runs["other-seed"] / "pipeline")
    other = push_model(
        runs["other-seed"] / "pipeline",
        "seeded",
        verdict=other_verdict,
        tracking_uri=mlflow_server,
        git=commit,
    )
    assert other.created and other.version != first.version


@pytest.mark.slow
def test_set_contents_do_not_follow_the_process_string_hash(tmp_path: Path) -> None:
    """skops writes a set in iteration order, which string hashing changes from process to process."""
    script = (
        "import sys, skops.io as sio\n"
        "from sklearn.preprocessing import FunctionTransformer\n"
        "names = {f'feature_{i}' for i in range(40)}\n"
        "sio.dump(FunctionTransformer(kw_args={'names': names}), sys.argv[1])\n"
    )
    digests = set()
    orders = set()
    for seed in ("1", "2", "3"):
        target = tmp_path / f"model-{seed}.skops"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(target)], check=True, env=env, timeout=120)
        with zipfile.ZipFile(target) as archive:
            orders.add(archive.read("schema.json"))
        digests.add(model_digest(target))
    assert len(orders) > 1  # the files really differ in set order
    assert len(digests) == 1
