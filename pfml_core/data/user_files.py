"""User data: an image folder (one sub-folder per class, or a .zip of one) and a features
file (.npz with X and y, never unpickled; .csv with a label column). Bad input raises
ValueError naming the file (by its base name) and the problem, so the app and CLI show it
without a traceback; messages never quote what is inside a file. Sizes are checked against
pfml_core.data.limits before anything is decompressed or parsed."""
from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import numpy as np

from pfml_core.data import limits
from pfml_core.data.dataset import Dataset

MAX_BYTES = 200 * 2**20  # uploads and files larger than this are refused (compressed size)
IMAGE_SIZE = 64  # side of the square images fed to the CNN / ResNet
LABEL_COLUMNS = ("label", "y", "class", "target")
CSV_CHUNK_CELLS = 1 << 18  # cells parsed at a time (see _read_csv): ~15 MB as strings
NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


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


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str):
    """(shape, dtype, header bytes) of one .npy member, read from its header alone."""
    try:
        with zf.open(info) as f:
            reader = NPY_HEADERS.get(np.lib.format.read_magic(f))
            if reader is None:
                raise ValueError("unsupported .npy version")
            shape, _, dtype = reader(f)
            return shape, dtype, f.tell()
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise ValueError(f"{name}: array {info.filename!r} is not a readable .npy array") from None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with zf.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _read_npz(path: Path):
    """X and y of an .npz, each checked from its .npy header (shape, dtype, size) before a
    byte of it is decompressed; never unpickled."""
    with open(path, "rb") as fp:
        if fp.read(6) == b"\x93NUMPY":
            raise ValueError(f"{path.name} is a single .npy array renamed .npz; save X and y "
                             "together with numpy.savez(path, X=X, y=y)")
    with limits.open_zip(path) as zf:
        members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
        missing = {"X", "y"} - set(members)
        if missing:
            raise ValueError(f"{path.name} must contain arrays 'X' and 'y'; missing "
                             f"{sorted(missing)} ({len(members)} arrays found)")
        total = 0
        for key in ("X", "y"):
            shape, dtype, header = _npy_header(zf, members[key], path.name)
            if dtype.hasobject:
                raise ValueError(f"{path.name} holds Python objects (ragged rows or pickled "
                                 "data); X must be a numeric (n, F) array")
            nbytes = math.prod(shape) * dtype.itemsize
            limits.check_bytes(nbytes, path.name, f"array {key!r} of shape {tuple(shape)}")
            total += nbytes
            limits.check_bytes(total, path.name, "arrays 'X' and 'y' together")
            if members[key].file_size < header + nbytes:
                raise ValueError(f"{path.name}: array {key!r} claims shape {tuple(shape)} but "
                                 "holds fewer bytes (truncated or forged header)")
        try:
            return tuple(_read_member(zf, members[k]) for k in ("X", "y"))
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{path.name} is not a readable .npz file "
                             f"({type(e).__name__})") from None


def _csv_shape(path: Path) -> tuple[int, int]:
    """(columns of the header line, lines), counted without parsing; the header is refused
    as soon as it passes MAX_CSV_COLUMNS, before the rest of it is read."""
    cap = int(limits.limit("MAX_CSV_COLUMNS"))
    cols, lines, header, last = 1, 0, True, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            if header:
                end = chunk.find(b"\n")
                cols += chunk.count(b",", 0, len(chunk) if end < 0 else end)
                if cols > cap:
                    raise limits.LimitError(f"{path.name}: its header has more than {cap:,} "
                                            "columns, over the limit (PFML_MAX_CSV_COLUMNS)")
                header = end < 0
            lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    return cols, lines + (last != b"\n")


def _label_column(columns, name: str) -> int:
    low = [str(c).strip().lower() for c in columns]
    col = next((i for i, c in enumerate(low) if c in LABEL_COLUMNS), None)
    if col is None:  # the header itself is never echoed (a headerless file's first row)
        raise ValueError(f"{name} needs a header row with a label column named one of "
                         f"{list(LABEL_COLUMNS)}; none of its {len(low)} columns is")
    return col


def _read_csv(path: Path):
    """X float64 (n, F) and labels of a CSV, parsed CSV_CHUNK_CELLS at a time into one
    array sized from the line count: a column of strings is refused in the chunk where it
    appears, so the text of a whole file is never held as Python strings."""
    import pandas as pd

    cols, lines = _csv_shape(path)
    # pandas pads short rows, so every line costs the header's width
    limits.check_bytes(8 * cols * max(lines, 1), path.name, "the parsed table")
    X, ys, n = None, [], 0
    try:
        with pd.read_csv(path, chunksize=max(1, CSV_CHUNK_CELLS // cols)) as reader:
            for df in reader:
                if X is None:
                    label = _label_column(df.columns, path.name)
                    feats = [i for i in range(df.shape[1]) if i != label]
                    X = np.empty((lines, len(feats)))
                bad = [k + 1 for k, i in enumerate(feats)
                       if not pd.api.types.is_numeric_dtype(df.dtypes.iloc[i])]
                if bad:
                    raise ValueError(f"{path.name}: feature columns must be numeric; {len(bad)}"
                                     f" are not (feature column number "
                                     f"{', '.join(map(str, bad[:5]))})")
                ys.append(_labels(df.iloc[:, label].to_numpy(), path.name))
                X[n:n + len(df)] = df.iloc[:, feats].to_numpy(dtype=np.float64)
                n += len(df)
    except pd.errors.ParserError as e:
        line = re.search(r"line \d+", str(e))
        raise ValueError(f"{path.name} is not a well-formed CSV: ragged rows"
                         f"{' at ' + line.group() if line else ''}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not a well-formed CSV: not UTF-8 text") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path.name} is not a well-formed CSV: it is empty") from None
    return X[:n], np.concatenate(ys)


def _labels(y, name: str) -> np.ndarray:
    y = np.asarray(y)
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise ValueError(f"{name}: labels must be integer class ids, got non-numeric values "
                         f"(dtype {y.dtype.name})")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise ValueError(f"{name}: labels must be integer class ids, got non-integer "
                             "or missing values")
    return y.astype(np.int64)


def features_dataset(X, y, name: str = "features") -> Dataset:
    """Validate a features matrix and labels; labels are renumbered 0..k-1 (sorted). X is
    checked after its conversion to float32, the dtype training sees."""
    X = np.asarray(X)
    if X.dtype == object or not np.issubdtype(X.dtype, np.number) or X.ndim != 2 \
            or np.iscomplexobj(X):
        raise ValueError(f"{name}: X must be a real numeric (n, F) array, got dtype {X.dtype}, "
                         f"shape {X.shape}")
    y = _labels(y, name)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"{name}: y must have one label per row of X ({len(X)}), "
                         f"got shape {y.shape}")
    bad = int((~np.isfinite(X)).sum())
    if bad:
        raise ValueError(f"{name}: X contains NaN or infinite values ({bad} entries); "
                         "clean them first")
    with np.errstate(over="ignore"):  # overflow is what the next line looks for
        X32 = X.astype(np.float32)
    bad = int((~np.isfinite(X32)).sum())
    if bad:
        raise ValueError(f"{name}: X has {bad} value(s) beyond float32's range "
                         f"(|x| > {np.finfo(np.float32).max:.2e}), which would become "
                         "infinite; rescale X first")
    classes, y = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"{name}: needs at least 2 classes, found {len(classes)}")
    return Dataset(X32, y.astype(np.int64), [str(c) for c in classes], "features", name)
