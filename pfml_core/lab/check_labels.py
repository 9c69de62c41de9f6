"""Check my labels: train on every row of a dataset (the all-rows split, so no class goes
unchecked) and score every row's label from its training dynamics (pfml_core.lab.suspects).
The cut-off, the estimated number of label errors, is the margin's own: the rows whose mean
margin is negative (on average they sat nearer another class than their own). cleanlab's
count (cleanlab.count.num_label_issues, confident learning) is reported beside it."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pfml_core.data.bundled import load_dataset
from pfml_core.data.dataset import Dataset, with_noise
from pfml_core.lab import suspects
from pfml_core.training.config import TrainConfig

COLUMNS = ("row", "given_label", "suggested_label", "score", "cleanlab_score", "rank")
MAX_EVAL_ROWS = 2000  # R@1 on the training rows: a fixed subset this large is enough
WINDOW = "all"  # with R@1 on the given labels, memorization never lowers it: no peak to find
SCORES = ("score: minus the sample's label margin (cosine to its given class's anchor minus the "
          "best other class's) averaged over every trained epoch; higher = more likely "
          "mislabelled, above 0 = it sat nearer another class on average. cleanlab_score: "
          "1 - cleanlab's self-confidence label quality (out-of-fold probabilities); higher = "
          "more likely mislabelled. rank: 1 = most suspect by score.")


@dataclass
class Check:
    """A finished check: the data as trained (injected noise included), every row scored."""
    data: Dataset          # y = the labels trained on; true_y/flipped where noise was injected
    frame: pd.DataFrame    # every row, most suspect first: COLUMNS, index (source row) and,
                           # where noise was injected, flipped and true_label
    cutoff: int            # estimated number of label errors: rows with score > 0
    cleanlab_count: int    # cleanlab's estimate of the same (num_label_issues)
    config: TrainConfig
    history: list          # EpochSnapshots of the check's run
    probs: np.ndarray      # (n, C) out-of-fold class probabilities, by source row

    @property
    def injected(self) -> bool:
        return self.data.flipped is not None


def settings(data: str, epochs: int = 10, seed: int = 0, **overrides) -> TrainConfig:
    """The training settings of a check (and of every retrain that compares with it)."""
    return TrainConfig(data=data, split="all-rows", epochs=epochs, seed=seed, noise=0.0,
                       eval_subset=MAX_EVAL_ROWS, **overrides).validate()


def load(data: str, noise: float = 0.0, seed: int = 0, dataset: Dataset | None = None) -> Dataset:
    """The user's data; with noise > 0, that share of ALL rows flipped first (seeded), so the
    check sees them as a user's own wrong labels and R@1 is measured on the given labels."""
    ds = dataset if dataset is not None else load_dataset(data)
    return with_noise(ds, noise, seed) if noise > 0 else ds


def row_ids(ds: Dataset, index: np.ndarray) -> list:
    """The file's own name for each row: its row number, or the image's path in the zip."""
    return [ds.sources[i] for i in index] if ds.sources is not None else [int(i) for i in index]


def check(data: str, epochs: int = 10, noise: float = 0.0, seed: int = 0,
          dataset: Dataset | None = None, callback=None, should_stop=None,
          **overrides) -> Check:
    """Train on every row of `data` and rank every row's label (see the module docstring).
    callback(snapshot) after each epoch; overrides: further TrainConfig fields."""
    from pfml_core.training.engine import train

    ds = load(data, noise, seed, dataset)
    config = settings(data, epochs, seed, **overrides)
    sims = []  # every trained epoch's class similarities (runs keep the last one only)

    def keep(snap):
        if snap.epoch > 0 and snap.margins is not None:
            sims.append(snap.margins.sim)
        if callback is not None:
            callback(snap)

    result = train(config, keep, should_stop, dataset=replace(ds, true_y=None, flipped=None))
    rm = suspects.from_history(result.history, 0.0, ds.class_names, data)
    if rm is None:
        raise ValueError("the check stopped before its first epoch ended: nothing to score")
    if len(rm.margins[-1].index) < len(ds.y):
        raise ValueError(f"{len(ds.y)} rows are more than a check scores "
                         f"({len(rm.margins[-1].index)} had margins); check a part of the file")
    return scored(ds, rm, config, result.history, np.mean(sims, axis=0))


def scored(ds: Dataset, rm: suspects.RunMargins, config: TrainConfig, history,
           sim: np.ndarray) -> Check:
    """Rank every row from its margins: the table, its cut-off and cleanlab's probabilities
    (out of fold, from sim: the class similarities averaged over the same epochs)."""
    from cleanlab.count import num_label_issues

    s, suggested, _ = suspects.score(rm, WINDOW)
    last = rm.margins[-1]
    probs = suspects.out_of_fold_probs(sim, last.labels, config.seed)
    quality = probs[np.arange(len(last.labels)), last.labels] if probs is not None else np.nan
    names = np.asarray(ds.class_names, dtype=object)
    frame = pd.DataFrame({"row": row_ids(ds, last.index), "given_label": names[last.labels],
                          "suggested_label": names[suggested], "score": s,
                          "cleanlab_score": 1.0 - quality, "index": last.index})
    if ds.flipped is not None:
        frame["flipped"] = ds.flipped[last.index]
        frame["true_label"] = names[ds.true_y[last.index]]
    frame = frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    frame.insert(5, "rank", np.arange(1, len(frame) + 1))
    count = int(num_label_issues(last.labels, probs)) if probs is not None else 0
    full = np.zeros((len(ds.y), len(ds.class_names)))
    if probs is not None:
        full[last.index] = probs
    return Check(ds, frame, int((s > 0).sum()), count, config, history, full)


def write_csv(chk: Check, path) -> int:
    """Every row, most suspect first, in COLUMNS (+ flipped where the noise was injected)."""
    cols = [*COLUMNS, *(["flipped"] if chk.injected else [])]
    chk.frame[cols].to_csv(path, index=False)
    return len(chk.frame)


def detection(chk: Check) -> dict:
    """Where the noise was injected: AUROC and precision at k = number of flips, of the
    margin score and of cleanlab's, and how many flips the cut-off's top rows hold."""
    f = chk.frame
    flipped = f["flipped"].to_numpy(bool)
    m, c = suspects.detection(f["score"], flipped), suspects.detection(f["cleanlab_score"], flipped)
    return {"n_flipped": m["n_flipped"], "auroc": m["auroc"], "precision": m["precision"],
            "cleanlab_auroc": c["auroc"], "cleanlab_precision": c["precision"],
            "flips_in_cutoff": int(flipped[:chk.cutoff].sum())}


def describe(chk: Check) -> str:
    """One sentence on the list: its cut-off and, where flips are known, how it did."""
    n = len(chk.frame)
    text = (f"Every one of the {n} rows was checked. Estimated label errors: {chk.cutoff} "
            f"({100 * chk.cutoff / n:.1f}%), the rows whose mean margin is negative (score > 0): "
            f"they are the suspects. cleanlab estimates {chk.cleanlab_count}.")
    if chk.injected:
        d = detection(chk)
        text += (f" {d['n_flipped']} labels were flipped on purpose; {d['flips_in_cutoff']} of "
                 f"the top {chk.cutoff} are among them. AUROC: margin {d['auroc']:.3f}, cleanlab "
                 f"{d['cleanlab_auroc']:.3f}; precision at {d['n_flipped']}: margin "
                 f"{d['precision']:.3f}, cleanlab {d['cleanlab_precision']:.3f}.")
    return text
