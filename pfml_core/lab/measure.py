"""Per-run measurements the noise lab adds to the engine's metrics: where flipped
(mislabelled) training samples ended up relative to their labelled and true classes, the
memorization curves (per epoch: held-out R@1 and the mean label margin of flipped and of
clean training samples, pfml_core.eval.label_margin) and the suspect-label scores."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pfml_core.lab import suspects

CURVES = ("R@1", "margin_flipped", "margin_clean", "memorized")  # per epoch, stored per run
DETECTION = ("suspect_auroc", "suspect_precision", "cleanlab_auroc", "cleanlab_precision")
MEMORIZATION_NOTE = (
    "Margin: a training sample's cosine to its given class's anchor (its nearest proxy; the "
    "class centroid for losses without proxies) minus that to the nearest other class's. A "
    "flipped sample with a margin above 0 sits in its given, wrong class: the network has "
    "memorized its label. Each loss has its own scale (PFML packs its classes within about "
    "delta of each other, so its margins are small): compare each loss's flipped curve with its "
    "own clean curve, and the memorized share across losses. Read the panels together: the "
    "share says how many flipped labels the training embedding has absorbed, held-out R@1 what "
    "that cost on unseen classes. In the default CPU regime (bench/lab_scale.py, 3 seeds) both "
    "losses absorb most flipped labels by epoch 30 (PFML 88%, Proxy Anchor 84%), yet Proxy "
    "Anchor's held-out R@1 falls 27 points from its best and PFML's 6.")
DETECTION_NAMES = {"suspect_auroc": "margin AUROC", "cleanlab_auroc": "cleanlab AUROC",
                   "suspect_precision": "margin precision", "cleanlab_precision": "cleanlab precision"}


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


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def memorization(history) -> dict[str, list]:
    """Per evaluated epoch (0 = untrained): held-out R@1, the mean label margin of flipped
    and of clean training samples, and the share of flipped samples memorized (nearer their
    given, wrong class than any other: margin > 0). NaN where an epoch has no margins."""
    out = {"epoch": [int(s.epoch) for s in history]} | {k: [] for k in CURVES}
    for s in history:
        m = getattr(s, "margins", None)
        out["R@1"].append(float(s.metrics.get("R@1", float("nan"))))
        margin = m.margin if m is not None else np.zeros(0)
        flipped = m.flipped if m is not None else np.zeros(0, bool)
        out["margin_flipped"].append(_mean(margin[flipped]))
        out["margin_clean"].append(_mean(margin[~flipped]))
        out["memorized"].append(_mean((margin[flipped] > 0).astype(float)))
    return out


def curves_frame(runs: list[dict]) -> pd.DataFrame:
    """Long table of the finished runs' memorization curves: run, its grid params, epoch,
    R@1, margin_flipped, margin_clean, memorized."""
    rows = []
    for r in runs:
        c = (r.get("metrics") or {}).get("curves")
        if r["status"] != "done" or not c:
            continue
        for i, epoch in enumerate(c["epoch"]):
            rows.append({"run": r["id"], **r["params"], "epoch": epoch,
                         **{k: c[k][i] for k in CURVES if k in c}})
    return pd.DataFrame(rows, columns=None if rows else ["run", "epoch", *CURVES])


def run_suspects(result, class_names=None, window="peak"):
    """(scalar summary for the store, ranked per-sample table) of a run's suspect labels,
    or ({}, None) when it recorded no margins."""
    rm = suspects.from_history(result.history, result.config.noise, class_names)
    if rm is None:
        return {}, None
    return suspects.summary(rm, window), suspects.table(rm, window)


def run_metrics(result, seconds: float | None = None) -> dict:
    """The record the store keeps for one finished run (a TrainResult): final retrieval
    metrics (with the engine's proxy-to-data "W2" for proxy losses), flip distances, time,
    the memorization curves (key "curves", their last values as scalars too) and the R@1
    curve over epochs. seconds: the run's wall time (default: the epochs' sum)."""
    if not result.history:
        raise ValueError("the run finished no epoch; there is nothing to measure")
    last = result.history[-1]
    out = {k: float(v) for k, v in last.metrics.items()}
    out["epochs"] = int(last.epoch)
    out["seconds"] = float(seconds if seconds is not None else sum(s.seconds for s in result.history))
    out["stopped"] = bool(result.stopped)
    out["R@1 curve"] = [float(s.metrics.get("R@1", float("nan"))) for s in result.history]
    curves = memorization(result.history)
    if getattr(last, "margins", None) is not None:
        out["curves"] = curves
        out.update({k: curves[k][-1] for k in CURVES[1:]})
    if last.train_flipped is not None and np.any(last.train_flipped):
        out.update(flip_distances(last.train_embeddings, last.train_labels,
                                  last.train_true_labels, last.train_flipped))
    return out


def export_curves(store, grid_id: int, path) -> int:
    """Write the grid's memorization curves (curves_frame) to `path`; returns the rows."""
    frame = curves_frame(store.runs(grid_id))
    frame.to_csv(path, index=False)
    return len(frame)


def curves_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds of each curve, per loss, noise rate and epoch
    (columns '<curve> mean', '<curve> std', n)."""
    keys = ["loss", "noise", "epoch"]
    if curves.empty or not set(keys) <= set(curves):
        return pd.DataFrame(columns=keys + ["n"])
    g = curves.groupby(keys)[[c for c in CURVES if c in curves]]
    out = g.mean().add_suffix(" mean").join(g.std(ddof=1).fillna(0.0).add_suffix(" std"))
    out["n"] = g.size()
    return out.reset_index()


def detection_table(agg: pd.DataFrame) -> pd.DataFrame:
    """Per loss and noise rate with known flips: mean AUROC and precision at the number of
    flips of the margin score and of cleanlab's (over seeds), from lab.aggregate's frame."""
    cols = [f"{k} mean" for k in DETECTION_NAMES]
    if agg.empty or not set(cols) <= set(agg):
        return pd.DataFrame(columns=["loss", "noise", *DETECTION_NAMES.values(), "n"])
    out = agg.dropna(subset=[cols[0]])[["loss", "noise", *cols, "n"]]
    return out.rename(columns={f"{k} mean": v for k, v in DETECTION_NAMES.items()}).round(3)
