"""Suspect labels: which training labels does a run itself find probably wrong?

Score (higher = more suspect): minus the area under the margin (Pleiss et al., NeurIPS 2020), each
training sample's label margin averaged over the trained epochs up to held-out R@1's peak, because
once R@1 falls the network is memorizing flipped labels. Baseline: cleanlab's self-confidence
label quality on out-of-fold class probabilities. Where flips are known: AUROC, precision at k."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pfml_core.eval.label_margin import TrainMargins

COLUMNS = ("row", "given_label", "suggested_label", "score")  # + "flipped" where known
PEAK_TOLERANCE = 0.03  # 3 R@1 points: about 3 standard errors of R@1 on 1,000 queries
HOW = ("Each training sample is scored by its label margin averaged over the epochs before "
       "held-out R@1 falls from its best (the area under the margin, Pleiss et al. 2020; the "
       "window ends at the last epoch within 3 R@1 points of the best): a sample that keeps "
       "sitting nearer another class than its own is probably mislabelled. The suggested label "
       "is that other class. Beside it: cleanlab's self-confidence ranking, given out-of-fold "
       "class probabilities from the last epoch's class similarities. 'row' is the sample's row "
       "in the dataset; uploads work the same way, without the true-label figures.")


@dataclass
class RunMargins:
    """What a run records for its suspects: margins of the trained epochs 1..E."""
    margins: list[TrainMargins]
    r1: list[float]            # held-out R@1 after each of those epochs
    known: bool                # the run flipped labels itself: true labels known
    class_names: list[str] | None = None  # training-side class names (None: class ids)
    data: str | None = None    # the run's data (a bundled name or a path), for its images


def from_history(history, noise: float, class_names=None, data=None) -> RunMargins | None:
    """EpochSnapshots of a run (train()'s history or a reloaded run folder), epoch 0 left
    out (untrained); None when the run recorded no margins or trained no epoch."""
    done = [s for s in history if s.epoch > 0 and getattr(s, "margins", None) is not None]
    if not done:
        return None
    return RunMargins([s.margins for s in done], [float(s.metrics.get("R@1", np.nan)) for s in done],
                      float(noise) > 0, class_names, data)


def window_epochs(r1, window="peak") -> int:
    """How many trained epochs (from the first) the score averages. "peak" (the default): up to
    the last epoch whose held-out R@1 is within PEAK_TOLERANCE of the best (once it falls, the
    network memorizes flipped labels and their margins rise); "all": every trained epoch; an
    integer K: the first K."""
    n = len(r1)
    if window == "all":
        return n
    if window == "peak":
        r = np.nan_to_num(np.asarray(r1, dtype=float), nan=-np.inf)
        return int(np.flatnonzero(r >= r.max() - PEAK_TOLERANCE)[-1]) + 1 if n else 0
    k = int(window)
    if k < 1:
        raise ValueError(f"window must be 'peak', 'all' or a number of epochs >= 1, got {window!r}")
    return min(k, n)


def score(rm: RunMargins, window="peak") -> tuple[np.ndarray, np.ndarray, int]:
    """(score (r,), suggested class (r,), epochs averaged). Score: minus the area under the
    margin (arXiv 2001.10528), i.e. minus each sample's label margin (pfml_core.eval.label_margin:
    cosine to its given class's anchor minus the best other class's) averaged over the window.
    Suggested: the given label where the mean margin is positive, else the class most often
    nearest after the given one within the window."""
    k = window_epochs(rm.r1, window)
    M = np.stack([m.margin for m in rm.margins[:k]]).astype(np.float64)   # (k, r)
    rivals = np.stack([m.rival for m in rm.margins[:k]])                  # (k, r)
    rivals = np.where(rivals < 0, rm.margins[-1].labels, rivals)          # a single class
    aum = M.mean(axis=0)
    C = max(int(rivals.max()) + 1, int(rm.margins[-1].labels.max()) + 1)
    votes = np.zeros((len(aum), C), dtype=np.int64)
    np.add.at(votes, (np.broadcast_to(np.arange(len(aum)), rivals.shape), rivals), 1)
    suggested = np.where(aum > 0, rm.margins[-1].labels, votes.argmax(axis=1))
    return -aum, suggested, k


def detection(scores, flipped) -> dict[str, float]:
    """AUROC of scores for flipped (sklearn.metrics.roc_auc_score) and precision at k = number
    of flips (the share truly flipped among the k top scores)."""
    from sklearn.metrics import roc_auc_score

    scores, flipped = np.asarray(scores, dtype=float), np.asarray(flipped, dtype=bool)
    k = int(flipped.sum())
    if k == 0 or k == len(flipped):
        return {"auroc": float("nan"), "precision": float("nan"), "n_flipped": k}
    top = np.argsort(-scores, kind="stable")[:k]
    return {"auroc": float(roc_auc_score(flipped, scores)),
            "precision": float(flipped[top].mean()), "n_flipped": k}


def out_of_fold_probs(sim: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """(r, C) class probabilities from a logistic regression on the class cosines, each row
    predicted by a model that never saw it (5 folds, fewer for rare classes); None if a
    class has a single sample."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes, counts = np.unique(labels, return_counts=True)
    folds = int(min(5, counts.min()))
    if folds < 2 or len(classes) < 2:
        return None
    # standardised: the cosines of a run can differ by hundredths only, which the default
    # regularisation flattens into uniform probabilities
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probs = cross_val_predict(model, sim, labels, method="predict_proba",
                              cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    full = np.zeros((len(labels), sim.shape[1]))
    full[:, classes] = probs  # columns of classes with no sample stay 0
    return full


def cleanlab_score(rm: RunMargins) -> tuple[np.ndarray, int]:
    """(score (r,), higher = more suspect; number of issues cleanlab flags), NaN without
    probabilities. cleanlab.rank.get_label_quality_scores (self-confidence) on out-of-fold
    probabilities from the cosines to every class anchor at the last epoch (the epochs' mean in
    a label check, pfml_core.lab.check_labels): a proxy softmax, its scale fitted out of fold."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    last = rm.margins[-1]
    probs = None if last.sim is None else out_of_fold_probs(last.sim, last.labels)
    if probs is None:
        return np.full(len(last.labels), np.nan), 0
    quality = get_label_quality_scores(last.labels, probs, method="self_confidence")
    return 1.0 - quality, int(find_label_issues(last.labels, probs, n_jobs=1).sum())


def _names(ids: np.ndarray, names) -> list:
    return [names[i] if names is not None and 0 <= i < len(names) else int(i) for i in ids]


def table(rm: RunMargins, window="peak", with_cleanlab: bool = True) -> pd.DataFrame:
    """One row per training sample, most suspect first: row (of the source data),
    given_label, suggested_label, score, flipped (where known), cleanlab_score (optional)."""
    s, suggested, _ = score(rm, window)
    last = rm.margins[-1]
    frame = pd.DataFrame({"row": last.index.astype(np.int64),
                          "given_label": _names(last.labels, rm.class_names),
                          "suggested_label": _names(suggested, rm.class_names), "score": s})
    if rm.known:
        frame["flipped"] = last.flipped.astype(bool)
    if with_cleanlab:
        frame["cleanlab_score"] = cleanlab_score(rm)[0]
    return frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def summary(rm: RunMargins, window="peak") -> dict:
    """Scalars for the lab store: epochs averaged, issues cleanlab flags, and where flips
    are known the AUROC and precision of the margin score and of cleanlab's."""
    s, _, k = score(rm, window)
    cl, issues = cleanlab_score(rm)
    out = {"suspect_epochs": k, "cleanlab_issues": issues}
    if rm.known:
        flipped = rm.margins[-1].flipped
        d, c = detection(s, flipped), detection(cl, flipped)
        out.update(suspect_auroc=d["auroc"], suspect_precision=d["precision"],
                   cleanlab_auroc=c["auroc"], cleanlab_precision=c["precision"])
    return out


def describe(summary: dict, n_flipped: int = 0) -> str:
    """One Markdown sentence on a run's suspects: detection figures where flips are known."""
    if "suspect_auroc" not in summary:
        return ("True labels unknown (no noise injected): ranked by the margin score; cleanlab "
                f"flags {summary.get('cleanlab_issues', 0)} labels as issues.")
    return (f"**{n_flipped} labels flipped by the run.** Detection AUROC: margin "
            f"{summary['suspect_auroc']:.3f}, cleanlab {summary['cleanlab_auroc']:.3f}; precision "
            f"at that many: margin {summary['suspect_precision']:.3f}, cleanlab "
            f"{summary['cleanlab_precision']:.3f} (margin averaged over epochs "
            f"1-{summary['suspect_epochs']}).")


def write_csv(frame: pd.DataFrame, path, top: int | None = None) -> int:
    """The first `top` rows (all when None or larger than the table) of the CSV columns;
    returns the number of rows written."""
    cols = [c for c in (*COLUMNS, "flipped") if c in frame]
    out = frame[cols] if top is None else frame[cols].head(max(int(top), 0))
    out.to_csv(Path(path), index=False)
    return len(out)


def stored_runs(runs: list[dict]) -> dict[str, dict]:
    """A grid's finished runs that kept suspects, by label ('run 4: pfml · 20% noise · seed 0'),
    PFML at the highest noise rate and lowest seed first (the one to look at first)."""
    done = [r for r in runs if r["status"] == "done" and "suspect_epochs" in (r["metrics"] or {})]
    done.sort(key=lambda r: (r["params"].get("loss") != "pfml", -r["params"].get("noise", 0),
                             r["params"].get("seed", 0)))
    label = lambda r, p: (f"run {r['id']}: {p['loss']} · {p.get('noise', 0):.0%} noise · "  # noqa: E731
                          f"seed {p.get('seed')}" if "loss" in p else f"run {r['id']}")
    return {label(r, r["params"]): r for r in done}


def from_run_folder(path) -> RunMargins:
    """The margins a run folder recorded (pfml_core.training.run_folder), with the training
    class names when its data can still be opened."""
    from pfml_core.lab.runtime import train_class_names
    from pfml_core.training.run_folder import load_run, snapshots

    run = load_run(path)
    rm = from_history(snapshots(run), run.config.noise, train_class_names(run.config.to_dict()),
                      run.config.data)
    if rm is None:
        raise ValueError(f"the run folder {Path(path).name!r} holds no label margins: it has no "
                         "finished epoch, or it was written before they were recorded")
    return rm
