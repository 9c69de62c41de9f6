"""The one training engine, for every loss: the app, the CLI and the noise lab call train().
It reads top to bottom: prepare data (pfml_core.training.loaders) -> build model and loss ->
evaluate the untrained network (epoch 0) -> for each epoch: steps, evaluate, record, checkpoint.
Under torchrun the same code runs once per rank (pfml_core.training.distributed): the loss sees
ALL ranks' embeddings, proxies stay identical, evaluation is sharded, and rank 0 alone writes."""
from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pfml_core.data.dataset import Dataset
from pfml_core.eval.label_margin import train_margins
from pfml_core.eval.metrics import proxy_w2, retrieval_metrics
from pfml_core.eval.retrieval import chunked_recall_at_k
from pfml_core.training import budget, distributed, losses, run_folder
from pfml_core.training.budget import FULL_METRICS_ROWS, MARGIN_ROWS
from pfml_core.training.config import TrainConfig
from pfml_core.training.loaders import (
    ArrayImages,
    Prepared,
    class_balanced,
    eval_loader,
    prepare_data,
    train_loader,
)
from pfml_core.training.models import build_model
from pfml_core.training.snapshot import EpochSnapshot, TrainResult, slim

__all__ = ["TrainConfig", "EpochSnapshot", "TrainResult", "train", "resolve_device"]


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


def _autocast(device, amp: bool):
    """bfloat16 autocast on CUDA when asked (no GradScaler needed; the PFML energy itself
    runs in float32, see distributed.GatheredLoss); a no-op elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


def _to(t: torch.Tensor, device) -> torch.Tensor:
    """Onto the device; asynchronous on CUDA, where the loaders pin their batches."""
    return t.to(device, non_blocking=torch.device(device).type == "cuda")


@torch.no_grad()
def embed(model, loader, device, amp: bool = False) -> np.ndarray:
    """The (x, y) batches of loader (this rank's share, see eval_loader) -> (n, D) float32,
    in eval mode; under torch.distributed the ranks' shares are gathered back in order."""
    model = distributed.unwrap(model)
    model.eval()
    out = []
    for x, _ in loader:
        with _autocast(torch.device(device), amp):
            out.append(model(_to(x, device)).float())
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


def run_epoch(model, loss_fn, optimizer, loader, device, should_stop, on_batch,
              config: TrainConfig, frozen=()) -> tuple[float, bool]:
    """(mean batch loss, stopped); stopped means the epoch was cut short."""
    model.train()
    if config.freeze_bn:
        _freeze_bn(model)  # model.train() switched BatchNorm back on
    batch_losses = []
    for i, (x, y) in enumerate(loader):
        if should_stop is not None and should_stop():
            return float("nan"), True
        batch_losses.append(train_step(model, loss_fn, optimizer, _to(x, device), _to(y, device),
                                       config.amp, frozen))
        if on_batch is not None:
            on_batch(i + 1, len(loader), batch_losses[-1])
    return float(np.mean(batch_losses)), False


def _freeze_bn(model) -> None:
    from pfml_core.training.presets import freeze_batchnorm

    freeze_batchnorm(distributed.unwrap(model))


def evaluate(epoch, loss, model, loss_fn, prep: Prepared, device, seconds,
             amp: bool = False) -> EpochSnapshot:
    """Embed the fixed subsets, compute retrieval metrics on the held-out ones (Recall@K
    chunked on the device when they are many), keep at most SNAPSHOT_ROWS for the views."""
    emb = embed(model, eval_loader(prep.test_images, prep.eval_rows, prep.workers, device),
                device, amp)
    labels = prep.test.y[prep.eval_rows]
    tr, rows = prep.view_rows, margin_rows(prep)
    all_emb = embed(model, eval_loader(prep.view_images, rows, prep.workers, device), device, amp)
    train_emb = all_emb[np.searchsorted(rows, tr)]  # rows holds tr; both sorted
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
    train = prep.train
    return EpochSnapshot(
        epoch=epoch, loss=loss, metrics=metrics, embeddings=emb[keep], labels=labels[keep],
        train_embeddings=train_emb, train_labels=train.y[tr], train_true_labels=train.true_y[tr],
        train_flipped=train.flipped[tr], proxies=p, proxy_labels=pl, seconds=seconds,
        eval_index=prep.test.index[prep.eval_rows][keep], train_index=train.index[tr],
        margins=train_margins(all_emb, train, rows, p, pl))


def margin_rows(prep: Prepared) -> np.ndarray:
    """Training rows whose label margin (pfml_core.eval.label_margin) each epoch records:
    every row of an in-memory set up to MARGIN_ROWS, else the snapshot's rows (no decoding
    of image files beyond what the snapshot already reads)."""
    n = len(prep.train.y)
    full = n <= MARGIN_ROWS and isinstance(prep.view_images, ArrayImages)
    return np.arange(n) if full else prep.view_rows


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
    budget.check(config, budget.shape_of(prep.train, prep.test, prep.input_shape,
                                         isinstance(prep.view_images, ArrayImages)),
                 disk=out_dir is not None and lead)  # before the model and proxies exist
    model = build_model(config.model, prep.input_shape, config.embedding_size,
                        config.pretrained)
    if config.freeze_bn:
        _freeze_bn(model)  # before DDP: frozen BN parameters are not synchronised
    backbone = [p for p in model.trunk.parameters() if p.requires_grad]
    model = distributed.wrap_model(model, device)
    loss_fn = losses.make(config.loss, prep.train.num_classes, config.embedding_size,
                          **config.loss_params).to(device)
    distributed.sync_module(loss_fn)  # the same start on every rank
    step_loss = distributed.GatheredLoss(loss_fn)  # all ranks' embeddings, float32 energy
    optimizer = torch.optim.Adam(
        loss_fn.parameter_groups(model.parameters(), config.lr, config.proxy_lr_multiplier),
        weight_decay=config.weight_decay)
    batches = class_balanced(config, prep.train.y)
    loader = train_loader(prep, batches, device)
    # The model and proxies are built (the same on every rank); from here torch's RNG only
    # draws augmentation (crops, flips, DataLoader worker seeds), which differs per rank.
    torch.manual_seed(config.seed + distributed.rank())
    out = Path(out_dir) if out_dir is not None and lead else None
    if out is not None:
        run_folder.start_run(out, config)
    callback = callback if lead else None
    on_batch = on_batch if lead else None

    # history is handed back in TrainResult (the CLI, the noise lab's measure read it); the
    # run folder needs only each new snapshot plus the small metrics rows
    history, rows, stopped = [], [], False
    for epoch in range(config.epochs + 1):
        t0 = time.perf_counter()
        loss = float("nan")
        if epoch > 0:
            batches.set_epoch(epoch)
            frozen = backbone if epoch <= config.warmup_epochs else ()
            loss, stopped = run_epoch(model, step_loss, optimizer, loader, device, should_stop,
                                      on_batch, config, frozen)
            if stopped:
                break
        snap = evaluate(epoch, loss, model, loss_fn, prep, device, time.perf_counter() - t0,
                        config.amp)
        if history:
            history[-1] = slim(history[-1])  # only the newest epoch keeps its arrays
        history.append(snap)
        if out is not None:
            rows.append(run_folder.metrics_row(snap))
            run_folder.write_metrics(out, rows)
            run_folder.write_epoch(out, snap)
            run_folder.save_checkpoint(out, distributed.unwrap(model), loss_fn, optimizer, config, epoch)
        if callback is not None:
            callback(snap)
        if should_stop is not None and should_stop():
            stopped = epoch < config.epochs
            break
    return TrainResult(config, history, stopped, distributed.unwrap(model), loss_fn,
                       Path(out_dir) if out_dir is not None else None)
