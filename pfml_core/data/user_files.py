"""User data: an image folder (one sub-folder per class, or a .zip of one) and a features
file (.npz with X and y, never unpickled; .csv with a label column). Bad input raises
ValueError naming the file and the problem, so the app and CLI show it without a traceback."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from pfml_core.data.dataset import Dataset

MAX_BYTES = 200 * 2**20  # uploads and files larger than this are refused
IMAGE_SIZE = 64  # side of the square images fed to the CNN / ResNet
LABEL_COLUMNS = ("label", "y", "class", "target")


def check_size(path: Path, max_bytes: int = MAX_BYTES) -> None:
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path.name} is {size / 2**20:.1f} MiB, over the "
                         f"{max_bytes / 2**20:.0f} MiB limit")


def load_path(path: Path, image_size: int = IMAGE_SIZE, max_bytes: int = MAX_BYTES) -> Dataset:
    """Dispatch on what the path is: folder, .zip, .npz or .csv."""
    from pfml_core.data import images

    if path.is_dir():
        return images.load_image_folder(path, image_size)
    check_size(path, max_bytes)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return images.load_image_zip(path, image_size)
    if suffix in (".npz", ".csv"):
        X, y = _read_npz(path) if suffix == ".npz" else _read_csv(path)
        return features_dataset(X, y, path.name)
    raise ValueError(f"{path.name}: unsupported file type {suffix!r}; give an image folder, "
                     "a .zip of one, a .npz (X, y) or a .csv with a label column")


def _read_npz(path: Path):
    try:
        with np.load(path, allow_pickle=False) as f:  # never unpickle user files
            missing = {"X", "y"} - set(f.files)
            if missing:
                raise ValueError(f"{path.name} must contain arrays 'X' and 'y'; missing "
                                 f"{sorted(missing)} (found {sorted(f.files)})")
            return f["X"], f["y"]
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise ValueError(f"{path.name} holds Python objects (ragged rows or pickled "
                             "data); X must be a numeric (n, F) array") from None
        raise
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path.name} is not a readable .npz file ({e})") from None


def _read_csv(path: Path):
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{path.name} is not a well-formed CSV (ragged rows or bad "
                         f"encoding?): {str(e).strip()[:200]}") from None
    col = next((c for c in df.columns if str(c).strip().lower() in LABEL_COLUMNS), None)
    if col is None:
        raise ValueError(f"{path.name} needs a label column named one of {list(LABEL_COLUMNS)}; "
                         f"found columns {[str(c) for c in df.columns][:10]}")
    feats = df.drop(columns=[col])
    bad = [str(c) for c in feats.columns if not pd.api.types.is_numeric_dtype(feats[c])]
    if bad:
        raise ValueError(f"{path.name}: feature columns must be numeric; non-numeric: {bad[:5]}")
    return feats.to_numpy(dtype=np.float64), df[col].to_numpy()


def _labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise ValueError(f"{name}: labels must be integer class ids, got non-numeric values "
                         f"such as {y.ravel()[:3].tolist()}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise ValueError(f"{name}: labels must be integer class ids, got non-integer "
                             "or missing values")
    return y.astype(np.int64)


def features_dataset(X, y, name: str = "features") -> Dataset:
    """Validate a features matrix and labels; labels are renumbered 0..k-1 (sorted)."""
    X = np.asarray(X)
    if X.dtype == object or not np.issubdtype(X.dtype, np.number) or X.ndim != 2:
        raise ValueError(f"{name}: X must be a numeric (n, F) array, got dtype {X.dtype}, "
                         f"shape {X.shape}")
    y = _labels(y, name)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"{name}: y must have one label per row of X ({len(X)}), "
                         f"got shape {y.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name}: X contains NaN or infinite values "
                         f"({int((~np.isfinite(X)).sum())} entries); clean them first")
    classes, y = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"{name}: needs at least 2 classes, found {len(classes)}")
    return Dataset(X.astype(np.float32), y.astype(np.int64), [str(c) for c in classes],
                   "features", name)


def store_upload(name: str, raw: bytes, folder: Path, max_bytes: int = MAX_BYTES) -> Path:
    """Save uploaded bytes under a content-hash name (so reruns reuse it) and return the path."""
    import hashlib

    suffix = Path(name).suffix.lower()
    if suffix not in (".npz", ".csv", ".zip"):
        raise ValueError(f"{name}: upload a .npz, a .csv or a .zip of an image folder")
    if len(raw) > max_bytes:
        raise ValueError(f"{name} is {len(raw) / 2**20:.1f} MiB, over the "
                         f"{max_bytes / 2**20:.0f} MiB limit")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha1(raw).hexdigest()[:16]}{suffix}"
    if not path.exists():
        path.write_bytes(raw)
    return path
