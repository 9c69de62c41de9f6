"""A run's resource budget: its peak memory and the disk its run folder takes, estimated
from the settings and the data's size alone (no tensor is made), and refused before the
run starts with a message that names the setting to lower and the budget:
PFML_MAX_RUN_MEMORY (default 2 GiB) and PFML_MAX_RUN_DISK (default 512 MiB), each a number
of MiB or a size such as 4G / 800M. The estimates are generous upper bounds from the
arrays the engine, the PFML kernel and the evaluation make (tests/training/test_budget.py)."""
from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass

import numpy as np

from pfml_core.physics.kernel import BLOCK_ELEMENTS

MAX_RUN_MEMORY = 2048  # MiB: a 2-core, 8 GB classroom server runs two trainings and the app
MAX_RUN_DISK = 512     # MiB: one run folder (every epoch file, the checkpoint)
BASE = 512 * 2**20     # a training process with torch, its libraries and the evaluation's loaded
F32, MIB = 4, 2**20
OPEN_PER_EPOCH = 9  # a reopened run's map: projections of one epoch's points, in float64
UNITS = {"": MIB, "k": 2**10, "m": MIB, "g": 2**30, "t": 2**40}
# the engine's sizes, defined here (the engine and loaders import them) so the estimate
# follows what a run makes
FULL_METRICS_ROWS = 20000  # above this, Recall@K only, chunked (no N x N matrix)
MARGIN_ROWS = 20000  # in-memory training sets up to this size: label margins of every row
SNAPSHOT_ROWS = 4000  # held-out embeddings kept per epoch (the UMAP view); metrics use all
EVAL_BATCH = 256      # images per forward pass when embedding
BUNDLED = {  # (one sample's shape, rows per class): sizes the bundled sets before loading
    "digits": ((1, 8, 8), (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)),
    "mnist5k": ((1, 28, 28), (500,) * 10),
}


@dataclass(frozen=True)
class DataShape:
    """What the estimate needs of a run's data: its split's sizes, never its values."""
    train_rows: int
    test_rows: int
    train_classes: int
    largest_class: int  # training rows of the largest training class
    input_shape: tuple  # one sample, (F,) or (C, H, W)
    in_memory: bool = True  # arrays (bundled sets, user files), not benchmark image files


def limit(name: str) -> int:
    """Bytes of PFML_<name> (MAX_RUN_MEMORY, MAX_RUN_DISK): MiB, or a size like 4G."""
    raw = os.environ.get(f"PFML_{name}", "").strip()
    if not raw:
        return globals()[name] * MIB
    m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?", raw.lower())
    if m is None or not float(m.group(1)) > 0:
        raise ValueError(f"PFML_{name} must be a size such as 2048 (MiB), 800M or 4G, got {raw!r}")
    return int(float(m.group(1)) * UNITS[m.group(2)])


def shape_of(train, test, input_shape, in_memory: bool = True) -> DataShape:
    """From the engine's split (pfml_core.data Dataset records)."""
    counts = np.bincount(np.asarray(train.y)) if len(train.y) else np.zeros(1, int)
    return DataShape(len(train.y), len(test.y), max(int(train.num_classes), 1),
                     int(counts.max()), tuple(input_shape), in_memory)


def split_shape(input_shape, class_counts, split: str) -> DataShape:
    """What split(data, split) would give, from the class sizes alone (no copy of X)."""
    counts = np.asarray(class_counts)
    if split == "zero-shot":
        tr, te = counts[:len(counts) // 2], counts[len(counts) // 2:]
        return DataShape(int(tr.sum()), int(te.sum()), len(tr), int(tr.max(initial=1)),
                         tuple(input_shape))
    half = -(-counts // 2)  # a stratified half, rounded up on both sides
    return DataShape(int(half.sum()), int(half.sum()), len(counts), int(half.max(initial=1)),
                     tuple(input_shape))


def dataset_shape(dataset, split: str) -> DataShape:
    return split_shape(dataset.X.shape[1:], np.unique(dataset.y, return_counts=True)[1], split)


def bundled_shape(data: str, split: str) -> DataShape | None:
    """A bundled set's split, known without loading it; None for any other data."""
    if data not in BUNDLED:
        return None
    shape, counts = BUNDLED[data]
    return split_shape(shape, counts, split)


@functools.lru_cache(maxsize=64)
def model_size(model: str, input_shape: tuple, embedding_size: int) -> tuple[int, int, int]:
    """(parameters, activations per sample summed over layers, largest layer's) of the
    network, built and run on torch's meta device: shapes only, no memory."""
    import torch

    from pfml_core.training.models import EmbeddingNet, build_model, mlp_trunk, resolve

    with torch.device("meta"):
        if resolve(model, input_shape) == "mlp":
            net = EmbeddingNet(*mlp_trunk(math.prod(input_shape)), embedding_size)
        else:
            net = build_model(model, input_shape, embedding_size)
        sizes = []
        hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o[0].numel()))
                 for m in net.modules() if not list(m.children())]
        try:
            net(torch.empty((2,) + tuple(input_shape)))
        except RuntimeError:  # what the real network would raise at its first batch
            raise ValueError(f"model {model!r} cannot take inputs of shape "
                             f"{tuple(input_shape)}") from None
    for h in hooks:
        h.remove()
    return sum(p.numel() for p in net.parameters()), sum(sizes), max(sizes, default=1)


def _per_class(config) -> int:
    """Proxies per class of the run's loss: PFML's setting, one for PML's proxy losses."""
    from pfml_core import guards
    from pfml_core.training.losses import LOSSES

    spec = LOSSES[config.loss]
    if not spec.has_proxies:
        return 0
    per = config.loss_params.get("proxies_per_class", spec.default_params.get("proxies_per_class", 1))
    return guards.check_int("proxies_per_class", per, 0)


def _proxies(config, classes: int) -> int:
    return classes * _per_class(config)


def _on_host(config) -> bool:
    """Whether the model's tensors live in this machine's memory (CPU training)."""
    import torch

    d = str(config.device)
    return d == "cpu" or (d == "auto" and not torch.cuda.is_available())


def estimate(config, shape: DataShape) -> tuple[dict, dict]:
    """(memory, disk) in bytes, each split by the setting that drives it."""
    D, S = config.embedding_size, shape
    params, acts, widest = model_size(config.model, S.input_shape, D)
    P = _proxies(config, S.train_classes)
    B = min(config.classes_per_batch, S.train_classes) * config.samples_per_class
    evals = min(config.eval_subset, S.test_rows)
    view = min(config.eval_subset, S.train_rows, SNAPSHOT_ROWS)
    rows = S.train_rows if S.in_memory and S.train_rows <= MARGIN_ROWS else view
    eval_batch = min(EVAL_BATCH, max(evals, view, 1))  # embedding runs in batches of these
    host = _on_host(config)  # on a GPU the model, batch and kernel use its own memory
    n = B + P  # points of the PFML kernel: the batch and every proxy, all pairs
    mem = {
        "the data set": 2 * (S.train_rows + S.test_rows) * math.prod(S.input_shape) * F32
        * S.in_memory + B * math.prod(S.input_shape) * F32,
        "model": 4 * params * F32 * host + eval_batch * widest * 3 * F32 * host,
        # margins: (rows, P) cosines, then a class's columns at a time; W2: float64 costs
        "proxies_per_class": P * D * F32 * 4 * host + rows * P * F32 * 5 // 4
        + 3 * 8 * min(S.largest_class, view) * (P // max(S.train_classes, 1)),
        "classes_per_batch x samples_per_class": B * acts * 2 * F32 * host,
        "eval_subset": (evals ** 2 * 12 if evals <= FULL_METRICS_ROWS else 0)
        + (evals + 2 * view) * D * F32 + rows * S.train_classes * F32 * 3,
    }
    # the kernel: (n, D) copies, and blocks of at least one row of n per buffer
    kernel = (8 * n * D + 6 * max(BLOCK_ELEMENTS["cpu"], n)) * F32 * host
    mem["proxies_per_class" if P > B else "classes_per_batch x samples_per_class"] += kernel
    epochs = config.epochs + 1
    disk = {
        "proxies_per_class": P * D * F32 * (epochs + 3),
        "eval_subset": epochs * ((min(evals, SNAPSHOT_ROWS) + view) * D * F32 + rows * 12)
        + rows * S.train_classes * F32 + (evals + view + rows) * 40,
        "model": 3 * params * F32,
    }
    return mem, disk


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / MIB:,.0f} MiB"


def _blame(config, part: str, shape: DataShape) -> str:
    if part == "proxies_per_class":
        return (f"proxies_per_class={_per_class(config)} "
                f"({_proxies(config, shape.train_classes):,} proxies)")
    if part.startswith("classes_per_batch"):
        b = min(config.classes_per_batch, shape.train_classes) * config.samples_per_class
        return f"classes_per_batch x samples_per_class (a batch of {b:,})"
    if part == "eval_subset":
        return f"eval_subset={config.eval_subset}"
    if part == "model":
        return f"model={config.model}"
    return f"the data set ({shape.train_rows + shape.test_rows:,} samples)"


def check(config, shape: DataShape, disk: bool = True) -> None:
    """Raise ValueError when the run would pass PFML_MAX_RUN_MEMORY or, writing a run
    folder (disk=True), PFML_MAX_RUN_DISK; the message names the largest part's setting."""
    mem, files = estimate(config, shape)
    total, cap = BASE + sum(mem.values()), limit("MAX_RUN_MEMORY")
    if total > cap:
        part = max(mem, key=mem.get)
        raise ValueError(f"this run would need about {_size(total)} of memory, over the "
                         f"{_size(cap)} per run (PFML_MAX_RUN_MEMORY); most of it for "
                         f"{_blame(config, part, shape)}: lower it")
    total, cap = sum(files.values()), limit("MAX_RUN_DISK")
    if disk and total > cap:
        part = max(files, key=files.get)
        raise ValueError(f"this run would write about {_size(total)} to disk over "
                         f"{config.epochs} epochs, over the {_size(cap)} per run "
                         f"(PFML_MAX_RUN_DISK); most of it for {_blame(config, part, shape)}: "
                         "lower it or the epochs")


def check_files(paths, what: str) -> None:
    """Refuse to open a past run whose arrays (.npz members, uncompressed) would pass
    PFML_MAX_RUN_MEMORY: all of them stacked twice over while read, plus OPEN_PER_EPOCH x
    the largest file for its map (measured: 497 MiB of files of a 1M-proxy run grew the
    server by 3.1 GiB)."""
    import zipfile

    sizes = []
    for p in paths:
        try:
            with zipfile.ZipFile(p) as z:
                sizes.append(sum(i.file_size for i in z.infolist()))
        except (zipfile.BadZipFile, OSError):
            sizes.append(os.path.getsize(p))
    need, cap = 2 * sum(sizes) + OPEN_PER_EPOCH * max(sizes, default=0), limit("MAX_RUN_MEMORY")
    if need > cap:
        raise ValueError(f"{what} would take about {_size(need)} to open ({_size(sum(sizes))} "
                         f"of arrays), over the {_size(cap)} per run (PFML_MAX_RUN_MEMORY): "
                         "it is not opened")
