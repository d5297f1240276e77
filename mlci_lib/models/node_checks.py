"""Bounds checks on the node arrays of XGBoost and LightGBM trees, before any prediction.

Neither framework checks a loaded tree's indices: an XGBoost JSON file or a LightGBM text file
whose split refers to a feature beyond the model's inputs makes prediction read outside the row
(it crashes the process), and a child index out of range or pointing back up the tree reads
outside the node array or never stops. The formats hold plain index arrays, so they are checked
here, in one vectorised pass per tree:

- every child of a split lies inside the tree and is not the root;
- no node is the child of two splits.

Together these make what prediction walks from the root a tree: it cannot reach a node twice, so
every walk ends at a leaf after at most as many steps as there are nodes.
"""

from __future__ import annotations

from collections.abc import Sequence


class NodeArrayError(ValueError):
    """A tree's node arrays would make prediction read outside them or loop."""


def check_tree_nodes(
    left: Sequence[int],
    right: Sequence[int],
    features: Sequence[int],
    internal: Sequence[bool],
    n_features: int,
    what: str,
) -> None:
    """Check one tree given as node arrays (one entry per node; ``internal`` marks the splits)."""
    import numpy as np

    count = len(internal)
    if not (len(left) == len(right) == len(features) == count):
        raise NodeArrayError(f"{what}: its node arrays do not all have {count} entries")
    if count == 0:
        raise NodeArrayError(f"{what}: it has no nodes")
    split = np.asarray(internal, dtype=bool)
    lefts = np.asarray(left, dtype=np.int64)[split]
    rights = np.asarray(right, dtype=np.int64)[split]
    nodes = np.flatnonzero(split)
    for side, child in (("left", lefts), ("right", rights)):
        bad = (child < 1) | (child >= count)
        if bad.any():
            at = int(np.argmax(bad))
            raise NodeArrayError(
                f"{what}: node {int(nodes[at])} has {side} child {int(child[at])}, "
                f"outside nodes 1..{count - 1}"
            )
    children = np.concatenate([lefts, rights])
    if len(np.unique(children)) != len(children):
        values, counts = np.unique(children, return_counts=True)
        twice = int(values[counts > 1][0])
        raise NodeArrayError(f"{what}: node {twice} is the child of more than one split")
    used = np.asarray(features, dtype=np.int64)[split]
    bad = (used < 0) | (used >= n_features)
    if bad.any():
        at = int(np.argmax(bad))
        raise NodeArrayError(
            f"{what}: node {int(nodes[at])} splits on feature {int(used[at])}, but the model has "
            f"{n_features} input features"
        )


def int_list(values: object, what: str) -> list[int]:
    """A JSON or text array as whole numbers, refusing anything else."""
    if not isinstance(values, list):
        raise NodeArrayError(f"{what} is not a list")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise NodeArrayError(f"{what} holds {value!r}, not a whole number")
        out.append(value)
    return out
