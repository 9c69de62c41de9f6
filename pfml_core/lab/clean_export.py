"""The cleaned dataset, written in the user's own format: a .npz (every per-row array kept,
y relabelled), a .csv (every column kept, the label column relabelled) or a .zip of class
folders (each kept image under its (new) class folder). A bundled set is written as a .npz
of flattened features. Rows dropped by the cleaning are left out."""
from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from pfml_core.data.dataset import Dataset


def suffix(source: str) -> str:
    """The cleaned file's suffix for a data reference: its own, or .npz (bundled, folder)."""
    s = Path(str(source)).suffix.lower()
    return s if s in (".npz", ".csv") else ".zip" if s == ".zip" or Path(source).is_dir() else ".npz"


def _values(names: list[str], y: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """Class ids -> the file's own label values (user files name classes by str(value))."""
    out = np.array([int(names[i]) if names[i].lstrip("-").isdigit() else names[i] for i in y])
    return out.astype(like.dtype) if like is not None and out.dtype.kind in "iu" else out


def export(source: str, ds: Dataset, y: np.ndarray, keep: np.ndarray, out) -> Path:
    """Write ds (loaded from `source`) with labels y and only the rows in keep (both by
    source row) to out, in source's format (see the module docstring)."""
    out, src = Path(out), Path(str(source))
    kind = suffix(source)
    if out.suffix.lower() != kind:
        raise ValueError(f"the cleaned data of {src.name} is a {kind} file; name it so, "
                         f"got {out.name!r}")
    if kind == ".zip":
        _zip(src, ds, y, keep, out)
    elif kind == ".csv":
        _csv(src, ds, y, keep, out)
    elif src.suffix.lower() == ".npz":
        with np.load(src, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        n = len(ds.y)
        arrays = {k: a[keep] if a.ndim and len(a) == n else a for k, a in arrays.items()}
        arrays["y"] = _values(ds.class_names, y[keep], arrays["y"])
        np.savez(out, **arrays)
    else:  # a bundled set: features, which the app and CLI open as such
        np.savez(out, X=ds.X[keep].reshape(int(keep.sum()), -1), y=_values(ds.class_names, y[keep]))
    return out


def _csv(src: Path, ds: Dataset, y, keep, out: Path) -> None:
    import pandas as pd

    from pfml_core.data.user_files import LABEL_COLUMNS

    df = pd.read_csv(src)
    col = next(c for c in df.columns if str(c).strip().lower() in LABEL_COLUMNS)
    df[col] = _values(ds.class_names, y, df[col].to_numpy())
    df.iloc[np.flatnonzero(keep)].to_csv(out, index=False)


def _zip(src: Path, ds: Dataset, y, keep, out: Path) -> None:
    """Each kept image under its class folder: the last folder of its path is replaced by
    the class it now has (a name taken twice gets the row number added)."""
    taken = set()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        zin = zipfile.ZipFile(src) if src.is_file() else None
        try:
            for row in np.flatnonzero(keep):
                path = PurePosixPath(ds.sources[row])
                target = path.parent.parent / ds.class_names[y[row]] / path.name
                if str(target) in taken:
                    target = target.with_name(f"{path.stem}_row{row}{path.suffix}")
                taken.add(str(target))
                raw = zin.read(ds.sources[row]) if zin else (src / path).read_bytes()
                dst.writestr(str(target), raw)
        finally:
            if zin is not None:
                zin.close()
