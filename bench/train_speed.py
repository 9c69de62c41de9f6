"""Training speed, as ratios measured in one run on one machine:
1. seconds per training epoch on MNIST-5k, PFML vs Proxy Anchor with the same model
   (target: PFML at most 1.5x Proxy Anchor);
2. UMAP of 2,500 embeddings + proxies: first call in this process (numba compiles) vs a warm
   call, and a warm-started map (what the app computes for each epoch after the first).
Usage: python bench/train_speed.py [--epochs 2] [--max-batches N] [--device auto]"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pfml_core.eval import projection  # noqa: E402  (sets NUMBA_CACHE_DIR before umap loads)
from pfml_core.training.engine import TrainConfig, resolve_device, train  # noqa: E402


def epoch_seconds(loss: str, epochs: int, max_batches: int | None, device: str) -> float:
    """Median wall time of the optimisation part of an epoch (evaluation excluded)."""
    marks: dict[int, list[float]] = {}
    state = {"epoch": 0}

    def on_snapshot(s):
        state["epoch"] = s.epoch + 1
        marks[state["epoch"]] = [time.perf_counter()]

    def on_batch(i, n, _loss):
        if i == n:
            marks[state["epoch"]].append(time.perf_counter())

    cfg = TrainConfig(data="mnist5k", loss=loss, model="cnn", epochs=epochs, eval_subset=200,
                      max_batches_per_epoch=max_batches, device=device)
    train(cfg, callback=on_snapshot, on_batch=on_batch)
    return float(np.median([m[1] - m[0] for m in marks.values() if len(m) == 2]))


def umap_seconds(n: int = 2500, proxies: int = 25, dim: int = 64) -> tuple[float, float, float]:
    """(first call, warm cold-start call, warm-started call) seconds."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, dim))
    pts = centers[rng.integers(0, 10, n + proxies)] + 0.5 * rng.normal(size=(n + proxies, dim))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    times = []
    previous = None
    for start in (None, None, "previous"):
        t0 = time.perf_counter()
        previous = projection.project(pts, "umap", previous if start else None)
        times.append(time.perf_counter() - t0)
    return times[0], times[1], times[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-batches", type=int, default=None)
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    print(f"device: {resolve_device(a.device)}")
    pa = epoch_seconds("proxy_anchor", a.epochs, a.max_batches, a.device)
    pf = epoch_seconds("pfml", a.epochs, a.max_batches, a.device)
    print(f"MNIST-5k epoch, small CNN: Proxy Anchor {pa:.3f} s, PFML {pf:.3f} s, "
          f"ratio {pf / pa:.2f}x (target <= 1.5x) -> {'OK' if pf / pa <= 1.5 else 'OVER'}")
    first, warm, started = umap_seconds()
    print(f"UMAP 2,500 embeddings + 25 proxies: first call {first:.2f} s, warm call {warm:.2f} s "
          f"(ratio {first / warm:.1f}x), warm-started from the previous map {started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
