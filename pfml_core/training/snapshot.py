"""What a training run hands out: one EpochSnapshot per evaluated epoch (epoch 0 is the
untrained network) and the TrainResult at the end. Run folders store and reload them."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # annotations only: this module stays a leaf (run_folder imports it)
    from pfml_core.eval.label_margin import TrainMargins
    from pfml_core.training.config import TrainConfig
    from pfml_core.training.losses import LossBundle


@dataclass(kw_only=True)  # 15 fields: built by name, never by position
class EpochSnapshot:
    epoch: int
    loss: float
    metrics: dict[str, float]
    embeddings: np.ndarray          # (n, D) eval subset (held-out samples)
    labels: np.ndarray              # (n,)
    train_embeddings: np.ndarray    # (m, D) subset of training samples
    train_labels: np.ndarray        # (m,) labels used in training (noisy)
    train_true_labels: np.ndarray   # (m,)
    train_flipped: np.ndarray       # (m,) bool
    proxies: np.ndarray | None      # (P, D) L2-normalised
    proxy_labels: np.ndarray | None  # (P,)
    seconds: float
    eval_index: np.ndarray = field(default=None)   # (n,) rows of the source dataset
    train_index: np.ndarray = field(default=None)  # (m,) rows of the source dataset
    margins: TrainMargins | None = field(default=None)  # label margins of (all) training rows


def slim(snap: EpochSnapshot) -> EpochSnapshot:
    """An earlier epoch as runs keep it once a newer one exists: its metrics, proxies and
    label margins, without its (n, D) embeddings and (r, C) class similarities (those of the
    newest epoch are all anything reads; the run folder has every epoch's on disk). Memory
    then stays flat however many epochs a run has."""
    margins = snap.margins if snap.margins is None else replace(snap.margins, sim=None)
    return replace(snap, embeddings=snap.embeddings[:0], train_embeddings=snap.train_embeddings[:0],
                   margins=margins)


@dataclass
class TrainResult:
    config: TrainConfig
    history: list[EpochSnapshot]
    stopped: bool
    model: torch.nn.Module
    loss_fn: LossBundle
    out_dir: Path | None
