"""Run folder writes, old vs new, measured in one run on one machine: a synthetic SOP-sized
snapshot stream (default 10k eval x 512-D, 4k training rows, 2k proxies, label margins of the
4k rows against 200 classes; epochs 0..4) written
  old: every epoch restacks and recompresses ALL past epochs into one embeddings.npz
       (the writer before per-epoch files, reimplemented here);
  new: run_folder.write_epoch, one epoch-NNNN.npz per epoch (+ static.npz once,
       margin_sim.npz replaced).
Prints MiB and seconds per write, epoch 1 vs the last, and total MiB written old/new (the
ratio grows with the number of epochs: old is quadratic, new linear). The old writer
deflates, the new stores (float32 embeddings deflate by ~7% for ~25x the time), so the
seconds of deflating each new epoch file in memory are shown too, the like-for-like match.
Usage: python bench/run_folder_writes.py [--epochs 4] [--eval 10000] [--dim 512]"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pfml_core.eval import label_margin  # noqa: E402
from pfml_core.eval.label_margin import TrainMargins  # noqa: E402
from pfml_core.training import run_folder as runs  # noqa: E402
from pfml_core.training.snapshot import EpochSnapshot  # noqa: E402

MiB = 2 ** 20


def snapshot(epoch: int, n: int, m: int, D: int, P: int, C: int) -> EpochSnapshot:
    fix, rng = np.random.default_rng(0), np.random.default_rng(epoch + 1)

    def unit(k):
        x = rng.standard_normal((k, D), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    tl = fix.integers(0, C, m)
    sim = rng.random((m, C), dtype=np.float32) * 2 - 1
    margin, rival = label_margin.margin_and_rival(sim, tl)
    flipped = np.zeros(m, bool)
    return EpochSnapshot(epoch, 0.5, {"R@1": 0.5}, unit(n), fix.integers(0, C, n), unit(m), tl,
                         tl, flipped, unit(P), np.arange(P) % C, 1.0, np.arange(n), np.arange(m),
                         TrainMargins(margin, rival, sim, tl, tl, flipped, np.arange(m)))


def old_write(out: Path, history) -> None:
    """The old writer (run_folder.write_embeddings before per-epoch files)."""
    last = history[-1]
    arrays = {"epochs": np.array([s.epoch for s in history]),
              "emb": np.stack([s.embeddings for s in history]), "labels": last.labels,
              "train_emb": np.stack([s.train_embeddings for s in history]),
              "train_labels": last.train_labels, "train_true_labels": last.train_true_labels,
              "train_flipped": last.train_flipped,
              "eval_index": last.eval_index, "train_index": last.train_index,
              "proxies": np.stack([s.proxies for s in history]), "proxy_labels": last.proxy_labels}
    arrays.update(label_margin.to_arrays([s.margins for s in history]))
    np.savez_compressed(out / "embeddings.tmp.npz", **arrays)
    (out / "embeddings.tmp.npz").replace(out / "embeddings.npz")


def sizes(out: Path) -> dict:
    return {p: (p.stat().st_ino, p.stat().st_size) for p in out.rglob("*") if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--eval", type=int, default=10000)
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--proxies", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=200)
    a = ap.parse_args()
    shape = (a.eval, a.train, a.dim, a.proxies, a.classes)
    print(f"synthetic stream: eval {a.eval}x{a.dim}, train {a.train}x{a.dim}, proxies "
          f"{a.proxies}x{a.dim}, margins {a.train} rows x {a.classes} classes; "
          f"epochs 0..{a.epochs}")
    rows = []  # (epoch, old MiB, old s, new MiB, new s, new s if deflated)
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp) / "old", Path(tmp) / "new"
        old.mkdir()
        new.mkdir()
        history = []  # the old writer needs every past epoch in memory; the new one does not
        for epoch in range(a.epochs + 1):
            snap = snapshot(epoch, *shape)
            history.append(snap)
            t0 = time.perf_counter()
            old_write(old, history)
            t_old = time.perf_counter() - t0
            before = sizes(new)
            t0 = time.perf_counter()
            runs.write_epoch(new, snap)
            t_new = time.perf_counter() - t0
            with np.load(new / "embeddings" / f"epoch-{epoch:04d}.npz") as f:
                arrays = {k: f[k] for k in f.files}
            t0 = time.perf_counter()  # the same epoch file deflated, in memory: like for like
            np.savez_compressed(io.BytesIO(), **arrays)
            t_deflate = time.perf_counter() - t0
            after = sizes(new)
            new_bytes = sum(s for p, (_, s) in after.items() if before.get(p) != after[p])
            rows.append((epoch, (old / "embeddings.npz").stat().st_size / MiB, t_old,
                         new_bytes / MiB, t_new, t_deflate))
        folder_old = sum(s for _, s in sizes(old).values()) / MiB
        folder_new = sum(s for _, s in sizes(new).values()) / MiB
        same = all(np.array_equal(x, y) for x, y in zip(
            (v for _, v in sorted(runs.load_embeddings(old).items())),
            (v for _, v in sorted(runs.load_embeddings(new).items()))))
    print(f"{'epoch':>5}  {'old MiB':>8}  {'old s':>6}  {'new MiB':>8}  {'new s':>6}  "
          f"{'new s if deflated':>17}")
    for r in rows:
        print(f"{r[0]:>5}  {r[1]:8.1f}  {r[2]:6.2f}  {r[3]:8.1f}  {r[4]:6.2f}  {r[5]:17.2f}")
    f, l = rows[1], rows[-1]  # epoch 0 of the new layout also writes static.npz
    print(f"epoch 1 vs epoch {l[0]}: old {f[1]:.1f} -> {l[1]:.1f} MiB, {f[2]:.2f} -> {l[2]:.2f} s "
          f"per write; new {f[3]:.1f} -> {l[3]:.1f} MiB, {f[4]:.2f} -> {l[4]:.2f} s per write")
    tot_old, tot_new = sum(r[1] for r in rows), sum(r[3] for r in rows)
    s_old, s_new, s_def = (sum(r[i] for r in rows) for i in (2, 4, 5))
    print(f"total written: old {tot_old:.1f} MiB in {s_old:.1f} s, new {tot_new:.1f} MiB in "
          f"{s_new:.2f} s: old/new = {tot_old / tot_new:.2f}x bytes, {s_old / s_new:.1f}x time "
          f"({s_old / s_def:.1f}x if the new files were deflated too)")
    print(f"final folder: old {folder_old:.1f} MiB, new {folder_new:.1f} MiB; "
          f"both reload to the same arrays: {same}")


if __name__ == "__main__":
    main()
