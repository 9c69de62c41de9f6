"""Per-run measurements the noise lab adds to the engine's metrics: where flipped
(mislabelled) training samples ended up relative to their labelled and true classes."""
from __future__ import annotations

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def flip_distances(emb: np.ndarray, labels: np.ndarray, true_labels: np.ndarray,
                   flipped: np.ndarray) -> dict[str, float]:
    """Distances (on the unit sphere) from each flipped sample to the centroid of the clean
    samples of its labelled (wrong) class and of its true class. Returns means, their ratio
    (labelled / true: > 1 means flipped samples stayed with their true class), the fraction
    nearer their true class, and the clean samples' mean distance to their own centroid."""
    z = _unit(emb)                                     # (n, D)
    labels, true_labels = np.asarray(labels), np.asarray(true_labels)
    flipped = np.asarray(flipped, dtype=bool)
    if z.shape[0] != len(labels) or len(labels) != len(true_labels) or len(labels) != len(flipped):
        raise ValueError(f"emb, labels, true_labels, flipped must have matching lengths, got "
                         f"{z.shape[0]}, {len(labels)}, {len(true_labels)}, {len(flipped)}")
    clean = ~flipped
    classes = np.unique(true_labels[clean])
    centroid = {c: z[clean & (true_labels == c)].mean(axis=0) for c in classes}
    d_own = [np.linalg.norm(z[i] - centroid[true_labels[i]]) for i in np.flatnonzero(clean)]
    out = {"clean_d_own": float(np.mean(d_own)) if d_own else float("nan"), "n_flipped": int(flipped.sum())}
    idx = [i for i in np.flatnonzero(flipped) if labels[i] in centroid and true_labels[i] in centroid]
    if not idx:
        return out
    d_lab = np.array([np.linalg.norm(z[i] - centroid[labels[i]]) for i in idx])
    d_true = np.array([np.linalg.norm(z[i] - centroid[true_labels[i]]) for i in idx])
    out.update(flip_d_labelled=float(d_lab.mean()), flip_d_true=float(d_true.mean()),
               flip_ratio=float(d_lab.mean() / max(d_true.mean(), 1e-12)),
               flip_closer_true=float((d_true < d_lab).mean()))
    return out


def run_metrics(result, seconds: float | None = None) -> dict:
    """The record the store keeps for one finished run (a TrainResult): final retrieval
    metrics (with the engine's proxy-to-data "W2" for proxy losses), flip distances, time,
    and the R@1 curve over epochs. seconds: the run's wall time (default: the epochs' sum)."""
    if not result.history:
        raise ValueError("the run finished no epoch; there is nothing to measure")
    last = result.history[-1]
    out = {k: float(v) for k, v in last.metrics.items()}
    out["epochs"] = int(last.epoch)
    out["seconds"] = float(seconds if seconds is not None else sum(s.seconds for s in result.history))
    out["stopped"] = bool(result.stopped)
    out["R@1 curve"] = [float(s.metrics.get("R@1", float("nan"))) for s in result.history]
    if last.train_flipped is not None and np.any(last.train_flipped):
        out.update(flip_distances(last.train_embeddings, last.train_labels,
                                  last.train_true_labels, last.train_flipped))
    return out
