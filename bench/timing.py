"""Shared timing helper of the bench scripts (run as `python bench/NAME.py`)."""
from __future__ import annotations

import time

import torch


def median_seconds(fn, repeats: int, device: str = "cpu", warmup: int = 1) -> float:
    """Median wall time of fn() over `repeats` calls after `warmup` calls, synchronising
    CUDA around each call so GPU work is counted."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]
