"""The Dataset record, the splits and seeded label noise. Every bad input raises
ValueError with a message a user can act on."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pfml_core import guards

SPLITS = ("zero-shot", "same-classes", "all-rows")


@dataclass
class Dataset:
    """X: float32 (n, C, H, W) images in [0, 1] or (n, F) features; y: int64 (n,) in
    [0, len(class_names)). true_y/flipped are set once label noise is applied."""
    X: np.ndarray
    y: np.ndarray
    class_names: list[str]
    kind: str  # "image" | "features"
    name: str = ""
    true_y: np.ndarray | None = None
    flipped: np.ndarray | None = None
    index: np.ndarray = field(default=None)  # rows of the source dataset, for images
    sources: list[str] | None = None  # by source row: an image's path in its zip or folder
    held_out: Dataset | None = None  # all-rows split: measure R@1 here (else on every row)

    def __post_init__(self):
        if self.index is None:
            self.index = np.arange(len(self.y))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, rows: np.ndarray, classes: np.ndarray | None = None) -> Dataset:
        """Rows `rows`; with `classes`, labels are renumbered 0..len(classes)-1 in that order."""
        y = self.y[rows]
        names = self.class_names
        if classes is not None:
            remap = np.full(self.num_classes, -1, dtype=np.int64)
            remap[classes] = np.arange(len(classes))
            y, names = remap[y], [self.class_names[c] for c in classes]
        return Dataset(self.X[rows], y.astype(np.int64), names, self.kind, self.name,
                       index=self.index[rows], sources=self.sources)


def _check_scorable(test: Dataset, mode: str, every: bool) -> None:
    """Recall@K asks, for each held-out query, whether a sample of its class is among its
    nearest: a class with one held-out sample has no such pair, and a held-out side made of
    them scores NaN. every=True: each held-out class needs 2 samples, else at least one."""
    counts = np.bincount(test.y, minlength=test.num_classes)
    single = int((counts < 2).sum())
    if single and (every or single == len(counts)):
        raise ValueError(f"too little data for the {mode} split: Recall@K needs at least 2 "
                         f"held-out samples per class (a query and a match), but {single} of "
                         f"{len(counts)} held-out classes have fewer")


def split(data: Dataset, mode: str = "zero-shot", seed: int = 0,
          test_fraction: float = 0.5) -> tuple[Dataset, Dataset]:
    """(train, test). zero-shot: first half of the classes train, the rest test (the DML
    protocol, docs/method.md, section 6), labels renumbered per side. same-classes: a stratified
    split. all-rows: every row trains (so every label is checked, pfml_core.lab.check_labels);
    R@1 is measured on data.held_out when set, else on the training rows themselves."""
    guards.check_choice("split", mode, SPLITS)
    if mode == "all-rows":
        test = data.held_out if data.held_out is not None else data.subset(np.arange(len(data.y)))
        _check_scorable(test, mode, every=False)
        return data.subset(np.arange(len(data.y))), test
    classes = np.unique(data.y)
    if mode == "zero-shot":
        if len(classes) < 4:
            raise ValueError(f"the zero-shot split needs at least 4 classes (2 to train, 2 to "
                             f"test), got {len(classes)}; use split='same-classes'")
        half = len(classes) // 2
        tr_cls, te_cls = classes[:half], classes[half:]
        tr = np.flatnonzero(np.isin(data.y, tr_cls))
        te = np.flatnonzero(np.isin(data.y, te_cls))
        test = data.subset(te, te_cls)
        _check_scorable(test, mode, every=True)
        return data.subset(tr, tr_cls), test
    guards.check_range("test_fraction", test_fraction, 0.05, 0.95)
    rng = np.random.default_rng(seed)
    tr, te = [], []
    for c in classes:
        rows = rng.permutation(np.flatnonzero(data.y == c))
        if len(rows) < 2:
            raise ValueError(f"class number {int(c)} has {len(rows)} sample; the "
                             "same-classes split needs at least 2 per class")
        k = min(max(1, round(len(rows) * test_fraction)), len(rows) - 1)
        te.append(rows[:k])
        tr.append(rows[k:])
    test = data.subset(np.sort(np.concatenate(te)))
    _check_scorable(test, mode, every=False)
    return data.subset(np.sort(np.concatenate(tr))), test


def flip_labels(y: np.ndarray, rate: float, seed: int | np.random.Generator = 0,
                num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly round(rate * n) labels, each to a different class drawn uniformly.
    Returns (noisy_y, flipped_mask); y itself is left untouched (the true labels). seed is
    an int or a Generator to draw from (the playground passes its scene's)."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be a 1-D array of integer labels, got dtype {y.dtype}, "
                         f"shape {y.shape}")
    rate = guards.check_range("noise", rate, 0.0, 1.0)
    k = num_classes if num_classes is not None else int(y.max()) + 1 if len(y) else 0
    if rate > 0 and k < 2:
        raise ValueError(f"label noise needs at least 2 classes, got {k}")
    rng = np.random.default_rng(seed)
    n_flip = int(round(rate * len(y)))
    rows = rng.choice(len(y), size=n_flip, replace=False)
    noisy = y.astype(np.int64).copy()
    shift = rng.integers(1, max(k, 2), size=n_flip)  # never 0: always another class
    noisy[rows] = (noisy[rows] + shift) % max(k, 1)
    flipped = np.zeros(len(y), dtype=bool)
    flipped[rows] = True
    return noisy, flipped


def with_noise(data: Dataset, rate: float, seed: int = 0) -> Dataset:
    """A copy of a training set with noisy labels in y, true labels in true_y."""
    noisy, flipped = flip_labels(data.y, rate, seed, data.num_classes)
    return Dataset(data.X, noisy, data.class_names, data.kind, data.name,
                   true_y=data.y.copy(), flipped=flipped, index=data.index, sources=data.sources)


def split_class_names(class_names: list[str], mode: str) -> dict[str, list[str]]:
    """Names of the train-side and held-out classes, in the order split() numbers them."""
    if mode == "zero-shot":
        half = len(class_names) // 2
        return {"train": class_names[:half], "held-out": class_names[half:]}
    return {"train": list(class_names), "held-out": list(class_names)}
