"""Run folders: config.json, metrics.csv (one row per finished epoch), checkpoint.pt (a dict of
state dicts + the config, loaded with weights_only=True) and embeddings/ (`write_epoch`), written
as epochs finish, so a stopped run keeps all finished epochs. Every file goes to a temp file of
its writer's own (pid + random token) and is os.replace'd into place: a reader never sees half a
file, two writers never share a temp file."""
from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from pfml_core.eval import label_margin
from pfml_core.training import budget
from pfml_core.training.snapshot import EpochSnapshot

METRIC_COLUMNS = ["epoch", "loss", "R@1", "R@2", "R@4", "R@8", "MAP@R", "R-precision",
                  "NMI", "W2", "seconds"]
EMB_DIR = "embeddings"
STATIC = ("labels", "train_labels", "train_true_labels", "train_flipped", "eval_index",
          "train_index", "proxy_labels")  # the same every epoch: static.npz
MARGIN_STATIC = tuple(k for k in label_margin.CONSTANT if k != "sim")


def runs_dir() -> Path:
    return Path(os.environ.get("PFML_RUNS_DIR", "runs"))


def new_run_dir(config, name: str | None = None) -> Path:
    """A new, empty folder runs_dir()/NAME, created here and so this caller's alone: NAME-2,
    NAME-3... when NAME is taken. NAME defaults to a time stamp plus loss and data names."""
    if name is None:
        data = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(config.data).stem)[:30]
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.loss}-{data}"
    root = runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    for i in itertools.count(1):
        path = root / (name if i == 1 else f"{name}-{i}")
        try:
            path.mkdir()  # atomic: exactly one caller creates it
        except FileExistsError:
            continue
        return path


def _replace(dest: Path, write: Callable) -> None:
    """write(binary file) into a temp file next to dest that no other writer uses, then
    os.replace it onto dest (atomic)."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _save(dest: Path, arrays: dict, compressed: bool = False) -> None:
    """Epoch files are stored, not deflated: float32 embeddings shrink ~7% for ~25x the time."""
    _replace(dest, lambda f: (np.savez_compressed if compressed else np.savez)(f, **arrays))


def start_run(out: Path, config) -> None:
    """Make out this run's folder: create it, drop an earlier run's files (a reused --out then
    holds this run alone, never a mix of two), write config.json. Missing files are fine."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stale = [out / "metrics.csv", out / "checkpoint.pt", out / "embeddings.npz"]
    for p in stale + sorted((out / EMB_DIR).glob("*.npz")):
        p.unlink(missing_ok=True)
    write_config(out, config)


def write_config(out: Path, config) -> None:
    Path(out).mkdir(parents=True, exist_ok=True)
    text = json.dumps(config.to_dict(), indent=2)
    _replace(Path(out) / "config.json", lambda f: f.write(text.encode()))


def metrics_row(snap: EpochSnapshot) -> dict:
    """One line of metrics.csv (small: the engine keeps these, not the arrays, to write it)."""
    return {"epoch": snap.epoch, "loss": snap.loss, **snap.metrics, "seconds": snap.seconds}


def write_metrics(out: Path, rows) -> None:
    """metrics.csv from rows: metrics_row dicts, or EpochSnapshots."""
    df = pd.DataFrame([r if isinstance(r, dict) else metrics_row(r) for r in rows])
    cols = [c for c in METRIC_COLUMNS if c in df] + [c for c in df if c not in METRIC_COLUMNS]
    text = df[cols].to_csv(index=False)
    _replace(Path(out) / "metrics.csv", lambda f: f.write(text.encode()))


def write_epoch(out: Path, snap: EpochSnapshot) -> None:
    """One finished epoch into out/embeddings: static.npz (what every epoch shares: labels,
    dataset rows, proxy labels, margin labels) with epoch 0 (or when missing), one
    epoch-0003.npz per epoch (its eval and training embeddings, proxies and label margins;
    written once, never rewritten) and margin_sim.npz (the newest epoch's class similarities,
    replaced each epoch): every epoch writes the same bytes however long the run. Needs this
    snapshot only; earlier epochs' files are left as they are."""
    d = Path(out) / EMB_DIR
    d.mkdir(parents=True, exist_ok=True)
    m = snap.margins
    if snap.epoch == 0 or not (d / "static.npz").is_file():
        static = {k: getattr(snap, k) for k in STATIC if getattr(snap, k) is not None}
        if m is not None:
            static.update({f"margin_{k}": getattr(m, k) for k in MARGIN_STATIC})
        _save(d / "static.npz", static, compressed=True)
    arrays = {"emb": snap.embeddings, "train_emb": snap.train_embeddings}
    if snap.proxies is not None:
        arrays["proxies"] = snap.proxies
    if m is not None:
        arrays.update({f"margin_{k}": getattr(m, k) for k in label_margin.PER_EPOCH})
        if m.sim is not None:  # before the epoch file: an epoch with margins has a sim
            _save(d / "margin_sim.npz", {"margin_sim": m.sim})
    _save(d / f"epoch-{snap.epoch:04d}.npz", arrays)


def save_checkpoint(out: Path, model, loss_fn, optimizer, config, epoch: int) -> None:
    state = {"model": model.state_dict(), "loss": loss_fn.state_dict(),
             "optimizer": optimizer.state_dict(), "config": config.to_dict(), "epoch": epoch}
    _replace(Path(out) / "checkpoint.pt", lambda f: torch.save(state, f))


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    return torch.load(Path(path), map_location=map_location, weights_only=True)


class Run(NamedTuple):
    config: object  # TrainConfig
    metrics: pd.DataFrame
    embeddings: dict


def _read(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def load_embeddings(path) -> dict:
    """A run folder's epochs as one dict of arrays, per-epoch ones stacked (emb (E, n, D),
    train_emb (E, m, D), proxies (E, P, D), margin_margin (E, r)...), the shared ones once,
    epochs (E,): from embeddings/ or from a single embeddings.npz holding every epoch
    stacked (the other layout load_run reads); {} with no epoch."""
    path = Path(path)
    d = path / EMB_DIR
    files = sorted((int(p.stem[6:]), p) for p in d.glob("epoch-*.npz") if p.stem[6:].isdigit())
    shared = [p for p in (d / "static.npz", d / "margin_sim.npz", path / "embeddings.npz")
              if p.is_file()]
    budget.check_files([p for _, p in files] + shared, f"run {path.name}")  # before reading
    if files and (d / "static.npz").is_file():
        out = _read(d / "static.npz")
        out["epochs"] = np.array([e for e, _ in files])
        for i, (_, p) in enumerate(files):  # filled in place: one epoch's copy at a time
            for k, v in _read(p).items():
                if i == 0:
                    out[k] = np.empty((len(files),) + v.shape, v.dtype)
                out[k][i] = v
        if (d / "margin_sim.npz").is_file():
            out.update(_read(d / "margin_sim.npz"))
        return out
    e = path / "embeddings.npz"
    return _read(e) if e.is_file() else {}


def load_run(path) -> Run:
    """Reopen a run folder: (config, metrics DataFrame, embeddings dict of arrays)."""
    from pfml_core.training.config import TrainConfig

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"{path} is not a run folder (no config.json)")
    config = TrainConfig.from_dict(json.loads((path / "config.json").read_text()))
    m = path / "metrics.csv"
    metrics = pd.read_csv(m) if m.is_file() else pd.DataFrame(columns=METRIC_COLUMNS)
    return Run(config, metrics, load_embeddings(path))


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
            epoch=int(epoch), loss=float(row.get("loss", float("nan"))), metrics=metrics,
            embeddings=e["emb"][i], labels=e["labels"], train_embeddings=e["train_emb"][i],
            train_labels=e["train_labels"], train_true_labels=e["train_true_labels"],
            train_flipped=e["train_flipped"], proxies=e["proxies"][i] if "proxies" in e else None,
            proxy_labels=e.get("proxy_labels"), seconds=float(row.get("seconds", float("nan"))),
            eval_index=e.get("eval_index"), train_index=e.get("train_index"),
            margins=margins[i] if margins else None))
    return out
