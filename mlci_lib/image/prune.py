"""What the serving image's install step deletes from its virtualenv, and why.

The wheels a serving image installs carry much that serving never loads: test suites, C headers
and build tools, type stubs, and for onnxruntime a second copy of the runtime (its C API library)
and the Python tooling for optimizing and quantizing models. :func:`prune_patterns` lists what
goes for a runtime, each pattern with its reason; the build context carries the list
(``deps/prune.txt``) and this file (``deps/prune.py``), which the Dockerfile runs with the
virtualenv's Python right after ``pip install``:

    /opt/mlci/venv/bin/python /tmp/mlci-deps/prune.py /tmp/mlci-deps/prune.txt

So this module runs on its own inside the build: the standard library only, no mlci import.
The image's smoke test is what proves the pruned image still serves; a pattern that matches
nothing (another version of a package) removes nothing.

Patterns are globs relative to the virtualenv; ``SITE/`` stands for its site-packages.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import sysconfig

#: Deleted from every serving image: nothing in them runs when a model is served (each image's
#: smoke test proves it for its runtime; ``tests/test_image_prune.py`` loads and serves a
#: scikit-learn pipeline without the modules among them, EVERY_IMAGE_ABSENT_MODULES).
EVERY_IMAGE: tuple[tuple[str, str], ...] = (
    ("SITE/**/tests", "the packages' own test suites"),
    ("SITE/**/*.pyi", "type stubs, read by type checkers only"),
    ("SITE/**/*.pxd", "Cython declarations, for compiling against the package"),
    ("SITE/**/*.pxi", "Cython includes, for compiling against the package"),
    ("SITE/**/*.pyx", "Cython sources of modules that ship compiled"),
    ("SITE/**/*.h", "C headers, for compiling against the package"),
    ("SITE/**/*.hpp", "C++ headers, for compiling against the package"),
    ("SITE/numpy/_core/lib", "numpy's static math library and pkg-config files, for compiling"),
    ("bin/numpy-config", "numpy's build configuration command"),
    ("SITE/numpy/distutils", "numpy's build system for extension modules"),
    ("SITE/numpy/_core/_simd.*", "numpy's SIMD test module"),
    ("SITE/numpy/_core/_*_tests.*", "numpy's compiled test helpers"),
    ("SITE/numpy/_pyinstaller", "hooks for PyInstaller"),
)

#: Deleted from the ONNX runtime's image on top: what onnxruntime's inference API and mlci's
#: serving path never import there (``tests/test_plain_table.py`` serves an ONNX model with all
#: of these blocked, so a change that starts importing one fails before any image is built).
ONNX_IMAGE: tuple[tuple[str, str], ...] = (
    (
        "SITE/onnxruntime/capi/libonnxruntime.so*",
        "onnxruntime's C API library, for C and C++ programs: the Python binding links the "
        "runtime in itself and loads only libc and libstdc++",
    ),
    ("SITE/onnxruntime/transformers", "onnxruntime's optimizer for transformer models"),
    ("SITE/onnxruntime/quantization", "onnxruntime's model quantization tools"),
    ("SITE/onnxruntime/tools", "onnxruntime's model conversion and inspection tools"),
    ("bin/onnxruntime_test", "onnxruntime's self-test command"),
    ("SITE/google/protobuf", "protobuf, which only onnxruntime's tools import"),
    ("SITE/google/_upb", "protobuf's compiled parser"),
    ("SITE/protobuf-*.dist-info", "protobuf's metadata"),
    ("SITE/flatbuffers", "flatbuffers, which only onnxruntime's tools import"),
    ("SITE/flatbuffers-*.dist-info", "flatbuffers' metadata"),
    ("SITE/packaging", "packaging, which only onnxruntime's tools import"),
    ("SITE/packaging-*.dist-info", "packaging's metadata"),
    # numpy loads these on first use; in the scikit-learn image SciPy's ``from numpy import *``
    # is that use (it touches every name in numpy.__all__), here nothing is.
    ("SITE/numpy/f2py", "numpy's Fortran wrapper generator, a build tool"),
    ("bin/f2py", "the command of numpy's Fortran wrapper generator"),
    ("SITE/numpy/random", "numpy.random, loaded by numpy only on first use, which never comes"),
    ("SITE/numpy/fft", "numpy.fft, loaded by numpy only on first use, which never comes"),
    ("SITE/numpy/polynomial", "numpy.polynomial, loaded by numpy only on first use, which never comes"),
    ("SITE/numpy/ma", "numpy.ma, loaded by numpy only on first use, which never comes"),
    ("SITE/numpy/testing", "numpy.testing, for test suites"),
)

#: The modules the patterns for every image remove, for the test that serves without them.
EVERY_IMAGE_ABSENT_MODULES: tuple[str, ...] = (
    "numpy.distutils",
    "numpy._pyinstaller",
    "numpy._core._simd",
    "numpy._core._multiarray_tests",
    "numpy._core._umath_tests",
    "numpy._core._rational_tests",
    "numpy._core._struct_ufunc_tests",
    "numpy._core._operand_flag_tests",
)

#: The modules the ONNX image's patterns remove on top, for the test that serves without them.
ONNX_ABSENT_MODULES: tuple[str, ...] = (
    "onnxruntime.transformers",
    "onnxruntime.quantization",
    "onnxruntime.tools",
    "google.protobuf",
    "google._upb",
    "flatbuffers",
    "packaging",
    "numpy.random",
    "numpy.fft",
    "numpy.polynomial",
    "numpy.ma",
    "numpy.testing",
    "numpy.f2py",
)


def prune_patterns(runtime: str) -> list[str]:
    """The patterns deleted from the image of ``runtime`` ("native" or "onnx")."""
    chosen = EVERY_IMAGE + (ONNX_IMAGE if runtime == "onnx" else ())
    return [pattern for pattern, _why in chosen]


def prune_text(runtime: str) -> str:
    """``deps/prune.txt``: one pattern a line, each after a comment saying why."""
    chosen = EVERY_IMAGE + (ONNX_IMAGE if runtime == "onnx" else ())
    lines = [f"# what the serving image ({runtime} runtime) does not need; see mlci_lib/image/prune.py"]
    for pattern, why in chosen:
        lines += [f"# {why}", pattern]
    return "\n".join(lines) + "\n"


def prune(prefix: str, site: str, patterns: list[str]) -> list[tuple[str, int, int]]:
    """Delete what each pattern matches under the virtualenv ``prefix`` (``SITE/`` is ``site``).

    Returns (pattern, paths removed, bytes removed) per pattern.
    """
    done = []
    for pattern in patterns:
        if pattern.startswith("SITE/"):
            path_glob = os.path.join(site, pattern[len("SITE/") :])
        else:
            path_glob = os.path.join(prefix, pattern)
        count = size = 0
        # Deepest first, so that a match inside another match is counted before its parent goes.
        for path in sorted(glob.glob(path_glob, recursive=True), key=len, reverse=True):
            if not os.path.lexists(path):
                continue
            size += _size(path)
            count += 1
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        done.append((pattern, count, size))
    return done


def _size(path: str) -> int:
    if not os.path.isdir(path) or os.path.islink(path):
        return os.lstat(path).st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.lstat(os.path.join(root, name)).st_size for name in files)
    return total


def main(argv: list[str]) -> int:
    """``prune.py LIST``: delete the patterns in LIST from this interpreter's virtualenv."""
    if len(argv) != 1:
        print("usage: prune.py PATTERN-FILE", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as handle:
        patterns = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    done = prune(sys.prefix, sysconfig.get_path("purelib"), patterns)
    # The build log shows what went: one line, the build stays quiet otherwise.
    total = sum(size for _pattern, _count, size in done)
    print(f"mlci prune: {sum(count for _p, count, _s in done)} paths, {total / 1e6:.1f} MB removed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
