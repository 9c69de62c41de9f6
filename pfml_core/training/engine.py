"""The one training engine, for every loss: the app, the CLI and the noise lab call train().
It reads top to bottom: prepare data -> build model and loss -> evaluate the untrained
network (epoch 0) -> for each epoch: steps, evaluate, record, checkpoint.

Under torchrun the same code runs once per rank (pfml_core.training.distributed): every rank draws
the same global class-balanced batch and embeds its slice, the loss sees ALL ranks'
embeddings, proxies stay identical, evaluation is sharded, and rank 0 alone writes."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from pfml_core.training import losses as baselines
from pfml_core.training import distributed
from pfml_core.training import run_folder as runs
from pfml_core.data import batch_transforms as transforms
from pfml_core.data.benchmarks import BENCHMARKS, benchmark_datasets
from pfml_core.data.bundled import load_dataset
from pfml_core.data.dataset import Dataset, split, with_noise
from pfml_core.eval.metrics import proxy_w2, retrieval_metrics
from pfml_core.training.models import build_model, resolve
from pfml_core.training.sampler import DistributedClassBalancedSampler
from pfml_core.eval.retrieval import chunked_recall_at_k
from pfml_core.training.config import TrainConfig

__all__ = ["TrainConfig", "EpochSnapshot", "TrainResult", "train", "resolve_device"]
SNAPSHOT_ROWS = 4000  # held-out embeddings kept per epoch (the UMAP view); metrics use all
FULL_METRICS_ROWS = 20000  # above this, Recall@K only, chunked (no N x N matrix)


@dataclass
class EpochSnapshot:
    epoch: int
    loss: float
    metrics: dict[str, float]
    embeddings: np.ndarray          # (n, D) eval subset (held-out samples)
    labels: np.ndarray              # (n,)
    train_embeddings: np.ndarray    # (m, D) subset of training samples
    train_labels: np.ndarray        # (m,) labels used in training (noisy)
    train_true_labels: np.ndarray   # (m,)
    train_flipped: np.ndarray       # (m,) bool
    proxies: np.ndarray | None      # (P, D) L2-normalised
    proxy_labels: np.ndarray | None  # (P,)
    seconds: float
    eval_index: np.ndarray = field(default=None)   # (n,) rows of the source dataset
    train_index: np.ndarray = field(default=None)  # (m,) rows of the source dataset


@dataclass
class TrainResult:
    config: TrainConfig
    history: list[EpochSnapshot]
    stopped: bool
    model: torch.nn.Module
    loss_fn: baselines.LossBundle
    out_dir: Path | None


@dataclass
class Prepared:
    train: Dataset       # noisy labels in y, true labels in true_y
    test: Dataset
    eval_rows: np.ndarray  # fixed rows of test embedded every epoch
    view_rows: np.ndarray  # fixed rows of train embedded every epoch
    augment: bool
    view_X: object = None  # what view_rows index: train.X, or its test-transform twin (lazy)
    keep: np.ndarray = None  # positions in eval_rows kept in snapshots (at most SNAPSHOT_ROWS)


def resolve_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_data(config: TrainConfig, dataset: Dataset | None = None) -> Prepared:
    if dataset is None and config.data in BENCHMARKS:  # standard zero-shot split, lazy images
        train_set, test_set = benchmark_datasets(config.data, config.data_root)
    else:
        data = dataset if dataset is not None else load_dataset(config.data)
        train_set, test_set = split(data, config.split, config.seed)
    train_set = with_noise(train_set, config.noise, config.seed)
    rng = np.random.default_rng(config.seed)
    pick = lambda n: np.sort(rng.choice(n, min(n, config.eval_subset), replace=False))  # noqa: E731
    eval_rows, view_rows = pick(len(test_set.y)), pick(len(train_set.y))[:SNAPSHOT_ROWS]
    model = resolve(config.model, train_set.X.shape[1:])
    lazy = not isinstance(train_set.X, np.ndarray)  # benchmark images: cropped when read
    view_X = train_set.X.with_transform(test_set.X.transform) if lazy else train_set.X
    keep = np.sort(np.random.default_rng(0).choice(
        len(eval_rows), min(len(eval_rows), SNAPSHOT_ROWS), replace=False))
    return Prepared(train_set, test_set, eval_rows, view_rows,
                    model.startswith("resnet") and not lazy, view_X, keep)


def _autocast(device, amp: bool):
    """bfloat16 autocast on CUDA when asked (no GradScaler needed; the PFML energy itself
    runs in float32, see distributed.GatheredLoss); a no-op elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


@torch.no_grad()
def embed(model, X, device, batch_size: int = 256, amp: bool = False) -> np.ndarray:
    """(n, ...) -> (n, D) float32 in eval mode. Under torch.distributed each rank embeds a
    contiguous share and the shares are gathered back in order."""
    model = distributed.unwrap(model)
    model.eval()
    share = np.array_split(np.arange(len(X)), distributed.world_size())[distributed.rank()]
    out = []
    for i in range(0, len(share), batch_size):
        x = torch.as_tensor(np.asarray(X[share[i:i + batch_size]], dtype=np.float32))
        with _autocast(torch.device(device), amp):
            out.append(model(x.to(device)).float())
    D = model.head.out_features if hasattr(model, "head") else 0
    local = torch.cat(out) if out else torch.zeros(0, D, device=device)
    return distributed.gather(local).cpu().numpy()


def train_step(model, loss_fn, optimizer, x: torch.Tensor, y: torch.Tensor,
               amp: bool = False, frozen=()) -> float:
    """One optimisation step on one batch (this rank's slice under torch.distributed;
    loss_fn gathers the rest). `frozen` parameters are left out of the update (warm-up)."""
    optimizer.zero_grad(set_to_none=True)
    with _autocast(x.device, amp):
        emb = model(x)
    loss = loss_fn(emb, y)
    loss.backward()
    for p in frozen:
        p.grad = None  # Adam skips parameters without a gradient
    optimizer.step()
    return float(loss.detach())


def run_epoch(model, loss_fn, optimizer, prep: Prepared, batches, device, gen,
              should_stop, on_batch, config: TrainConfig, frozen=()) -> tuple[float, bool]:
    """(mean batch loss, stopped); stopped means the epoch was cut short."""
    model.train()
    if config.freeze_bn:
        _freeze_bn(model)  # model.train() switched BatchNorm back on
    losses = []
    for i, rows in enumerate(batches):
        if should_stop is not None and should_stop():
            return float("nan"), True
        x = torch.as_tensor(np.asarray(prep.train.X[rows], dtype=np.float32))
        x = transforms.augment(x, gen) if prep.augment else x
        y = torch.from_numpy(prep.train.y[rows])
        losses.append(train_step(model, loss_fn, optimizer, x.to(device), y.to(device),
                                 config.amp, frozen))
        if on_batch is not None:
            on_batch(i + 1, len(batches), losses[-1])
    return float(np.mean(losses)), False


def _freeze_bn(model) -> None:
    from pfml_core.training.presets import freeze_batchnorm

    freeze_batchnorm(distributed.unwrap(model))


def evaluate(epoch, loss, model, loss_fn, prep: Prepared, device, seconds,
             amp: bool = False) -> EpochSnapshot:
    """Embed the fixed subsets, compute retrieval metrics on the held-out ones (Recall@K
    chunked on the device when they are many), keep at most SNAPSHOT_ROWS for the views."""
    emb = embed(model, prep.test.X[prep.eval_rows], device, amp=amp)
    labels = prep.test.y[prep.eval_rows]
    tr = prep.view_rows
    train_emb = embed(model, prep.view_X[tr], device, amp=amp)
    if len(emb) > FULL_METRICS_ROWS:
        metrics = chunked_recall_at_k(torch.from_numpy(emb).to(device), torch.from_numpy(labels).to(device))
        metrics.update({"MAP@R": float("nan"), "R-precision": float("nan"), "NMI": float("nan")})
    else:
        metrics = retrieval_metrics(emb, labels)
    proxies = loss_fn.proxies()
    p, pl = (None, None) if proxies is None else (proxies[0].cpu().numpy(), proxies[1].cpu().numpy())
    if p is not None:
        metrics["W2"] = proxy_w2(train_emb, prep.train.true_y[tr], p, pl)["mean"]
    keep = prep.keep  # the same rows each epoch
    return EpochSnapshot(epoch, loss, metrics, emb[keep], labels[keep], train_emb,
                         prep.train.y[tr], prep.train.true_y[tr], prep.train.flipped[tr], p, pl,
                         seconds, prep.test.index[prep.eval_rows][keep], prep.train.index[tr])


def _batches(config: TrainConfig, labels: np.ndarray) -> DistributedClassBalancedSampler:
    """Class-balanced batches (classes x samples); under torch.distributed every rank draws
    the same global batch and keeps its slice. Call set_epoch(e) each epoch."""
    return DistributedClassBalancedSampler(
        labels, min(config.classes_per_batch, len(np.unique(labels))), config.samples_per_class,
        config.max_batches_per_epoch, config.seed)


def train(config: TrainConfig, callback: Callable | None = None,
          should_stop: Callable[[], bool] | None = None, out_dir=None,
          on_batch: Callable | None = None, dataset: Dataset | None = None) -> TrainResult:
    """Train per config. callback(snapshot) after epoch 0 (untrained) and every finished
    epoch; should_stop() polled between batches; on_batch(i, n, loss) for progress bars.
    out_dir: run folder written as epochs finish. dataset: skip loading config.data.
    Under torchrun only rank 0 writes, calls back and reports batches."""
    config.validate()
    seed_everything(config.seed)
    lead = distributed.rank() == 0
    device = distributed.local_device() if distributed.is_distributed() else resolve_device(config.device)
    prep = prepare_data(config, dataset)
    model = build_model(config.model, prep.train.X.shape[1:], config.embedding_size,
                        config.pretrained)
    if config.freeze_bn:
        _freeze_bn(model)  # before DDP: frozen BN parameters are not synchronised
    backbone = [p for p in model.trunk.parameters() if p.requires_grad]
    model = distributed.wrap_model(model, device)
    loss_fn = baselines.make(config.loss, prep.train.num_classes, config.embedding_size,
                             **config.loss_params).to(device)
    distributed.sync_proxies(loss_fn)  # the same start on every rank
    step_loss = distributed.GatheredLoss(loss_fn)  # all ranks' embeddings, float32 energy
    optimizer = torch.optim.Adam(
        loss_fn.parameter_groups(model.parameters(), config.lr, config.proxy_lr_multiplier),
        weight_decay=config.weight_decay)
    batches = _batches(config, prep.train.y)
    gen = torch.Generator().manual_seed(config.seed + distributed.rank())
    out = Path(out_dir) if out_dir is not None and lead else None
    if out is not None:
        runs.write_config(out, config)
    callback = callback if lead else None
    on_batch = on_batch if lead else None

    history, stopped = [], False
    for epoch in range(config.epochs + 1):
        t0 = time.perf_counter()
        loss = float("nan")
        if epoch > 0:
            batches.set_epoch(epoch)
            frozen = backbone if epoch <= config.warmup_epochs else ()
            loss, stopped = run_epoch(model, step_loss, optimizer, prep, batches, device, gen,
                                      should_stop, on_batch, config, frozen)
            if stopped:
                break
        snap = evaluate(epoch, loss, model, loss_fn, prep, device, time.perf_counter() - t0,
                        config.amp)
        history.append(snap)
        if out is not None:
            runs.write_metrics(out, history)
            runs.write_embeddings(out, history)
            runs.save_checkpoint(out, distributed.unwrap(model), loss_fn, optimizer, config, epoch)
        if callback is not None:
            callback(snap)
        if should_stop is not None and should_stop():
            stopped = epoch < config.epochs
            break
    return TrainResult(config, history, stopped, distributed.unwrap(model), loss_fn,
                       Path(out_dir) if out_dir is not None else None)
