"""Image folders (one sub-folder per class) read from disk or straight from a .zip (never
extracted, so no path tricks), decoded with PIL, resized to a square and stacked in [0, 1]."""
from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from pfml_core.data.dataset import Dataset

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MAX_IMAGES = 20_000  # keeps an upload from exhausting memory


def decode(raw: bytes | Path, size: int, name: str) -> np.ndarray:
    """One image -> float32 (3, size, size): shorter side resized to size, centre crop."""
    try:
        with Image.open(io.BytesIO(raw) if isinstance(raw, bytes) else raw) as im:
            im = im.convert("RGB")
            scale = size / min(im.size)
            w, h = max(size, round(im.width * scale)), max(size, round(im.height * scale))
            im = im.resize((w, h), Image.BILINEAR)
            left, top = (w - size) // 2, (h - size) // 2
            im = im.crop((left, top, left + size, top + size))
            arr = np.asarray(im, dtype=np.float32) / 255.0  # (H, W, 3)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot read image {name!r}: the file is corrupt or not an "
                         f"image ({type(e).__name__})") from None
    return arr.transpose(2, 0, 1)


def _stack(groups: dict[str, list], read, size: int, source: str) -> Dataset:
    """groups: class name -> list of entries; read(entry) -> bytes or Path."""
    if not groups:
        raise ValueError(f"{source}: no class sub-folders with images found; expected "
                         "one sub-folder per class (e.g. cats/001.png, dogs/002.jpg)")
    empty = [c for c, items in groups.items() if not items]
    if empty:
        raise ValueError(f"{source}: class folder(s) {empty[:5]} contain no images "
                         f"(allowed types: {sorted(IMAGE_EXTS)})")
    if len(groups) < 2:
        raise ValueError(f"{source}: needs at least 2 class folders, found {len(groups)}")
    total = sum(len(v) for v in groups.values())
    if total > MAX_IMAGES:
        raise ValueError(f"{source}: {total} images, over the limit of {MAX_IMAGES}")
    names = sorted(groups)
    X, y = [], []
    for c, cls in enumerate(names):
        for entry in sorted(groups[cls], key=str):
            X.append(decode(read(entry), size, str(entry)))
            y.append(c)
    return Dataset(np.stack(X), np.array(y, dtype=np.int64), names, "image", source)


def load_image_folder(root: Path, size: int = 64) -> Dataset:
    groups = {d.name: [f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTS and f.is_file()]
              for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    return _stack(groups, lambda f: f, size, root.name)


def load_image_zip(path: Path, size: int = 64) -> Dataset:
    """A zip of an image folder; a single top-level folder is stepped into."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{path.name} is not a readable .zip file ({e})") from None
    with zf:
        entries = [(n, PurePosixPath(n).parts, n.endswith("/")) for n in zf.namelist()
                   if "__MACOSX" not in n and not PurePosixPath(n).name.startswith(".")]
        tops = {p[0] for _, p, _ in entries}
        depth = int(len(tops) == 1 and any(len(p) >= 3 for _, p, _ in entries))
        groups: dict[str, list] = defaultdict(list)
        for n, p, is_dir in entries:
            p = p[depth:]
            if len(p) == 1 and is_dir or len(p) == 2:
                groups.setdefault(p[0], [])
            if len(p) == 2 and not is_dir and PurePosixPath(n).suffix.lower() in IMAGE_EXTS:
                groups[p[0]].append(n)
        return _stack(dict(groups), zf.read, size, path.name)
