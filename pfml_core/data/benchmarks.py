"""The DML benchmarks from their standard folder layouts, with the standard zero-shot
splits (docs/method.md, section 6.1): CUB-200-2011 (classes 1-100 train, 101-200 test), Cars-196 (1-98 /
99-196), Stanford Online Products (Ebay_train.txt: 11,318 classes / Ebay_test.txt:
11,316). Each loader returns (path, label) lists, labels renumbered 0..n-1 per split in
the order of the original class ids; images are read when a batch needs them, by
ImageListDataset (a torch Dataset for DataLoader workers)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from pfml_core import guards
from pfml_core.data.images import IMAGE_EXTS

Items = list[tuple[str, int]]


@dataclass
class BenchmarkSplit:
    name: str
    train: Items
    test: Items


def _root(root, name: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{name}: data root {str(root)!r} is not a folder")
    return root


def _need(path: Path, name: str, what: str) -> Path:
    if not path.exists():
        raise ValueError(f"{name}: missing {what} {str(path)!r}; is the root the unpacked "
                         f"dataset folder?")
    return path


def _rows(path: Path, name: str, ncols: int, skip_header: bool = False) -> list[list[str]]:
    """Whitespace-separated rows with at least ncols fields; bad line -> ValueError."""
    lines = path.read_text().splitlines()[1 if skip_header else 0:]
    rows = [line.split(maxsplit=ncols - 1) for line in lines if line.strip()]
    for i, row in enumerate(rows):
        if len(row) < ncols:
            raise ValueError(f"{name}: {path.name} line {i + 1 + skip_header} has {len(row)} "
                             f"fields, expected {ncols}: {' '.join(row)!r}")
    return rows


def _int(value: str, name: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}: {where}: expected an integer class/image id, "
                         f"got {value!r}") from None


def _split(name: str, pairs: list[tuple[str, int]], is_train, check_files: bool) -> BenchmarkSplit:
    """(path, original class id) -> train/test with labels renumbered per split."""
    if check_files:
        missing = [p for p, _ in pairs if not Path(p).is_file()]
        if missing:
            raise ValueError(f"{name}: {len(missing)} of {len(pairs)} listed images are "
                             f"missing, e.g. {missing[0]!r}")
    parts = []
    for want in (True, False):
        chosen = [(p, c) for p, c in pairs if is_train(c) == want]
        ids = {c: i for i, c in enumerate(sorted({c for _, c in chosen}))}
        parts.append([(p, ids[c]) for p, c in chosen])
    if not parts[0] or not parts[1]:
        raise ValueError(f"{name}: the split has {len(parts[0])} train and {len(parts[1])} "
                         f"test images; both must be non-empty")
    return BenchmarkSplit(name, parts[0], parts[1])


def load_cub(root, num_train_classes: int = 100, check_files: bool = True) -> BenchmarkSplit:
    """CUB_200_2011/: images.txt (id path), image_class_labels.txt (id class), images/."""
    name, root = "CUB-200-2011", _root(root, "CUB-200-2011")
    guards.check_int("num_train_classes", num_train_classes, 1)
    images = _need(root / "images", name, "folder")
    paths = {r[0]: r[1] for r in _rows(_need(root / "images.txt", name, "file"), name, 2)}
    labels = _rows(_need(root / "image_class_labels.txt", name, "file"), name, 2)
    unknown = [i for i, _ in labels if i not in paths]
    if unknown or len(labels) != len(paths):
        raise ValueError(f"{name}: images.txt lists {len(paths)} images but "
                         f"image_class_labels.txt has {len(labels)} rows"
                         + (f" (unknown image id {unknown[0]!r})" if unknown else ""))
    pairs = [(str(images / paths[i]), _int(c, name, f"image {i}")) for i, c in labels]
    return _split(name, pairs, lambda c: c <= num_train_classes, check_files)


def _cars_mat(root: Path, name: str) -> list[tuple[str, int]]:
    from scipy.io import loadmat

    try:
        ann = loadmat(str(root / "cars_annos.mat"), squeeze_me=True)["annotations"]
        paths, classes = np.atleast_1d(ann["relative_im_path"]), np.atleast_1d(ann["class"])
    except (KeyError, ValueError, TypeError, OSError) as e:
        raise ValueError(f"{name}: cars_annos.mat has no readable 'annotations' with "
                         f"'relative_im_path' and 'class' fields ({e})") from None
    return [(str(root / str(p)), int(c)) for p, c in zip(paths, classes)]


def _class_folders(root: Path, name: str) -> list[tuple[str, int]]:
    """root/<class>/*.jpg, or root/train/<class> + root/test/<class> merged by class name.
    Classes numbered 1.. by name (numerically when all names are numbers)."""
    bases = [root / s for s in ("train", "test") if (root / s).is_dir()] or [root]
    folders = [d for b in bases for d in sorted(b.iterdir()) if d.is_dir()]
    names = sorted({d.name for d in folders},
                   key=lambda s: (0, int(s), "") if s.isdigit() else (1, 0, s))
    if not names:
        raise ValueError(f"{name}: {str(root)!r} has neither cars_annos.mat nor class folders")
    ids = {n: i + 1 for i, n in enumerate(names)}
    return [(str(f), ids[d.name]) for d in folders for f in sorted(d.iterdir())
            if f.suffix.lower() in IMAGE_EXTS]


def load_cars(root, num_train_classes: int = 98, check_files: bool = True) -> BenchmarkSplit:
    """Cars-196: cars_annos.mat (all 16,185 images, its own train/test flag ignored, as in
    DML) or class-per-folder; classes 1..num_train_classes train, the rest test."""
    name, root = "Cars-196", _root(root, "Cars-196")
    guards.check_int("num_train_classes", num_train_classes, 1)
    mat = root / "cars_annos.mat"
    pairs = _cars_mat(root, name) if mat.exists() else _class_folders(root, name)
    return _split(name, pairs, lambda c: c <= num_train_classes, check_files)


def _sop_file(root: Path, fname: str, name: str) -> list[tuple[str, int]]:
    path = _need(root / fname, name, "file")
    header = path.read_text().split("\n", 1)[0].split()
    if header[:2] != ["image_id", "class_id"] or "path" not in header:
        raise ValueError(f"{name}: {fname} must start with the header 'image_id class_id "
                         f"super_class_id path', got {' '.join(header)!r}")
    rows = _rows(path, name, len(header), skip_header=True)
    col = header.index("path")
    return [(str(root / r[col]), _int(r[1], name, f"{fname} image {r[0]}")) for r in rows]


def load_sop(root, check_files: bool = True) -> BenchmarkSplit:
    """Stanford_Online_Products/: Ebay_train.txt (11,318 classes), Ebay_test.txt (11,316)."""
    name, root = "SOP", _root(root, "SOP")
    train = _sop_file(root, "Ebay_train.txt", name)
    test = _sop_file(root, "Ebay_test.txt", name)
    overlap = {c for _, c in train} & {c for _, c in test}
    if overlap:
        raise ValueError(f"{name}: {len(overlap)} class ids appear in both Ebay_train.txt "
                         f"and Ebay_test.txt, e.g. {min(overlap)}; the split must be zero-shot")
    train_ids = {c for _, c in train}
    return _split(name, train + test, lambda c: c in train_ids, check_files)


BENCHMARKS = {"cub200": load_cub, "cars196": load_cars, "sop": load_sop}


def load_benchmark(name: str, root, **kwargs) -> BenchmarkSplit:
    guards.check_choice("dataset", name, BENCHMARKS)
    return BENCHMARKS[name](root, **kwargs)


class ImageListDataset(torch.utils.data.Dataset):
    """(path, label) items read with PIL as RGB when asked for; transform: PIL image ->
    tensor (pfml_core.data.transforms). ds[i] -> (transform(image), label)."""

    def __init__(self, items: Items, transform):
        self.items, self.transform = list(items), transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        return self.transform(read_rgb(path)), label


def read_rgb(path) -> Image.Image:
    """The image at path as RGB; an unreadable or oversized file -> ValueError naming it."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot read image {path!r}: the file is corrupt or not an image "
                         f"({type(e).__name__})") from None


def benchmark_datasets(name: str, root):
    """(train, test) pfml_core.data.dataset.Dataset records of a benchmark's zero-shot split.
    X holds the image paths (an object array, shape (n,)): the training engine reads them
    through ImageListDataset with the paper's transforms."""
    from pfml_core.data.dataset import Dataset

    s = load_benchmark(name, root)
    out = []
    for items in (s.train, s.test):
        paths = np.array([p for p, _ in items], dtype=object)
        y = np.array([label for _, label in items], dtype=np.int64)
        names = [str(c) for c in range(int(y.max()) + 1)] if len(y) else []
        out.append(Dataset(paths, y, names, "image", name))
    return tuple(out)
