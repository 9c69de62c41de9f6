"""Label margins of training samples: how much nearer a sample's embedding lies to its given
class's anchor than to the nearest other class's, measured every epoch (`train_margins`).
Averaged over epochs this is the "area under the margin" of Pleiss et al. (NeurIPS 2020, arXiv
2001.10528), which ranks suspect labels (pfml_core.lab.suspects); its mean over flipped and over
clean samples is the noise lab's memorization curve."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PER_EPOCH = ("margin", "rival")  # stacked over epochs in a run folder; the rest from the last
CONSTANT = ("sim", "labels", "true_labels", "flipped", "index")


@dataclass
class TrainMargins:
    """One epoch's label margins of r training samples (the same rows every epoch)."""
    margin: np.ndarray       # (r,) float32, in [-2, 2]; < 0: nearer another class than its own
    rival: np.ndarray        # (r,) int64, the best other class (-1 with a single class)
    sim: np.ndarray | None   # (r, C) cosine to every class anchor (a reloaded run: last epoch only)
    labels: np.ndarray       # (r,) given labels, the ones trained on (possibly flipped)
    true_labels: np.ndarray  # (r,) labels before injected noise (= labels without noise)
    flipped: np.ndarray      # (r,) bool, which labels the run's own noise flipped
    index: np.ndarray        # (r,) rows of the source dataset


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def class_similarity(emb: np.ndarray, labels: np.ndarray, num_classes: int,
                     proxies: np.ndarray | None = None,
                     proxy_labels: np.ndarray | None = None) -> np.ndarray:
    """(n, D) embeddings -> (n, C) cosine to each class's anchor (see train_margins).
    A class without an anchor (no proxy, or no sample under that label) scores -1."""
    z, labels = _unit(emb), np.asarray(labels)
    if len(z) != len(labels):
        raise ValueError(f"emb and labels must have the same length, got {len(z)} and {len(labels)}")
    sim = np.full((len(z), num_classes), -1.0, dtype=np.float32)
    if proxies is not None and len(proxies):
        s = z @ _unit(proxies).T                                    # (n, P)
        for c in np.unique(proxy_labels):
            if 0 <= c < num_classes:
                sim[:, c] = s[:, np.asarray(proxy_labels) == c].max(axis=1)
        return sim
    for c in np.unique(labels):
        if 0 <= c < num_classes:
            sim[:, c] = z @ _unit(z[labels == c].mean(axis=0))
    return sim


def margin_and_rival(sim: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, C) class similarities and (n,) given labels -> (margin, rival): own-class
    similarity minus the best other class's, and that class (NaN and -1 with one class)."""
    sim, labels = np.asarray(sim, dtype=np.float32), np.asarray(labels)
    n, C = sim.shape
    if C < 2:
        return np.full(n, np.nan, dtype=np.float32), np.full(n, -1, dtype=np.int64)
    own = sim[np.arange(n), labels]
    other = sim.copy()
    other[np.arange(n), labels] = -np.inf
    rival = other.argmax(axis=1)
    return (own - other[np.arange(n), rival]).astype(np.float32), rival.astype(np.int64)


def train_margins(emb: np.ndarray, train, rows: np.ndarray, proxies=None,
                  proxy_labels=None) -> TrainMargins:
    """The margins of training rows `rows` of `train` (a pfml_core.data Dataset after
    with_noise) whose embeddings are emb (len(rows), D). The proxies are taken and not used:
    a class's anchor is the L2-normalised centroid of the training embeddings under their given
    labels, for every loss. A class's proxies can be captured by another class's samples (PFML
    on all 10 digits: the nearest proxies of 0 and 7 belong to other classes, noise or not),
    which makes whole clean classes look mislabelled; a centroid stays with its class's samples.
    margin = cos(sample, anchor of its given class)
             - max over the other classes c of cos(sample, anchor of c)."""
    labels = np.asarray(train.y)[rows]
    sim = class_similarity(emb, labels, train.num_classes)
    margin, rival = margin_and_rival(sim, labels)
    true = train.true_y[rows] if train.true_y is not None else labels
    flipped = train.flipped[rows] if train.flipped is not None else np.zeros(len(rows), bool)
    return TrainMargins(margin, rival, sim, labels, true, flipped, np.asarray(train.index)[rows])


def to_arrays(history: list[TrainMargins]) -> dict[str, np.ndarray]:
    """Epochs' margins -> arrays for a run folder: margin/rival stacked (E, r), the rest
    (the last epoch's similarities, the labels) once. Keys are prefixed 'margin_'."""
    last = history[-1]
    out = {f"margin_{k}": np.stack([getattr(m, k) for m in history]) for k in PER_EPOCH}
    out.update({f"margin_{k}": getattr(last, k) for k in CONSTANT})
    return out


def from_arrays(arrays: dict) -> list[TrainMargins] | None:
    """Inverse of to_arrays (sim on the last epoch only); None for a run without margins."""
    if "margin_margin" not in arrays:
        return None
    E = len(arrays["margin_margin"])
    const = {k: arrays[f"margin_{k}"] for k in CONSTANT if k != "sim"}
    return [TrainMargins(arrays["margin_margin"][i], arrays["margin_rival"][i],
                         arrays["margin_sim"] if i == E - 1 else None, **const) for i in range(E)]
