"""How PotentialFieldLoss scales: forward+backward time and peak memory vs the number of
points (batch + proxies) from 200 to 4,000, each next to the Gram-matrix floor
(X @ X.T forward+backward of the same X), so the quadratic cost is visible.
Points: batch = n/10, the rest proxies (M = 15 per class), 512-d, float32; plus the
paper's Cars scale (B = 100, 98 classes x 15 proxies = 1,570 points, spec §5).

Memory on CPU: peak resident set growth (Linux /proc: VmHWM reset via clear_refs, glibc
told to return large blocks to the system); on CUDA: torch.cuda.max_memory_allocated.

CPU threads default to 1: on a shared machine, 2 OpenMP threads competing with other
processes made a 200-point step 100x slower than one thread. Pass --threads to change.

Usage: python bench/loss_scaling.py [--device cpu|cuda] [--repeats 5] [--threads 1]
       [--sizes 200 400 ...]
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import math
from pathlib import Path

import torch
from timing import median_seconds

from pfml_core.physics.loss import PotentialFieldLoss

SIZES = (200, 400, 800, 1600, 2400, 3200, 4000)
PAPER = (100, 98, 15)  # B, classes, proxies per class (Cars, spec §5)
DIM = 512


def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD fixed at 64 KiB: big blocks go back to the OS
        return libc
    except (OSError, AttributeError):
        return None


LIBC = _libc()


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(field)


def peak_mib(fn, device) -> float:
    """Peak extra memory of one fn() call in MiB (nan where it cannot be measured)."""
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    try:
        if LIBC is not None:
            LIBC.malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
        base = _rss_kib("VmRSS")
        fn()
        return (_rss_kib("VmHWM") - base) / 1024
    except OSError:
        return float("nan")


def cases(batch, classes, m, device):
    """The loss step and the Gram floor on the same (batch + classes*m, DIM) points."""
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(batch, DIM, generator=g).to(device).requires_grad_()
    labels = torch.randint(0, classes, (batch,), generator=g).to(device)
    loss = PotentialFieldLoss(classes, DIM, proxies_per_class=m).to(device)
    points = torch.cat([emb.detach(), loss.proxies.detach()]).requires_grad_()  # (B + N*M, D)

    def step():
        emb.grad = loss.proxies.grad = None
        loss(emb, labels).backward()

    def floor():
        points.grad = None
        (points @ points.T).sum().backward()

    return step, floor


def measure(batch, classes, m, repeats, device) -> dict:
    step, floor = cases(batch, classes, m, device)
    out = {"n": batch + classes * m, "B": batch, "P": classes * m}
    out["t_loss"], out["t_floor"] = median_seconds(step, repeats, device), median_seconds(floor, repeats, device)
    out["m_loss"], out["m_floor"] = peak_mib(step, device), peak_mib(floor, device)
    return out


def shapes(sizes):
    """(B, classes, M) with B = n/10 and the rest as M = 15 proxies per class."""
    for n in sizes:
        b = max(n // 10, 2)
        yield b, max((n - b) // 15, 1), 15


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    ap.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"{DIM}-d float32, forward+backward")
    head = f"{'points':>7} {'B':>5} {'proxies':>7} | {'loss ms':>8} {'floor ms':>8} {'x':>5} | " \
           f"{'loss MiB':>8} {'floor MiB':>9} {'x':>5}"
    print(head + "\n" + "-" * len(head))
    rows = []
    for b, c, m in [*shapes(args.sizes), PAPER]:
        r = measure(b, c, m, args.repeats, args.device)
        rows.append(r)
        tag = "  <- paper scale (Cars)" if (b, c, m) == PAPER else ""
        print(f"{r['n']:7d} {r['B']:5d} {r['P']:7d} | {r['t_loss'] * 1e3:8.1f} "
              f"{r['t_floor'] * 1e3:8.1f} {r['t_loss'] / r['t_floor']:5.2f} | {r['m_loss']:8.1f} "
              f"{r['m_floor']:9.1f} {r['m_loss'] / max(r['m_floor'], 1e-9):5.2f}{tag}")
    fit = [r for r in rows[:len(args.sizes)] if r["n"] >= 1600] or rows[:len(args.sizes)]
    if len(fit) > 1:
        logs = torch.tensor([[math.log(r["n"]), math.log(r["t_loss"])] for r in fit])
        slope = float(torch.linalg.lstsq(torch.stack([logs[:, 0], torch.ones(len(fit))], 1),
                                         logs[:, 1:]).solution[0])
        print(f"loss time ~ n^{slope:.2f} over n = {fit[0]['n']}..{fit[-1]['n']} "
              f"(2 = quadratic; below 2 while fixed per-call overheads still dominate)")
    return rows


if __name__ == "__main__":
    main()
