"""Image folders (one sub-folder per class) read from disk or straight from a .zip (never
extracted, so no path tricks), decoded with PIL, brought to a square by the evaluation
transform (torchvision Resize + CenterCrop) and stacked in [0, 1]; 16-bit, 32-bit and float
pixels are scaled by their own range (`pixels`). Sizes are checked before reading
(pfml_core.data.limits): each file from the zip directory or the file system, each image's
pixels from its header, the decoded set from its count."""
from __future__ import annotations

import io
import warnings
from collections import defaultdict
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from pfml_core.data import limits
from pfml_core.data.dataset import Dataset
from pfml_core.data.transforms import eval_transform

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}  # every image reader
MAX_IMAGES = 20_000  # keeps an upload from exhausting memory
WIDE_MAX = 65535.0  # full scale of 16-bit pixels, and of the 32-bit ones PIL reads them into


class PixelError(ValueError):
    """A readable image whose pixel format cannot be brought to [0, 1]."""


def pixels(im: Image.Image, name: str):
    """An opened image as the transform takes it: 8-bit modes as PIL (made RGB by the
    transform), wider ones as a float (3, H, W) tensor in [0, 1]; PIL's own RGB conversion
    would clip 16-bit values at 255, leaving a gradient two shades."""
    if not (im.mode.startswith("I") or im.mode == "F"):
        try:
            return im.convert("RGB")
        except ValueError:
            raise PixelError(f"cannot read image {name!r}: pixel format {im.mode!r} is not "
                             "supported; save it as 8-bit RGB or grayscale") from None
    a = np.array(im, dtype=np.float32)  # a writable copy: torch shares it
    low, high = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if im.mode == "F":  # floats carry no full scale of their own: only [0, 1] is unambiguous
        if not (np.isfinite(low) and np.isfinite(high) and 0 <= low and high <= 1):
            raise PixelError(f"cannot read image {name!r}: its floating-point pixels are "
                             "not all in [0, 1]; save it as 8- or 16-bit")
    elif low < 0 or high > WIDE_MAX:
        raise PixelError(f"cannot read image {name!r}: its integer pixels are outside "
                         "0..65535; save it as 8- or 16-bit")
    else:
        a /= WIDE_MAX
    return torch.from_numpy(a)[None].expand(3, -1, -1).contiguous()


def decode(raw: bytes | Path, square, name: str,
           budget: limits.PixelBudget | None = None) -> np.ndarray:
    """One image -> float32 (3, size, size) through square = eval_transform(size, size):
    shorter side resized to size, centre crop. Unreadable or oversized -> ValueError; the
    size is read from the header and charged to `budget` before any pixel is decoded."""
    try:
        with warnings.catch_warnings():  # PIL's own bomb warning: the check below is stricter
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(raw) if isinstance(raw, bytes) else raw)
        with im:
            (budget or limits.PixelBudget(name)).take(im.size, name)
            return square(pixels(im, name)).numpy()
    except (limits.LimitError, PixelError):
        raise
    except Image.DecompressionBombError:  # PIL refuses past twice its own limit, at open
        where = f"{budget.source}: " if budget else ""
        raise limits.LimitError(f"{where}image {name!r} is over the "
                                f"{limits.limit('MAX_IMAGE_MEGAPIXELS'):g}-megapixel limit "
                                "(PFML_MAX_IMAGE_MEGAPIXELS)") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"cannot read image {name!r}: the file is corrupt or not an "
                         f"image ({type(e).__name__})") from None


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
    limits.check_bytes(total * 3 * size * size * 4, source, f"{total} decoded images")
    names = sorted(groups)
    square, budget = eval_transform(size, size, normalize=False), limits.PixelBudget(source)
    X, y = np.empty((total, 3, size, size), np.float32), []  # filled in place: no 2nd copy
    paths = []  # a zip member's own name; class/file in a folder
    for c, cls in enumerate(names):
        for entry in sorted(groups[cls], key=str):
            X[len(y)] = decode(read(entry), square, f"{cls}/{PurePosixPath(str(entry)).name}",
                               budget)
            y.append(c)
            paths.append(entry if isinstance(entry, str) else f"{cls}/{entry.name}")
    return Dataset(X, np.array(y, dtype=np.int64), names, "image", source, sources=paths)


def load_image_folder(root: Path, size: int = 64) -> Dataset:
    groups = {d.name: [f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTS and f.is_file()]
              for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    limits.check_entries([(f.name, f.stat().st_size) for g in groups.values() for f in g],
                         root.name)
    return _stack(groups, lambda f: f, size, root.name)


def load_image_zip(path: Path, size: int = 64) -> Dataset:
    """A zip of an image folder; a single top-level folder is stepped into."""
    with limits.open_zip(path) as zf:
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
        limits.check_entries([(n, zf.getinfo(n).file_size) for g in groups.values() for n in g],
                             path.name)
        return _stack(dict(groups), zf.read, size, path.name)
