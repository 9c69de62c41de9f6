"""Clean and retrain: drop, or relabel to the suggested label, the top-k suspects of a check
(pfml_core.lab.check_labels), retrain with the same settings and compare R@1 with the noisy
labels, with cleanlab's top-k cleaned the same way and, where the check injected the noise,
with the true labels (the ceiling). Every variant trains on the same rows (all but a fixed
held-out part of every class) and is measured on that held-out part, against the true labels
where known, else the given ones; only the training labels differ."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from pfml_core.data.dataset import Dataset, split
from pfml_core.lab.check_labels import Check
from pfml_core.lab.grid import in_points

HOWS = ("drop", "relabel")
HELD_OUT = 0.3  # share of every class kept out of training to measure R@1 on
VARIANTS = {"noisy": "given labels", "margin": "cleaned by the margin score",
            "cleanlab": "cleaned by cleanlab's score", "true": "true labels (the ceiling)"}


def top_rows(chk: Check, k: int, by: str = "score") -> np.ndarray:
    """Source rows of the k most suspect labels by `by` ('score' or 'cleanlab_score')."""
    order = chk.frame.sort_values(by, ascending=False, kind="stable")
    return order["index"].to_numpy()[:max(int(k), 0)]


def suggestions(chk: Check, by: str = "score") -> np.ndarray:
    """Suggested class id per source row: the margin's suggestion, or cleanlab's (the most
    probable class out of fold)."""
    if by == "cleanlab_score":
        return chk.probs.argmax(axis=1)
    ids = {name: i for i, name in enumerate(chk.data.class_names)}
    out = np.array(chk.data.y, copy=True)
    out[chk.frame["index"].to_numpy()] = [ids[n] for n in chk.frame["suggested_label"]]
    return out


def cleaned_labels(chk: Check, rows: np.ndarray, how: str, by: str = "score"):
    """(labels by source row, keep mask by source row) once `rows` are dropped or relabelled."""
    if how not in HOWS:
        raise ValueError(f"clean must be one of {list(HOWS)}, got {how!r}")
    y, keep = np.array(chk.data.y, copy=True), np.ones(len(chk.data.y), bool)
    if how == "drop":
        keep[rows] = False
    else:
        y[rows] = suggestions(chk, by)[rows]
    return y, keep


def _train_set(ds: Dataset, rows: np.ndarray, y: np.ndarray, held: Dataset) -> Dataset:
    return Dataset(ds.X[rows], y[rows].astype(np.int64), ds.class_names, ds.kind, ds.name,
                   index=rows, sources=ds.sources, held_out=held)


def retrain(chk: Check, k: int | None = None, how: str = "drop", callback=None) -> dict:
    """R@1 (final epoch, held-out part) of every variant, and what each cleaned. k: suspects
    cleaned per list (default: the check's cut-off, for both lists)."""
    from pfml_core.training.engine import train

    k = chk.cutoff if k is None else int(k)
    ds = chk.data
    train_part, held = split(ds, "same-classes", chk.config.seed, HELD_OUT)
    if chk.injected:  # measured against the truth, which the check kept aside
        held = replace(held, y=ds.true_y[held.index])
    rows = train_part.index
    variants = {"noisy": (ds.y, np.ones(len(ds.y), bool))}
    for name, by in (("margin", "score"), ("cleanlab", "cleanlab_score")):
        variants[name] = cleaned_labels(chk, top_rows(chk, k, by), how, by)
    if chk.injected:
        variants["true"] = (ds.true_y, np.ones(len(ds.y), bool))
    config = replace(chk.config, eval_subset=max(len(held.y), 10))
    out = {"k": k, "how": how, "held_out": len(held.y), "train_rows": len(rows),
           "truth": chk.injected, "r1": {}}
    for name, (y, keep) in variants.items():
        mine = rows[keep[rows]]
        result = train(config, callback, dataset=_train_set(ds, mine, y, held))
        out["r1"][name] = float(result.history[-1].metrics["R@1"])
    return out


def points(r1: list[float]) -> str:
    """R@1 in points: '91.2', or '91.2 ± 0.8' (standard deviation) over several seeds."""
    v = np.asarray(r1, dtype=float)
    return in_points(v.mean(), v.std(ddof=1) if len(v) > 1 else 0.0, len(v))


def gain(r1: list[float], base: list[float]) -> str:
    """The mean gain over base in R@1 points, signed: '+7.8'."""
    return f"{100 * (np.mean(r1) - np.mean(base)):+.1f}"


def report(runs: list[dict]) -> str:
    """A plain-text table of one or more seeds' retrain() results (R@1 in points)."""
    first = runs[0]
    against = "true labels" if first["truth"] else "the given labels"
    k = "/".join(dict.fromkeys(str(r["k"]) for r in runs))  # per seed, where they differ
    lines = [f"R@1 (points) after {first['how']} of the top {k} suspects; trained on "
             f"{first['train_rows']} rows, measured on a held-out {HELD_OUT:.0%} of every class "
             f"({first['held_out']} rows) against {against}:"]
    base = [r["r1"]["noisy"] for r in runs]
    for name, label in VARIANTS.items():
        if name in first["r1"]:
            vals = [r["r1"][name] for r in runs]
            extra = "" if name == "noisy" else f"  ({gain(vals, base)})"
            lines.append(f"  {label:<30} {points(vals)}{extra}")
    return "\n".join(lines)
