"""One playground frame = Psi_j on a 60x60 grid + forces on 200 samples and 20 proxies,
timed against a bare torch.cdist of the same sizes in the same run (ratio = frame / cdist).
Usage: python bench/field_speed.py [--repeats 50]"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pfml_core.playground import descent
from pfml_core.playground.scene import Scene

GRID, SAMPLES, PROXIES, CLASSES = 60, 200, 20, 5


def _scene(seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(CLASSES), SAMPLES // CLASSES)
    pts = (rng.standard_normal((SAMPLES, 2)) + 2 * labels[:, None]).astype(np.float32)
    return Scene(pts, labels, labels, np.zeros(SAMPLES, bool), np.zeros(SAMPLES, np.int64),
                 rng.standard_normal((PROXIES, 2)).astype(np.float32),
                 np.repeat(np.arange(CLASSES), PROXIES // CLASSES))


def _best_ms(fn, repeats: int) -> float:
    """Median of `repeats` timings in ms, after two warm-up calls."""
    fn(), fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    scene, dyn = _scene(), descent.Dynamics()
    frame = descent.initial_frame(scene, dyn)
    view = descent.bounds(scene)
    grid = torch.tensor(np.stack(np.meshgrid(*descent.grid_axes(view, GRID)), -1).reshape(-1, 2))
    src = torch.tensor(np.concatenate([frame.points, frame.proxies]))  # (220, 2)

    def bare():  # the same pairs as one frame: grid x sources and sources x sources
        torch.cdist(grid, src), torch.cdist(src, src)

    def one_frame():
        descent.field_on_grid(scene, frame, 0, dyn, *descent.grid_axes(view, GRID))
        descent.point_forces(scene, frame, dyn)

    def one_step():
        descent.step(scene, frame, dyn)

    with torch.no_grad():
        t_bare = _best_ms(bare, args.repeats)
    t_frame, t_step = _best_ms(one_frame, args.repeats), _best_ms(one_step, args.repeats)
    print(f"torch threads: {torch.get_num_threads()}, grid {GRID}x{GRID}, "
          f"{SAMPLES} samples + {PROXIES} proxies")
    print(f"bare cdist (same sizes):  {t_bare:7.2f} ms")
    print(f"frame (field + forces):   {t_frame:7.2f} ms   ratio {t_frame / t_bare:5.1f}x  "
          f"(target < 30 ms and <= 3x)")
    print(f"descent step (autograd):  {t_step:7.2f} ms")


if __name__ == "__main__":
    main()
