"""Shared timing helper of the bench scripts (run as `python bench/NAME.py`)."""
from __future__ import annotations

import time

import torch

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def median_seconds(fn, repeats: int, device: str = "cpu", warmup: int = 1,
                   clock: str = "wall") -> float:
    """Median time of fn() over `repeats` calls after `warmup` calls, synchronising CUDA
    around each call so GPU work is counted. clock="cpu" counts this process's CPU time
    (all its threads): on a shared CPU machine it ignores other processes' load, which
    wall time does not; use it for CPU-only work."""
    now = CLOCKS[clock]
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t = now()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(now() - t)
    return sorted(times)[len(times) // 2]


def interleaved_medians(fns: dict, repeats: int, device: str = "cpu", warmup: int = 1,
                        clock: str = "wall") -> dict:
    """{name: median seconds}, the calls taken in turns (a, b, c, a, b, c, ...) so that a
    burst of load elsewhere hits every case alike: ratios stay fair on a busy machine."""
    now, times = CLOCKS[clock], {name: [] for name in fns}
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            if device == "cuda":
                torch.cuda.synchronize()
            t = now()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            times[name].append(now() - t)
    return {name: sorted(v)[len(v) // 2] for name, v in times.items()}
