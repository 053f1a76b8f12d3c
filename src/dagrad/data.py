"""Small data sets for the examples and the demo, and a reproducible train/test split.

The digits come with scikit-learn (``pip install 'dagrad[demo]'``): 1,797
8x8 images of handwritten digits, stored in the package, so nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import DagradError

__all__ = ["split", "digits"]


def split(*arrays: Any, test_fraction: float = 0.25, seed: int = 0, stratify: Any = None) -> list[np.ndarray]:
    """Shuffle and split arrays into ``[a_train, a_test, b_train, b_test, ...]`` (as scikit-learn's order).

    With ``stratify`` (class labels), every class keeps its share in both parts.

    >>> import numpy as np
    >>> X, y = np.arange(20).reshape(10, 2), np.array([0, 1] * 5)
    >>> X_tr, X_te, y_tr, y_te = split(X, y, test_fraction=0.4, stratify=y)
    >>> len(X_tr), len(X_te), sorted(y_te.tolist())
    (6, 4, [0, 0, 1, 1])
    """
    if not arrays:
        raise DagradError("split needs at least one array")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise DagradError(f"split: arrays have different lengths {[len(a) for a in arrays]}")
    if not 0.0 < test_fraction < 1.0:
        raise DagradError(f"split: test_fraction must be in (0, 1), not {test_fraction}")
    rng = np.random.default_rng(seed)
    if stratify is None:
        groups = [np.arange(n)]
    else:
        labels = np.asarray(stratify)
        groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    test = []
    for group in groups:
        group = rng.permutation(group)
        test.extend(group[: int(round(len(group) * test_fraction))])
    is_test = np.zeros(n, bool)
    is_test[test] = True
    train_idx, test_idx = rng.permutation(np.flatnonzero(~is_test)), rng.permutation(np.flatnonzero(is_test))
    out = []
    for a in arrays:
        a = np.asarray(a)
        out += [a[train_idx], a[test_idx]]
    return out


def digits(test_fraction: float = 0.25, seed: int = 0) -> dict[str, np.ndarray]:
    """The digits, scaled to [0, 1] as float32, split stratified: keys ``X_train, y_train, X_test, y_test``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DagradError(
            "the digits data set comes with scikit-learn; install it with pip install 'dagrad[demo]'"
        ) from exc
    bunch = load_digits()
    X = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    X_train, X_test, y_train, y_test = split(X, y, test_fraction=test_fraction, seed=seed, stratify=y)
    return {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}
