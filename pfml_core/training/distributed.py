"""torch.distributed for PFML: one process per GPU (torchrun), the loss computed over the
embeddings of ALL ranks, so every rank gets exactly the single-process gradient and identical
proxies. PFML (W > 1) splits the pair matrix by rows, each rank 1/W of the pair work
(`_GatherShared`); other losses run whole on every rank (`gather_with_grad`). BatchNorm
statistics stay per rank: freeze BN or pass sync_bn=True to `wrap_model`."""
from __future__ import annotations

import gc
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from pfml_core.physics import PotentialFieldLoss, RowShard

Tensor = torch.Tensor


def init_from_env(backend: str | None = None, timeout_s: float = 1800.0) -> bool:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*);
    nccl when CUDA is available, else gloo. Returns False (and does nothing) when the
    process was not launched by torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if dist.is_initialized():
        return True
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return True


def shutdown() -> None:
    """Leave the process group (no-op outside one). Objects still holding the group (a DDP
    model's reducer, usually kept alive by reference cycles) are freed first: freed after
    the group is destroyed, gloo's destructor can hang the rank forever. The barrier then
    keeps rank 0, which hosts the rendezvous store, from leaving before the others."""
    if not is_distributed():
        return
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_device() -> torch.device:
    """cuda:LOCAL_RANK when CUDA is available, else cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def _wire(device) -> torch.device:
    """Where a collective runs for a tensor on `device`: gloo has no CUDA all_gather, so CUDA
    tensors go through host memory under gloo (processes sharing one GPU: NCCL refuses
    two ranks on one device); NCCL and CPU tensors stay where they are."""
    device = torch.device(device)
    return torch.device("cpu") if device.type == "cuda" and dist.get_backend() == "gloo" else device


def _sizes(n: int, device) -> list[int]:
    """Every rank's n (one small all-gather and a host read)."""
    mine = torch.tensor([n], device=_wire(device))
    sizes = [torch.zeros_like(mine) for _ in range(world_size())]
    dist.all_gather(sizes, mine)
    return [int(s) for s in sizes]


def _gather_padded(x: Tensor, sizes: list[int] | None = None) -> tuple[Tensor, list[int]]:
    """All ranks' x concatenated along dim 0 (sizes may differ), and the per-rank sizes."""
    sizes = _sizes(x.shape[0], x.device) if sizes is None else sizes
    padded = x.new_zeros((max(sizes),) + tuple(x.shape[1:]), device=_wire(x.device))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)]).to(x.device), sizes  # (sum sizes, ...)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, sizes=None):
        gathered, sizes = _gather_padded(x.detach(), sizes)
        ctx.offset, ctx.n = sum(sizes[: rank()]), x.shape[0]
        return gathered

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # sum over ranks: W * dL/dX when every rank has the same L
        return grad[ctx.offset: ctx.offset + ctx.n], None


def gather_with_grad(x: Tensor) -> Tensor:
    """(n_r, ...) on each rank -> (sum_r n_r, ...) in rank order, differentiable: the
    gradient of the local rows is the SUM over ranks. With the SAME full loss L(X, P) on every
    rank, rank r receives W * dL/dX_r, so its backbone gradient is W * sum_{i in r} dL/dx_i
    dx_i/dtheta; DDP averages over ranks (divides by W), leaving the sum over ALL i: exactly
    the single-process gradient (unequal per-rank batches included)."""
    return _GatherWithGrad.apply(x) if is_distributed() else x


def gather(x: Tensor, sizes: list[int] | None = None) -> Tensor:
    """All ranks' x concatenated in rank order, without gradients (labels, eval embeddings)."""
    return _gather_padded(x.detach(), sizes)[0] if is_distributed() else x


class _GatherShared(torch.autograd.Function):
    """Gather whose incoming gradient is already the whole one on every rank (sharded
    energy): the local rows, times W to undo DDP's average. No communication backward.
    Every rank gathers X = [X_0; ...; X_{W-1}] and computes only its 1/W block of ROWS of the
    (B + N*M)^2 pair matrix against all points (physics.kernel.RowShard). Once per step the
    partial energies are all-reduced and the gradient rows all-gathered: every rank then holds
    the whole dL/dX and dL/dP (the pair matrix is symmetric, so rows [a, b) of the matrix give
    rows [a, b) of the gradient). Per-rank pair work falls as 1/W (bench/loss_speed.py --ranks)."""

    @staticmethod
    def forward(ctx, x, sizes):
        ctx.offset, ctx.n = sum(sizes[: rank()]), x.shape[0]
        return _gather_padded(x.detach(), sizes)[0]

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.offset: ctx.offset + ctx.n] * world_size(), None


def _all_reduce_sum(t: Tensor) -> Tensor:
    out = t.reshape(1).to(_wire(t.device), copy=True)
    dist.all_reduce(out)
    return out.reshape(t.shape).to(t.device)


def _all_gather_rows(rows: Tensor, sizes: list[int]) -> Tensor:
    return _gather_padded(rows.contiguous(), sizes)[0]


def row_shard():
    """This rank's block of rows of the PFML pair matrix with its collectives (a
    physics.kernel.RowShard), or None outside torch.distributed or with one process."""
    if world_size() < 2:
        return None
    return RowShard(rank(), world_size(), sum=_all_reduce_sum, gather=_all_gather_rows)


def _shardable(loss_module: torch.nn.Module):
    """The PotentialFieldLoss inside (bare or in a miner-less bundle) when its energy takes
    the Gram kernel (more than 16 dimensions, no embedding regulariser); else None."""
    inner = getattr(loss_module, "loss", loss_module)
    if getattr(loss_module, "miner", None) is not None or not isinstance(inner, PotentialFieldLoss):
        return None
    return inner if inner.embedding_size > 16 and inner.embedding_regularizer is None else None


def sync_module(module: torch.nn.Module, src: int = 0) -> torch.nn.Module:
    """Broadcast parameters and buffers from rank src (e.g. the loss's proxies at start)."""
    if is_distributed():
        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src)
    return module


class GatheredLoss(torch.nn.Module):
    """loss(embeddings, labels) on the embeddings and labels of ALL ranks (rank order),
    with gradients flowing back to each rank's own rows. PFML with W > 1 processes (and
    shard=True): the sharded energy, each rank its 1/W of the pairs. Other losses: the
    whole loss on every rank, the wrapped loss's parameters (proxies) averaged over ranks
    on a group of their own (an all-reduce hands every rank bitwise the same tensor). Either
    way the proxies stay identical: equal start values (`sync_module`) + equal gradients + the
    same optimizer (the proxies live in the loss, outside DDP). Half-precision
    embeddings (AMP) are cast to float32 and the loss runs with autocast off. Outside
    torch.distributed it is otherwise the wrapped loss."""

    def __init__(self, loss_module: torch.nn.Module, shard: bool = True):
        super().__init__()
        self.loss = loss_module
        pfml = _shardable(loss_module) if shard and world_size() > 1 else None
        self.__dict__["_pfml"] = pfml  # a plain reference: it is already inside self.loss
        self._group = dist.new_group() if is_distributed() and pfml is None else None
        if self._group is not None:
            for p in loss_module.parameters():
                p.register_hook(self._average)

    @property
    def sharded(self) -> bool:
        return self._pfml is not None

    def _average(self, grad: Tensor) -> Tensor:
        if self._group is None:
            return grad
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=self._group)
        return grad.div_(dist.get_world_size(self._group))

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        if embeddings.dtype in (torch.float16, torch.bfloat16):
            embeddings = embeddings.float()  # 1/d^alpha overflows half precision
        with torch.autocast(embeddings.device.type, enabled=False):  # energy in float32+
            if not is_distributed():
                return self.loss(embeddings, labels)
            sizes = _sizes(embeddings.shape[0], embeddings.device)  # once for both gathers
            if self._pfml is None:
                return self.loss(_GatherWithGrad.apply(embeddings, sizes), gather(labels, sizes))
            return self._pfml.energy(_GatherShared.apply(embeddings, sizes),  # (sum B_r, D)
                                     gather(labels, sizes), shard=row_shard())


def wrap_model(model: torch.nn.Module, device, sync_bn: bool = False,
               find_unused_parameters: bool = False) -> torch.nn.Module:
    """Model on device, wrapped in DistributedDataParallel when a group is running
    (DDP broadcasts rank 0's weights); the plain model otherwise. sync_bn converts
    BatchNorm to SyncBatchNorm (exact full-batch statistics, costs a sync per layer)."""
    device = torch.device(device)
    model = model.to(device)
    if not is_distributed():
        return model
    if sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=ids, find_unused_parameters=find_unused_parameters)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP (for checkpoints: state dict keys without 'module.')."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
