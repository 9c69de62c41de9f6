"""Small named checks for public inputs: each raises ValueError naming the argument,
its value and the allowed range (validate -> compute -> reduce). Shape and dtype checks
are free; checks of tensor values read data back to the host (a sync on a GPU), so the
tensor checks take `values` and `value_checks` says when to run them."""
from __future__ import annotations

import math
import numbers
import os

import torch


def check_positive(name: str, value: float) -> float:
    """A finite number > 0 (alpha, delta, eps, step sizes)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number > 0, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_range(name: str, value: float, low: float, high: float) -> float:
    """A finite number in [low, high]."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}") from None
    if not (math.isfinite(v) and low <= v <= high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return v


def check_int(name: str, value: int, low: int = 0, high: int | None = None) -> int:
    """An integer in [low, high] (high None = unbounded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    v = int(value)
    if v < low or (high is not None and v > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    return v


def env_count(name: str, default: int) -> int:
    """An operator's cap from the environment variable `name`: a whole number >= 1, or
    `default` when it is unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return n


def check_choice(name: str, value: str, choices) -> str:
    """One of a fixed set of names."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def value_checks(check: bool | None, x: torch.Tensor) -> bool:
    """Whether to check tensor values: `check` when given, else only for CPU tensors
    (on a GPU, reading a value back stalls the queue of kernels: a host sync)."""
    return bool(check) if check is not None else x.device.type == "cpu"


def check_points(name: str, x: torch.Tensor, dim: int | None = None,
                 values: bool = True) -> torch.Tensor:
    """A floating tensor of shape (..., N, D); finite entries when values=True."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, D), got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (N, D), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor (float32/float64), got {x.dtype}")
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(f"{name} must have last dimension {dim}, got shape {tuple(x.shape)}")
    if values and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values; all entries must be finite")
    return x


def check_labels(name: str, labels: torch.Tensor, n: int, num_classes: int | None = None,
                 values: bool = True):
    """Integer class labels of shape (n,); each in [0, num_classes) when values=True."""
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of integer labels, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class ids, got dtype {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the points, got {tuple(labels.shape)}")
    if not (values and n):
        return labels.long()
    if labels.min() < 0:
        raise ValueError(f"{name} must be >= 0, got min {int(labels.min())}")
    if num_classes is not None and labels.max() >= num_classes:
        raise ValueError(
            f"{name} must be in [0, {num_classes - 1}] (num_classes={num_classes}), "
            f"got max {int(labels.max())}"
        )
    return labels.long()
