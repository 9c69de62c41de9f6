"""Run folders: config.json, metrics.csv (one row per finished epoch), checkpoint.pt (a dict
of state dicts + the config, loaded with weights_only=True) and embeddings.npz (every
epoch's evaluation embeddings and proxies). Written as epochs finish, so a stopped run
keeps all finished epochs."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from pfml_core.eval import label_margin
from pfml_core.training.snapshot import EpochSnapshot

METRIC_COLUMNS = ["epoch", "loss", "R@1", "R@2", "R@4", "R@8", "MAP@R", "R-precision",
                  "NMI", "W2", "seconds"]


def runs_dir() -> Path:
    return Path(os.environ.get("PFML_RUNS_DIR", "runs"))


def new_run_dir(config, name: str | None = None) -> Path:
    """runs_dir()/NAME, default a time stamp plus loss and data names."""
    if name is None:
        data = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(config.data).stem)[:30]
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.loss}-{data}"
    return runs_dir() / name


def write_config(out: Path, config) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))


def write_metrics(out: Path, history) -> None:
    rows = [{"epoch": s.epoch, "loss": s.loss, **s.metrics, "seconds": s.seconds}
            for s in history]
    df = pd.DataFrame(rows)
    cols = [c for c in METRIC_COLUMNS if c in df] + [c for c in df if c not in METRIC_COLUMNS]
    df[cols].to_csv(out / "metrics.csv", index=False)


def write_embeddings(out: Path, history) -> None:
    """Stack every snapshot's arrays: emb (E, n, D), train_emb (E, m, D), proxies (E, P, D)."""
    last = history[-1]
    arrays = {"epochs": np.array([s.epoch for s in history]),
              "emb": np.stack([s.embeddings for s in history]), "labels": last.labels,
              "train_emb": np.stack([s.train_embeddings for s in history]),
              "train_labels": last.train_labels, "train_true_labels": last.train_true_labels,
              "train_flipped": last.train_flipped,
              "eval_index": last.eval_index, "train_index": last.train_index}
    if last.proxies is not None:
        arrays["proxies"] = np.stack([s.proxies for s in history])
        arrays["proxy_labels"] = last.proxy_labels
    if last.margins is not None:
        arrays.update(label_margin.to_arrays([s.margins for s in history]))
    tmp = out / "embeddings.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out / "embeddings.npz")  # atomic: a reader never sees half a file


def save_checkpoint(out: Path, model, loss_fn, optimizer, config, epoch: int) -> None:
    state = {"model": model.state_dict(), "loss": loss_fn.state_dict(),
             "optimizer": optimizer.state_dict(), "config": config.to_dict(), "epoch": epoch}
    torch.save(state, out / "checkpoint.tmp.pt")
    (out / "checkpoint.tmp.pt").replace(out / "checkpoint.pt")


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    return torch.load(Path(path), map_location=map_location, weights_only=True)


class Run(NamedTuple):
    config: object  # TrainConfig
    metrics: pd.DataFrame
    embeddings: dict


def load_run(path) -> Run:
    """Reopen a run folder: (config, metrics DataFrame, embeddings dict of arrays)."""
    from pfml_core.training.config import TrainConfig

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"{path} is not a run folder (no config.json)")
    config = TrainConfig.from_dict(json.loads((path / "config.json").read_text()))
    m = path / "metrics.csv"
    metrics = pd.read_csv(m) if m.is_file() else pd.DataFrame(columns=METRIC_COLUMNS)
    e = path / "embeddings.npz"
    emb = {}
    if e.is_file():
        with np.load(e, allow_pickle=False) as f:
            emb = {k: f[k] for k in f.files}
    return Run(config, metrics, emb)


def list_runs(root: Path | None = None) -> list[dict]:
    """Run folders under root (default runs_dir()), newest first, with a one-line summary."""
    root = runs_dir() if root is None else Path(root)
    out = []
    for cfg in root.glob("*/config.json") if root.is_dir() else []:
        try:
            c = json.loads(cfg.read_text())
            m = pd.read_csv(cfg.parent / "metrics.csv") if (cfg.parent / "metrics.csv").is_file() else None
        except (ValueError, OSError):
            continue  # a half-written or foreign folder: skip it
        last = m.iloc[-1] if m is not None and len(m) else {}
        out.append({"name": cfg.parent.name, "path": str(cfg.parent), "data": c.get("data"),
                    "loss": c.get("loss"), "noise": c.get("noise"),
                    "epochs": int(last.get("epoch", 0)) if len(m if m is not None else []) else 0,
                    "R@1": float(last.get("R@1", float("nan"))) if len(last) else float("nan"),
                    "mtime": cfg.stat().st_mtime})
    return sorted(out, key=lambda r: -r["mtime"])


def snapshots(run: Run) -> list:
    """A reopened run's epochs as EpochSnapshot objects (what train() handed out)."""
    e, m = run.embeddings, run.metrics
    if not e:
        return []
    out, margins = [], label_margin.from_arrays(e)
    for i, epoch in enumerate(e["epochs"]):
        row = m[m["epoch"] == epoch].iloc[0].to_dict() if (m["epoch"] == epoch).any() else {}
        metrics = {k: float(v) for k, v in row.items() if k not in ("epoch", "loss", "seconds")}
        out.append(EpochSnapshot(
            int(epoch), float(row.get("loss", float("nan"))), metrics, e["emb"][i], e["labels"],
            e["train_emb"][i], e["train_labels"], e["train_true_labels"], e["train_flipped"],
            e["proxies"][i] if "proxies" in e else None, e.get("proxy_labels"),
            float(row.get("seconds", float("nan"))), e["eval_index"], e["train_index"],
            margins[i] if margins else None))
    return out
