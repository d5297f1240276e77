"""The dependency layer of the ONNX runtime's serving image against the scikit-learn runtime's.

Both images come from the same template, so each has one layer holding the installed
dependencies (the ``COPY --from=deps /opt/mlci/venv``). Its size is read from the image history
(``docker history``: the bytes the layer adds), the same way for both; the target is a ratio of at
most one third. ``--contents`` also lists what is in each layer (apparent sizes from ``du`` in a
container of the image), largest first.

    .venv/bin/python bench/image_size.py ONNX_IMAGE NATIVE_IMAGE [--contents]
    .venv/bin/python bench/image_size.py --build --base-image python:3.11-slim [--contents]

``--build`` builds both images of one small model (a ColumnTransformer with a logistic regression,
what converts to ONNX) with ``mlci image build``'s library function, tagged
``mlci-bench/image-size:onnx`` and ``:native``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _docker() -> str:
    return shutil.which("docker") or "docker"


def dependency_layer_bytes(reference: str) -> int:
    """Bytes of the layer that copies the virtualenv into the final image (0 when there is none)."""
    history = subprocess.run(
        [_docker(), "history", "--no-trunc", "--human=false", "--format", "{{json .}}", reference],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for line in history:
        entry = json.loads(line)
        created_by = entry.get("CreatedBy", "")
        if "COPY" in created_by.upper() and "in /opt/mlci/venv" in created_by:
            return int(entry.get("Size") or 0)
    return 0


def layer_contents(reference: str, top: int = 12) -> list[tuple[int, str]]:
    """The largest entries of the image's site-packages and venv/bin, in bytes (``du -sb``)."""
    script = "cd /opt/mlci/venv/lib/python3*/site-packages && du -sb * ../../../bin | sort -rn"
    done = subprocess.run(
        [_docker(), "run", "--rm", "--network", "none", "--entrypoint", "sh", reference, "-c", script],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stdout.splitlines()[:top]:
        size, name = line.split("\t", 1)
        rows.append((int(size), name.replace("../../../", "venv/")))
    return rows


def build_both(base_image: str, python_version: str) -> tuple[str, str]:
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlci_lib.image import build_image
    from mlci_lib.models import save_model

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, 300),
            "charges": rng.normal(70, 20, 300).round(2),
            "plan": rng.choice(["free", "pro", "team"], 300).astype(object),
        }
    )
    target = (frame.tenure < 20).astype(int)
    prepare = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["tenure", "charges"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    pipeline = make_pipeline(prepare, LogisticRegression(max_iter=500)).fit(frame, target)
    with tempfile.TemporaryDirectory(prefix="mlci-bench-") as scratch:
        folder = Path(scratch)
        model = save_model(pipeline, folder / "model", sample_input=frame.head(), name="image-size")
        sample = folder / "sample.csv"
        frame.head(50).to_csv(sample, index=False)
        common = {
            "repository": "mlci-bench/image-size",
            "base_image": base_image,
            "python_version": python_version,
            "sample_data": sample,
        }
        onnx = build_image(model, tags=["onnx"], runtime="onnx", **common)
        native = build_image(model, tags=["native"], **common)
    return onnx.references[0], native.references[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="the ONNX image, then the native one")
    parser.add_argument("--build", action="store_true", help="build both images first")
    parser.add_argument("--base-image", default="python:3.11-slim", help="base image for --build")
    parser.add_argument("--python-version", default="3.11", help="the base image's Python, for --build")
    parser.add_argument("--contents", action="store_true", help="also list what is in each layer")
    args = parser.parse_args()
    if args.build:
        onnx, native = build_both(args.base_image, args.python_version)
    elif len(args.images) == 2:
        onnx, native = args.images
    else:
        parser.error("give the ONNX image and the native image, or --build")
    sizes = {"onnx": dependency_layer_bytes(onnx), "native": dependency_layer_bytes(native)}
    for kind, reference in (("onnx", onnx), ("native", native)):
        print(f"{kind:>6} runtime {reference}: dependency layer {sizes[kind] / 1e6:.1f} MB")
        if args.contents:
            for size, name in layer_contents(reference):
                print(f"         {size / 1e6:7.1f} MB  {name}")
    ratio = sizes["onnx"] / sizes["native"] if sizes["native"] else float("nan")
    print(f"ratio onnx/native: {ratio:.1%} (target at most 33.3%: {'met' if ratio <= 1 / 3 else 'missed'})")


if __name__ == "__main__":
    main()
