"""Loading scikit-learn models from skops files, with mlci's allow-list of types.

The types a skops file may instantiate come from mlci's own allow-list plus what the user
configured, never from the file itself; every tree inside is bounds-checked before anything can
predict with it (:mod:`mlci_lib.tree_checks`).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from mlci_lib.errors import ModelLoadError, UnsafeModelError

#: Types mlci trusts in skops files beyond skops' own defaults (scikit-learn estimators, numpy,
#: builtins). Each is a plain data holder inside a scikit-learn estimator, with no code of its own.
#: The two tree storages hold raw node indices that prediction follows unchecked; every model that
#: contains them is bounds-checked on load (mlci_lib.tree_checks), which is what makes them safe.
DEFAULT_TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.loss.AbsoluteError",
    "sklearn._loss.loss.HalfPoissonLoss",
    "sklearn.utils._bunch.Bunch",
    "collections.OrderedDict",
    "builtins.slice",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.int64",
    "numpy.random.mtrand.RandomState",
)


def load_skops(file: Path, allowed: set[str]) -> Any:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=file)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, EOFError, ValueError) as exc:
        raise ModelLoadError(
            f"model {file} is truncated or not a valid skops file ({exc})", hint="save the model again"
        ) from None
    refused = sorted(t for t in untrusted if t not in allowed)
    if refused:
        raise UnsafeModelError(
            f"model {file} needs types outside the allowed list: {', '.join(refused)}",
            hint="if you trust them, add them to model.trusted-types in mlci.yaml or pass --trust-type",
        )
    try:
        estimator = sio.load(file, trusted=list(untrusted))
    except Exception as exc:  # skops raises many types for damaged content; report them as one
        raise ModelLoadError(
            f"model {file} could not be loaded: {type(exc).__name__}: {exc}",
            hint="save the model again with the installed scikit-learn",
        ) from None
    from mlci_lib.tree_checks import TreeStructureError, check_tree_structures

    try:
        check_tree_structures(estimator)
    except TreeStructureError as exc:
        raise UnsafeModelError(
            f"model {file} was refused: {exc}",
            hint="the file was damaged or crafted; save the model again from its training code",
        ) from None
    return estimator
