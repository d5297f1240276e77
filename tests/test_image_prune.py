"""What the serving image's install step prunes: each entry with its reason, and a scikit-learn
model still loading and serving without the modules the list for every image removes (the ONNX
image's own list is covered by tests/test_plain_table.py; each image's smoke test covers the rest)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlci_lib.image.prune import EVERY_IMAGE_ABSENT_MODULES, prune, prune_patterns, prune_text
from mlci_lib.models import save_model

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_the_lists_say_why_and_the_onnx_one_extends_the_common_one() -> None:
    native, onnx = prune_patterns("native"), prune_patterns("onnx")
    assert native == onnx[: len(native)] and len(onnx) > len(native)
    assert "SITE/onnxruntime/capi/libonnxruntime.so*" in onnx and "SITE/numpy/random" not in native
    # SciPy's `from numpy import *` loads numpy.f2py: only the ONNX image may lose it.
    assert "SITE/numpy/f2py" in onnx and "SITE/numpy/f2py" not in native
    text = prune_text("onnx").splitlines()
    patterns = [line for line in text if not line.startswith("#")]
    assert patterns == onnx
    assert all(text[text.index(p) - 1].startswith("# ") for p in patterns)


def test_prune_deletes_the_matches_and_counts_them(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "site-packages"
    for name in ("pkg/tests/test_a.py", "pkg/sub/tests/test_b.py", "pkg/mod.py", "pkg/mod.pyi"):
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text("x = 1\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "f2py").write_text("#!/bin/sh\n")
    done = prune(str(tmp_path), str(site), ["SITE/**/tests", "SITE/**/*.pyi", "bin/f2py", "SITE/absent"])
    assert [(p, n) for p, n, _ in done] == [
        ("SITE/**/tests", 2),
        ("SITE/**/*.pyi", 1),
        ("bin/f2py", 1),
        ("SITE/absent", 0),
    ]
    assert sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()) == ["pkg/mod.py"]


def test_a_scikit_learn_pipeline_serves_without_what_every_image_prunes(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.random(80), "b": rng.choice(["x", "y"], 80).astype(object)})
    pipeline = make_pipeline(
        ColumnTransformer(
            [("n", StandardScaler(), ["a"]), ("c", OneHotEncoder(handle_unknown="ignore"), ["b"])]
        ),
        RandomForestClassifier(n_estimators=5, random_state=0),
    ).fit(frame, frame.a > 0.5)
    model = save_model(pipeline, tmp_path / "model", sample_input=frame.head())
    rows = json.loads(frame.head(5).to_json(orient="records"))
    script = textwrap.dedent(
        f"""
        import json, sys, urllib.request
        for name in {list(EVERY_IMAGE_ABSENT_MODULES)!r}:
            sys.modules[name] = None  # an import of it raises ImportError
        from mlci_lib.serving import ModelServer

        with ModelServer({str(model)!r}) as server:
            server.wait_ready()
            request = urllib.request.Request(
                server.url + "/predict", json.dumps({{"rows": {rows!r}}}).encode()
            )
            with urllib.request.urlopen(request) as answer:
                print(json.dumps(json.loads(answer.read())["predictions"]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == pipeline.predict(frame.head(5)).tolist()
